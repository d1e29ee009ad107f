// Shapley interaction scores between gene nodes for every gene pair and every trained dataset of an ensemble.
process GINN_SCORE {
    tag "${meta.id}"
    label 'process_gpu'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(data), path(models)

    output:
    tuple val(meta), path("${meta.id}.${meta.chunk}.scores.tsv"), emit: scores
    tuple val(meta), path("${meta.id}.${meta.chunk}.scores.main.tsv"), emit: main_effects
    tuple val(meta), path("${meta.id}.${meta.chunk}.scores.provenance.json"), emit: provenance
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    ginn score \\
        --data ${data} \\
        --models ${models} \\
        --seed ${params.seed} \\
        --out ${meta.id}.${meta.chunk}.scores.tsv \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    touch ${meta.id}.${meta.chunk}.scores.tsv ${meta.id}.${meta.chunk}.scores.main.tsv
    touch ${meta.id}.${meta.chunk}.scores.provenance.json
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
