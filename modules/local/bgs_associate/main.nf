// Nested OLS F-tests of every method's score probabilities on cognition beyond confounders; Bonferroni and FDR per method.
process BGS_ASSOCIATE {
    tag "${meta.id}"
    label 'process_single'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(scores), path(cognition), path(confounders)

    output:
    tuple val(meta), path("${meta.id}.assoc.tsv"), emit: assoc
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    def score_args = (scores instanceof List ? scores : [scores]).collect { f -> "--scores ${f}" }.join(' ')
    def covar = confounders ? "--covar ${confounders}" : ''
    def covar_name = confounders && params.bgs_covar_name ? "--covar-name ${params.bgs_covar_name}" : ''
    def adjust = params.bgs_adjust_genotype ? '--adjust-genotype' : ''
    """
    ginn bgs associate \\
        ${score_args} \\
        --cognition ${cognition} \\
        ${covar} \\
        ${covar_name} \\
        ${adjust} \\
        --out ${meta.id}.assoc.tsv \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    touch ${meta.id}.assoc.tsv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
