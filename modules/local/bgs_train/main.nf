// Train the multi-task 3D CNN (ResNet-10 + SE, or SFCN-lite) predicting every SNP's genotype class; AMP on CUDA.
process BGS_TRAIN {
    tag "${meta.id}"
    label 'process_gpu'
    container 'ginn:0.1.0'

    input:
    tuple val(meta), path(data)

    output:
    tuple val(meta), path("${meta.id}.model"), emit: model
    tuple val(meta), path("${meta.id}.model/history.tsv"), emit: history
    path "versions.yml", emit: versions

    script:
    def args = task.ext.args ?: ''
    """
    ginn bgs train \\
        --data ${data} \\
        --arch ${params.bgs_arch} \\
        --epochs ${params.bgs_epochs} \\
        --batch-size ${params.bgs_batch_size} \\
        --lr ${params.bgs_lr} \\
        --patience ${params.bgs_patience} \\
        --device ${params.bgs_device} \\
        --seed ${params.bgs_seed} \\
        --out ${meta.id}.model \\
        ${args}

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """

    stub:
    """
    mkdir -p ${meta.id}.model
    touch ${meta.id}.model/model.pt ${meta.id}.model/config.json ${meta.id}.model/history.tsv
    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        ginn: \$(ginn --version | sed 's/^ginn, version //')
    END_VERSIONS
    """
}
