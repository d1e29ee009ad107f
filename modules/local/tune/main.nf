// Choose the L1 strengths of the interaction network by K-fold cross-validation on the training samples.
process GINN_TUNE {
    tag "${meta.id}"
    label 'process_gpu'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(data)

    output:
    tuple val(meta), path("${meta.id}.hparams.json"), emit: hparams
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    ginn tune \\
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
        --folds ${params.folds} \\
        --l1-grid ${params.l1_grid} \\
        --members ${params.tune_members} \\
        --out ${meta.id}.hparams.json \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    echo '{"l1_gene": 0.0001, "l1_predictor": 0.0001}' > ${meta.id}.hparams.json
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
