// Resample and z-score T1 images on the MNI grid, match PLINK genotypes, regional IDPs, stratified 80/10/10 split.
process BGS_PREPARE {
    tag "${meta.id}"
    label 'process_medium'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(subjects), path(images, stageAs: 'images/*'), path(bed), path(bim), path(fam)

    output:
    tuple val(meta), path("${meta.id}.prep"), emit: data
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    def snps = params.bgs_snps ? "--snps ${params.bgs_snps}" : ''
    """
    ginn bgs prepare \\
        --subjects ${subjects} \\
        --image-dir images \\
        --bfile ${bed.baseName} \\
        ${snps} \\
        --voxel-size ${params.bgs_voxel_size} \\
        --val-fraction ${params.bgs_val_fraction} \\
        --test-fraction ${params.bgs_test_fraction} \\
        --seed ${params.bgs_seed} \\
        --out ${meta.id}.prep \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p ${meta.id}.prep
    touch ${meta.id}.prep/images.npy ${meta.id}.prep/samples.tsv ${meta.id}.prep/genotypes.tsv ${meta.id}.prep/idp.tsv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
