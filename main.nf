#!/usr/bin/env nextflow
/*
 * ginn: gene-gene interactions with interpretable neural networks.
 * This file only wires: validate the params against nextflow_schema.json, pick the workflow, run it.
 *
 *   nextflow run . -profile test,docker                      # simulated data made by the pipeline itself
 *   nextflow run . -profile docker,gpu -params-file params.yaml
 *   nextflow run . -profile docker,gpu --workflow brain_genotype_scores --bgs_simulate true
 *
 * The params file is the same YAML that `ginn run --config` reads.
 */

include { validateParameters; paramsSummaryLog } from 'plugin/nf-schema'
include { GENE_INTERACTIONS                    } from './workflows/gene_interactions.nf'
include { BRAIN_GENOTYPE_SCORES                } from './workflows/brain_genotype_scores.nf'

workflow {
    main:
    validateParameters()
    log.info(paramsSummaryLog(workflow))

    if (params.workflow == 'gene_interactions') {
        GENE_INTERACTIONS()
    }
    else if (params.workflow == 'brain_genotype_scores') {
        BRAIN_GENOTYPE_SCORES()
    }
    else {
        error("Unknown --workflow '${params.workflow}': use gene_interactions or brain_genotype_scores")
    }
}
