// Synthetic imaging-genetics cohort from the shipped MNI template: T1 NIfTIs, PLINK genotypes, cognition, confounders, truth.
process BGS_SIMULATE {
    tag "${meta.id}"
    label 'process_medium'
    container 'ginn:0.1.0'

    input:
    val(meta)

    output:
    tuple val(meta), path("${meta.id}.cohort"), emit: cohort
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    ginn bgs simulate \\
        --n-subjects ${params.bgs_n_subjects} \\
        --n-snps ${params.bgs_n_snps} \\
        --regions ${params.bgs_regions} \\
        --voxel-size ${params.bgs_sim_voxel_size} \\
        --seed ${params.bgs_seed} \\
        --out ${meta.id}.cohort \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p ${meta.id}.cohort/images
    touch ${meta.id}.cohort/subjects.tsv ${meta.id}.cohort/cognition.tsv ${meta.id}.cohort/confounders.tsv ${meta.id}.cohort/truth.tsv
    touch ${meta.id}.cohort/genotypes.bed ${meta.id}.cohort/genotypes.bim ${meta.id}.cohort/genotypes.fam
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
