// One self-contained HTML page from a run's outputs, staged in the run folder layout (run/<stage>/...).
process GINN_REPORT {
    tag "${meta.id}"
    label 'process_single'
    container 'ginn:0.1.0'

    input:
    tuple val(meta),
        path(simulate, stageAs: 'run/simulate/*'),
        path(qc, stageAs: 'run/qc/*'),
        path(map_genes, stageAs: 'run/map_genes/*'),
        path(prune, stageAs: 'run/prune/*'),
        path(prepare, stageAs: 'run/prepare/*'),
        path(pairtest, stageAs: 'run/pairtest/*'),
        path(tune, stageAs: 'run/tune/*'),
        path(train_main, stageAs: 'run/train_main/*'),
        path(train_interaction, stageAs: 'run/train_interaction/*'),
        path(score, stageAs: 'run/score/*'),
        path(test, stageAs: 'run/test/*'),
        path(baselines, stageAs: 'run/baselines/*'),
        path(replicate, stageAs: 'run/replicate/*')

    output:
    tuple val(meta), path("report.html"), emit: html
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    ginn report \\
        --outdir run \\
        --out report.html \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    touch report.html
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
