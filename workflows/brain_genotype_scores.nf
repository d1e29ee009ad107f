/*
 * Brain-genotype scores: T1 MRI -> multi-task 3D CNN predicting SNP genotypes -> held-out scores,
 * SmoothGrad saliency, IDP baselines, nested-OLS association with cognition, one results table.
 * Inputs come from params.bgs_* (a synthetic cohort when params.bgs_simulate is true): the subject table
 * (FID IID image [sex]) and a glob of its NIfTI files, which are staged into images/ and found by file name.
 */

include { BGS_SIMULATE  } from '../modules/local/bgs_simulate/main'
include { BGS_PREPARE   } from '../modules/local/bgs_prepare/main'
include { BGS_TRAIN     } from '../modules/local/bgs_train/main'
include { BGS_SCORE     } from '../modules/local/bgs_score/main'
include { BGS_SALIENCY  } from '../modules/local/bgs_saliency/main'
include { BGS_IDP       } from '../modules/local/bgs_idp/main'
include { BGS_ASSOCIATE } from '../modules/local/bgs_associate/main'
include { BGS_RESULTS   } from '../modules/local/bgs_results/main'

workflow BRAIN_GENOTYPE_SCORES {
    main:
    def meta = [id: params.bgs_id]
    ch_versions = channel.empty()

    if (params.bgs_simulate) {
        BGS_SIMULATE(meta)
        ch_versions = ch_versions.mix(BGS_SIMULATE.out.versions)
        ch_cohort = BGS_SIMULATE.out.cohort.map { m, dir ->
            [m, file("${dir}/subjects.tsv"), file("${dir}/images/*"), file("${dir}/genotypes.bed"),
             file("${dir}/genotypes.bim"), file("${dir}/genotypes.fam"), file("${dir}/cognition.tsv"),
             file("${dir}/confounders.tsv"), file("${dir}/truth.tsv")]
        }
    }
    else {
        ch_cohort = channel.of([
            meta, file(params.bgs_subjects, checkIfExists: true), files(params.bgs_images, checkIfExists: true),
            file("${params.bgs_bfile}.bed", checkIfExists: true), file("${params.bgs_bfile}.bim", checkIfExists: true),
            file("${params.bgs_bfile}.fam", checkIfExists: true), file(params.bgs_cognition, checkIfExists: true),
            params.bgs_confounders ? file(params.bgs_confounders, checkIfExists: true) : [], []
        ])
    }

    BGS_PREPARE(ch_cohort.map { m, subjects, images, bed, bim, fam, _cog, _conf, _truth -> [m, subjects, images, bed, bim, fam] })
    ch_versions = ch_versions.mix(BGS_PREPARE.out.versions)

    BGS_TRAIN(BGS_PREPARE.out.data)
    ch_versions = ch_versions.mix(BGS_TRAIN.out.versions)

    ch_data_model = BGS_PREPARE.out.data.join(BGS_TRAIN.out.model)
    BGS_SCORE(ch_data_model)
    BGS_SALIENCY(ch_data_model)
    ch_versions = ch_versions.mix(BGS_SCORE.out.versions, BGS_SALIENCY.out.versions)

    def idp_table = params.bgs_idp ? file(params.bgs_idp, checkIfExists: true) : []
    BGS_IDP(BGS_PREPARE.out.data.map { m, data -> [m, data, idp_table] }, params.bgs_idp_methods.tokenize(','))
    ch_versions = ch_versions.mix(BGS_IDP.out.versions)

    ch_scores = BGS_SCORE.out.scores.mix(BGS_IDP.out.scores).groupTuple()
    ch_tables = ch_cohort.map { m, _subjects, _images, _bed, _bim, _fam, cognition, confounders, truth -> [m, cognition, confounders, truth] }
    BGS_ASSOCIATE(ch_scores.join(ch_tables).map { m, scores, cognition, confounders, _truth -> [m, scores, cognition, confounders] })
    ch_versions = ch_versions.mix(BGS_ASSOCIATE.out.versions)

    ch_metrics = BGS_SCORE.out.metrics.mix(BGS_IDP.out.metrics).groupTuple()
    BGS_RESULTS(ch_metrics.join(BGS_ASSOCIATE.out.assoc).join(ch_tables).map { m, metrics, assoc, _cognition, _confounders, truth -> [m, metrics, assoc, truth] })
    ch_versions = ch_versions.mix(BGS_RESULTS.out.versions)

    emit:
    results  = BGS_RESULTS.out.results
    saliency = BGS_SALIENCY.out.saliency
    versions = ch_versions
}
