// Sample then variant quality control with plink2's definitions (--mind, --geno, --maf, --hwe).
process GINN_QC {
    tag "${meta.id}"
    label 'process_medium'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(bed), path(bim), path(fam)

    output:
    tuple val(meta), path("${meta.id}.passed.bed"), path("${meta.id}.passed.bim"), path("${meta.id}.passed.fam"), emit: plink
    tuple val(meta), path("${meta.id}.passed.qc.tsv"), path("${meta.id}.passed.qc.samples.tsv"), emit: stats
    tuple val(meta), path("${meta.id}.passed.provenance.json"), emit: provenance
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    ginn qc \\
        --bfile ${bed.baseName} \\
        --geno ${params.geno} \\
        --mind ${params.mind} \\
        --maf ${params.maf} \\
        --hwe ${params.hwe} \\
        --out ${meta.id}.passed \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    touch ${meta.id}.passed.bed ${meta.id}.passed.bim ${meta.id}.passed.fam ${meta.id}.passed.qc.tsv
    touch ${meta.id}.passed.qc.samples.tsv ${meta.id}.passed.provenance.json
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
