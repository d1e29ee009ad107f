// A baseline interaction method (meta.method, e.g. topsnp-lr) scored into the same results table as the networks.
process GINN_BASELINES {
    tag "${meta.id}"
    label 'process_low'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(data)

    output:
    tuple val(meta), path("${meta.id}.${meta.method}.results.tsv"), emit: results
    tuple val(meta), path("${meta.id}.${meta.method}.results.provenance.json"), emit: provenance
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    ginn baselines \\
        --data ${data} \\
        --method ${meta.method} \\
        --seed ${params.seed} \\
        --out ${meta.id}.${meta.method}.results.tsv \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    touch ${meta.id}.${meta.method}.results.tsv ${meta.id}.${meta.method}.results.provenance.json
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
