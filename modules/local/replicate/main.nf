// Replicate candidate pairs in an independent cohort (Eq. 5 alpha with one-sided p, Eq. 4 top-SNP p in both cohorts).
process GINN_REPLICATE {
    tag "${meta.id}"
    label 'process_gpu'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(data), path(models), path(results), path(bed), path(bim), path(fam), path(pheno)

    output:
    tuple val(meta), path("${meta.id}.replication.tsv"), emit: replication
    tuple val(meta), path("${meta.id}.replication.*.tsv"), emit: details
    tuple val(meta), path("${meta.id}.replication.provenance.json"), emit: provenance
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    ginn replicate \\
        --data ${data} \\
        --models ${models} \\
        --results ${results} \\
        --bfile ${bed.baseName} \\
        --pheno ${pheno} \\
        --pheno-name ${meta.id} \\
        --fdr ${params.fdr} \\
        --seed ${params.seed} \\
        --out ${meta.id}.replication.tsv \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    touch ${meta.id}.replication.tsv ${meta.id}.replication.alignment.tsv ${meta.id}.replication.provenance.json
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
