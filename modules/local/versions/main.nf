// The versions a run used, written once: every process runs the same image, so one record serves all.
process GINN_VERSIONS {
    label 'process_single'

    output:
    path "versions.yml", emit: versions

    script:
    """
    cat <<-END_VERSIONS > versions.yml
    ginn: \$(ginn --version | sed 's/^ginn, version //')
    python: \$(python3 -c 'import platform; print(platform.python_version())')
    torch: \$(python3 -c 'import torch; print(torch.__version__)')
    nextflow: ${nextflow.version}
    END_VERSIONS
    """

    stub:
    """
    touch versions.yml
    """
}
