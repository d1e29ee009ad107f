// Simulate a cohort with known gene-gene interactions (paper Eqs. 1-3): PLINK fileset, phenotype, gene regions, truth.
process GINN_SIMULATE {
    tag "${meta.id}"
    label 'process_medium'
    container 'ginn:0.1.0'

    input:
    val(meta)

    output:
    tuple val(meta), path("${meta.id}.bed"), path("${meta.id}.bim"), path("${meta.id}.fam"), emit: plink
    tuple val(meta), path("${meta.id}.pheno.tsv"), emit: pheno
    tuple val(meta), path("${meta.id}.genes.tsv"), emit: genes
    tuple val(meta), path("${meta.id}.truth.tsv"), emit: truth
    tuple val(meta), path("${meta.id}.provenance.json"), emit: provenance
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    ginn simulate \\
        --model ${params.sim_model} \\
        --n-samples ${params.sim_n_samples} \\
        --n-genes ${params.sim_n_genes} \\
        --snr ${params.sim_snr} \\
        --causal-prop ${params.sim_causal_prop} \\
        --mi-ratio ${params.sim_mi_ratio} \\
        --haplotypes ${params.sim_haplotypes} \\
        --snps-per-gene ${params.sim_snps_per_gene} \\
        --seed ${params.seed} \\
        --out ${meta.id} \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    touch ${meta.id}.bed ${meta.id}.bim ${meta.id}.fam ${meta.id}.pheno.tsv ${meta.id}.genes.tsv
    touch ${meta.id}.truth.tsv ${meta.id}.provenance.json
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
