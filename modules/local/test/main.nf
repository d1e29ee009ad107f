// Per-pair interaction calls (BH FDR, Holm FWER) from the pair tests, with Perm I's global test from the score files.
process GINN_TEST {
    tag "${meta.id}"
    label 'process_single'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(pairs), path(scores)

    output:
    tuple val(meta), path("${meta.id}.results.tsv"), emit: results
    tuple val(meta), path("${meta.id}.results.provenance.json"), emit: provenance
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    def score_files = scores ? "--scores ${scores}" : ''
    """
    ginn test \\
        --pairs ${pairs}/pairs.tsv \\
        ${score_files} \\
        --fdr ${params.fdr} \\
        --out ${meta.id}.results.tsv \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    touch ${meta.id}.results.tsv ${meta.id}.results.provenance.json
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
