// Per-gene LD pruning: keep the fewest SNPs explaining --keep-variance of each gene's genotype variance.
process GINN_PRUNE {
    tag "${meta.id}"
    label 'process_medium'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(bed), path(bim), path(fam), path(map)

    output:
    tuple val(meta), path("${meta.id}.pruned.tsv"), emit: map
    tuple val(meta), path("${meta.id}.pruned.genes.tsv"), emit: genes
    tuple val(meta), path("${meta.id}.pruned.provenance.json"), emit: provenance
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    ginn prune \\
        --bfile ${bed.baseName} \\
        --map ${map} \\
        --keep-variance ${params.keep_variance} \\
        --out ${meta.id}.pruned.tsv \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    touch ${meta.id}.pruned.tsv ${meta.id}.pruned.genes.tsv ${meta.id}.pruned.provenance.json
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
