// Cross-fitted per-pair interaction test: networks trained on the other folds give each sample's gene values,
// then one robust regression tests every pair's product term given the main effects and the other pairs.
process GINN_PAIRTEST {
    tag "${meta.id}"
    label 'process_gpu'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(data)

    output:
    tuple val(meta), path("${meta.id}.pairs"), emit: pairs
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    ginn pairtest \\
        --data ${data} \\
        --folds ${params.pairtest_folds} \\
        --members ${params.pairtest_members} \\
        --predictor-hidden ${params.predictor_hidden} \\
        --gene-layer ${params.gene_layer} \\
        --lr ${params.lr} \\
        --batch-size ${params.batch_size} \\
        --max-epochs ${params.max_epochs} \\
        --patience ${params.patience} \\
        --val-fraction ${params.val_fraction} \\
        --device ${params.device} \\
        --seed ${params.seed} \\
        --out ${meta.id}.pairs \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    mkdir ${meta.id}.pairs
    printf 'gene_a\\tgene_b\\tz\\tp_pair\\n' > ${meta.id}.pairs/pairs.tsv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
