// Map SNPs to genes (gene body +/- flank); without an annotation the packaged GRCh37 glist is used.
process GINN_MAP_GENES {
    tag "${meta.id}"
    label 'process_single'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(bed), path(bim), path(fam)
    path(genes)
    path(keep_genes)

    output:
    tuple val(meta), path("${meta.id}.map.tsv"), emit: map
    tuple val(meta), path("${meta.id}.map.genes.tsv"), emit: genes
    tuple val(meta), path("${meta.id}.map.provenance.json"), emit: provenance
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    def genes_arg = genes ? "--genes ${genes}" : ''
    def keep_arg = keep_genes ? "--keep-genes ${keep_genes}" : ''
    """
    ginn map-genes \\
        --bfile ${bed.baseName} \\
        ${genes_arg} \\
        ${keep_arg} \\
        --flank ${params.flank} \\
        --out ${meta.id}.map.tsv \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    touch ${meta.id}.map.tsv ${meta.id}.map.genes.tsv ${meta.id}.map.provenance.json
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
