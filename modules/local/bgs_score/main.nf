// Brain-genotype scores of held-out subjects (class probabilities, expected dosage) with calibration and accuracy metrics.
process BGS_SCORE {
    tag "${meta.id}"
    label 'process_medium'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(data), path(model)

    output:
    tuple val(meta), path("${meta.id}.cnn.tsv"), emit: scores
    tuple val(meta), path("${meta.id}.cnn.metrics.tsv"), emit: metrics
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    ginn bgs score \\
        --data ${data} \\
        --model ${model} \\
        --device ${params.bgs_device} \\
        --seed ${params.bgs_seed} \\
        --out ${meta.id}.cnn.tsv \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    touch ${meta.id}.cnn.tsv ${meta.id}.cnn.metrics.tsv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
