// Train the main-effect network ensemble (linear predictor, Eq. 13): the null model of the Perm I test.
process GINN_TRAIN_MAIN {
    tag "${meta.id}"
    label 'process_gpu'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(data), path(hparams)

    output:
    tuple val(meta), path("${meta.id}.main"), emit: models
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    ginn train \\
        --data ${data} \\
        --model main \\
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
        --out ${meta.id}.main \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p ${meta.id}.main
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
