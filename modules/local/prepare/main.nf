// One phenotype's dataset: covariates and PCs regressed out, inverse-normal transform, seeded split, int8 genotypes.
process GINN_PREPARE {
    tag "${meta.id}"
    label 'process_medium'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(bed), path(bim), path(fam), path(map), path(pheno), path(covar)

    output:
    tuple val(meta), path("${meta.id}.data"), emit: data
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    def covar_arg = covar ? "--covar ${covar} --covar-name ${params.covar_name}" : ''
    """
    ginn prepare \\
        --bfile ${bed.baseName} \\
        --map ${map} \\
        --pheno ${pheno} \\
        --pheno-name ${meta.id} \\
        ${covar_arg} \\
        --pcs ${params.pcs} \\
        --test-fraction ${params.test_fraction} \\
        --seed ${params.seed} \\
        --out ${meta.id}.data \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p ${meta.id}.data
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
