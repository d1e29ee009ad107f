// SmoothGrad saliency per held-out subject (NIfTI on the input grid), group maps, per-region table and figures.
process BGS_SALIENCY {
    tag "${meta.id}"
    label 'process_gpu'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(data), path(model)

    output:
    tuple val(meta), path("${meta.id}.saliency"), emit: saliency
    tuple val(meta), path("${meta.id}.saliency/regions.tsv"), emit: regions
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    def snps = params.bgs_saliency_snps ? "--snps ${params.bgs_saliency_snps}" : ''
    def max_subjects = params.bgs_saliency_max_subjects ? "--max-subjects ${params.bgs_saliency_max_subjects}" : ''
    """
    ginn bgs saliency \\
        --data ${data} \\
        --model ${model} \\
        ${snps} \\
        ${max_subjects} \\
        --n-samples ${params.bgs_saliency_samples} \\
        --device ${params.bgs_device} \\
        --seed ${params.bgs_seed} \\
        --out ${meta.id}.saliency \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p ${meta.id}.saliency/group ${meta.id}.saliency/figures
    touch ${meta.id}.saliency/regions.tsv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
