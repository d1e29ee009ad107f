// One comparison table per method x SNP: prediction metrics with CIs and the strongest cognition association.
process BGS_RESULTS {
    tag "${meta.id}"
    label 'process_single'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(metrics), path(assoc), path(truth)

    output:
    tuple val(meta), path("${meta.id}.results.tsv"), emit: results
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    def metric_args = (metrics instanceof List ? metrics : [metrics]).collect { f -> "--metrics ${f}" }.join(' ')
    def truth_arg = truth ? "--truth ${truth}" : ''
    """
    ginn bgs results \\
        ${metric_args} \\
        --assoc ${assoc} \\
        ${truth_arg} \\
        --out ${meta.id}.results.tsv \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    touch ${meta.id}.results.tsv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
