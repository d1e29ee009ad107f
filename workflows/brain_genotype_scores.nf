/*
 * Brain-genotype scores: T1 MRI -> multi-task 3D CNN predicting SNP genotypes -> held-out scores,
 * SmoothGrad saliency, IDP baselines, nested-OLS association with cognition, one results table.
 * Inputs come from params.bgs_* (a synthetic cohort when params.bgs_simulate is true): the subject table
 * (FID IID image [sex]) and a glob of its NIfTI files, which are staged into images/ and found by file name.
 * Grouped inputs are sorted by file name, so -resume finds the same task hashes.
 */

include { BGS_SIMULATE  } from '../modules/local/bgs_simulate/main.nf'
include { BGS_PREPARE   } from '../modules/local/bgs_prepare/main.nf'
include { BGS_TRAIN     } from '../modules/local/bgs_train/main.nf'
include { BGS_SCORE     } from '../modules/local/bgs_score/main.nf'
include { BGS_SALIENCY  } from '../modules/local/bgs_saliency/main.nf'
include { BGS_IDP       } from '../modules/local/bgs_idp/main.nf'
include { BGS_ASSOCIATE } from '../modules/local/bgs_associate/main.nf'
include { BGS_RESULTS   } from '../modules/local/bgs_results/main.nf'

// An optional input file: staged when given, else [] (the module then leaves its flag out).
def optionalFile(path) {
    if (path) {
        return file(path, checkIfExists: true)
    }
    return []
}

// The cohort tuple: [meta, subjects, images, bed, bim, fam, cognition, confounders, truth].
def cohortTuple(meta, dir) {
    return tuple(meta, file("${dir}/subjects.tsv"), byName(files("${dir}/images/*")), file("${dir}/genotypes.bed"),
                 file("${dir}/genotypes.bim"), file("${dir}/genotypes.fam"), file("${dir}/cognition.tsv"),
                 file("${dir}/confounders.tsv"), file("${dir}/truth.tsv"))
}

def userCohort(meta) {
    return tuple(meta, file(params.bgs_subjects, checkIfExists: true), byName(files(params.bgs_images, checkIfExists: true)),
                 file("${params.bgs_bfile}.bed", checkIfExists: true), file("${params.bgs_bfile}.bim", checkIfExists: true),
                 file("${params.bgs_bfile}.fam", checkIfExists: true), file(params.bgs_cognition, checkIfExists: true),
                 optionalFile(params.bgs_confounders), [])
}

// Files in name order: a glob's order is the file system's, and the task hash must not depend on it.
def byName(paths) {
    return paths.toSorted { a, b -> a.name <=> b.name }
}

def published(stage, ch) {
    return ch.map { row -> [stage, row] }
}

workflow BRAIN_GENOTYPE_SCORES {
    main:
    def meta = [id: params.bgs_id]

    if (params.bgs_simulate) {
        BGS_SIMULATE(channel.of(meta))
        ch_cohort = BGS_SIMULATE.out.cohort.map { m, dir -> cohortTuple(m, dir) }
        ch_simulated = BGS_SIMULATE.out.cohort
    }
    else {
        ch_cohort = channel.of(userCohort(meta))
        ch_simulated = channel.empty()
    }

    BGS_PREPARE(ch_cohort.map { m, subjects, images, bed, bim, fam, _cog, _conf, _truth -> [m, subjects, images, bed, bim, fam] })
    BGS_TRAIN(BGS_PREPARE.out.data)

    ch_data_model = BGS_PREPARE.out.data.join(BGS_TRAIN.out.model)
    BGS_SCORE(ch_data_model)
    BGS_SALIENCY(ch_data_model)

    BGS_IDP(BGS_PREPARE.out.data.map { m, data -> [m, data, optionalFile(params.bgs_idp)] }, params.bgs_idp_methods.tokenize(','))

    ch_scores = BGS_SCORE.out.scores.mix(BGS_IDP.out.scores).groupTuple(sort: { a, b -> a.name <=> b.name })
    ch_tables = ch_cohort.map { m, _subjects, _images, _bed, _bim, _fam, cognition, confounders, truth -> [m, cognition, confounders, truth] }
    BGS_ASSOCIATE(ch_scores.join(ch_tables).map { m, scores, cognition, confounders, _truth -> [m, scores, cognition, confounders] })

    ch_metrics = BGS_SCORE.out.metrics.mix(BGS_IDP.out.metrics).groupTuple(sort: { a, b -> a.name <=> b.name })
    BGS_RESULTS(ch_metrics.join(BGS_ASSOCIATE.out.assoc).join(ch_tables).map { m, metrics, assoc, _cognition, _confounders, truth -> [m, metrics, assoc, truth] })

    emit:
    published = channel.empty().mix(
        published('bgs_simulate', ch_simulated),
        published('bgs_prepare', BGS_PREPARE.out.data),
        published('bgs_train', BGS_TRAIN.out.model),
        published('bgs_score', BGS_SCORE.out.scores.mix(BGS_SCORE.out.metrics)),
        published('bgs_saliency', BGS_SALIENCY.out.saliency),
        published('bgs_idp', BGS_IDP.out.scores.mix(BGS_IDP.out.metrics)),
        published('bgs_associate', BGS_ASSOCIATE.out.assoc),
        published('bgs_results', BGS_RESULTS.out.results)
    )
}
