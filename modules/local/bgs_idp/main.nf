// IDP baseline: regional imaging-derived phenotypes -> SVM / logistic regression / LightGBM per SNP, same scores format.
process BGS_IDP {
    tag "${meta.id}:${method}"
    label 'process_medium'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(data), path(idp)
    each method

    output:
    tuple val(meta), path("${meta.id}.idp-${method}.tsv"), emit: scores
    tuple val(meta), path("${meta.id}.idp-${method}.metrics.tsv"), emit: metrics
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    def idp_arg = idp ? "--idp ${idp}" : ''
    """
    ginn bgs idp \\
        --data ${data} \\
        --method ${method} \\
        ${idp_arg} \\
        --seed ${params.bgs_seed} \\
        --out ${meta.id}.idp-${method}.tsv \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    touch ${meta.id}.idp-${method}.tsv ${meta.id}.idp-${method}.metrics.tsv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
