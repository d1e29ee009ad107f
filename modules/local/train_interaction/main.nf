// Train interaction-network ensembles on the observed phenotype (meta.chunk 'observed') or on one chunk of permuted datasets (meta.permutations 'A-B').
process GINN_TRAIN_INTERACTION {
    tag "${meta.id}"
    label 'process_gpu'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(data), path(hparams), path(null_model)

    output:
    tuple val(meta), path("${meta.id}.${meta.chunk}.models"), emit: models
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    def permuted = meta.permutations ? "--target ${params.permutation_target} --permutations ${meta.permutations} --null-model ${null_model}" : ''
    """
    ginn train \\
        --data ${data} \\
        --model interaction \\
        --predictor-hidden ${params.predictor_hidden} \\
        --gene-layer ${params.gene_layer} \\
        --lr ${params.lr} \\
        --batch-size ${params.batch_size} \\
        --max-epochs ${params.max_epochs} \\
        --patience ${params.patience} \\
        --val-fraction ${params.val_fraction} \\
        --device ${params.device} \\
        --seed ${params.seed} \\
        --members ${params.members} \\
        --hparams ${hparams} \\
        ${permuted} \\
        --out ${meta.id}.${meta.chunk}.models \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p ${meta.id}.${meta.chunk}.models
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
