/*
 * Gene-gene interaction workflow (Cui et al.): QC -> gene mapping -> LD pruning, then per phenotype
 * prepare -> cross-fitted per-pair test, tune -> train (interaction ensemble on the observed phenotype; for
 * Perm I's global test also the main-effect null model and chunks of permuted datasets, each chunk its own
 * task, and their Shapley interaction scores) -> test (per-pair FDR calls beside the global test) ->
 * (baselines, replication) -> one HTML report. `ginn run` runs the same stages with the same argv.
 * Every collected input is sorted by file name, so -resume finds the same task hashes.
 */

include { GINN_SIMULATE          } from '../modules/local/simulate/main.nf'
include { GINN_QC                } from '../modules/local/qc/main.nf'
include { GINN_MAP_GENES         } from '../modules/local/map_genes/main.nf'
include { GINN_PRUNE             } from '../modules/local/prune/main.nf'
include { GINN_PREPARE           } from '../modules/local/prepare/main.nf'
include { GINN_TUNE              } from '../modules/local/tune/main.nf'
include { GINN_PAIRTEST          } from '../modules/local/pairtest/main.nf'
include { GINN_TRAIN_MAIN        } from '../modules/local/train_main/main.nf'
include { GINN_TRAIN_INTERACTION } from '../modules/local/train_interaction/main.nf'
include { GINN_SCORE             } from '../modules/local/score/main.nf'
include { GINN_TEST              } from '../modules/local/test/main.nf'
include { GINN_BASELINES         } from '../modules/local/baselines/main.nf'
include { GINN_REPLICATE         } from '../modules/local/replicate/main.nf'
include { GINN_REPORT            } from '../modules/local/report/main.nf'

/*
 * Permutations 1..n split into at most `chunks` contiguous ranges "A-B" of near-equal size; the same split
 * as ginn.plan.permutation_ranges. Permutation k is rebuilt from (seed, k), so results do not depend on it.
 */
def permutationRanges(n, chunks) {
    if (n < 1) {
        return []
    }
    def count = Math.max(1, Math.min(chunks, n))
    def size = n.intdiv(count)
    def extra = n % count
    return (0..<count).collect { i ->
        def start = i * size + Math.min(i, extra) + 1
        def stop = start + size + (i < extra ? 1 : 0) - 1
        "${start}-${stop}"
    }
}

/*
 * A cohort's genotypes as QC and replication take them: bed, bim, fam, pgen, pvar, psam, bgen, sample, all []
 * but the given format's files (ginn.plan.genotype_files). main.nf has checked that exactly one is given.
 */
def genotypeFiles(bfile, pfile, bgen, sample) {
    return [filesetFile(bfile, 'bed'), filesetFile(bfile, 'bim'), filesetFile(bfile, 'fam'),
        filesetFile(pfile, 'pgen'), filesetFile(pfile, 'pvar'), filesetFile(pfile, 'psam'), optionalFile(bgen), optionalFile(sample)]
}

// One file of a fileset when its prefix is given, else [].
def filesetFile(prefix, extension) {
    return optionalFile(prefix ? "${prefix}.${extension}" : null)
}

// The cohort's name (file prefix of its outputs): the fileset prefix's name, or the BGEN file's without .bgen.
def cohortName(bfile, pfile, bgen) {
    if (bgen) {
        return file(bgen).baseName
    }
    if (pfile) {
        return file(pfile).name
    }
    return file(bfile).name
}

def withMeta(meta, files) {
    return [meta] + files
}

// An optional input file: staged when given, else [] (the module then leaves its flag out).
def optionalFile(path) {
    if (path) {
        return file(path, checkIfExists: true)
    }
    return []
}

def commaList(text) {
    return text ? text.tokenize(',').collect { s -> s.trim() } : []
}

// Every file of a channel of [meta, file(s)...] tuples as one list sorted by name ([] for none): the report's input.
def stagedFiles(ch) {
    return ch.map { row -> row[1..-1] }.flatten().toSortedList { a, b -> a.name <=> b.name }.map { files -> [files] }
}

// A stage's outputs for the output block: [stage folder, tuple].
def published(stage, ch) {
    return ch.map { row -> [stage, row] }
}

workflow GENE_INTERACTIONS {
    main:
    // ---- input cohort: simulated by the pipeline itself, or the user's .bed, .pgen or BGEN -------------
    if (params.simulate) {
        GINN_SIMULATE(channel.of([id: 'simulated']))
        ch_genotypes = GINN_SIMULATE.out.plink.map { meta, bed, bim, fam -> [meta, bed, bim, fam, [], [], [], [], []] }
        ch_pheno = GINN_SIMULATE.out.pheno.map { _meta, pheno -> pheno }
        ch_genes = GINN_SIMULATE.out.genes.map { _meta, genes -> genes }
        ch_truth = GINN_SIMULATE.out.truth
        pheno_names = ['y']
        ch_simulated = GINN_SIMULATE.out.plink.mix(GINN_SIMULATE.out.pheno, GINN_SIMULATE.out.genes, ch_truth, GINN_SIMULATE.out.provenance)
    }
    else {
        ch_genotypes = channel.of(withMeta([id: cohortName(params.bfile, params.pfile, params.bgen)],
            genotypeFiles(params.bfile, params.pfile, params.bgen, params.sample)))
        ch_pheno = channel.value(file(params.pheno, checkIfExists: true))
        ch_genes = channel.value(optionalFile(params.genes))
        ch_truth = channel.empty()
        pheno_names = commaList(params.pheno_names)
        ch_simulated = channel.empty()
    }

    // ---- cohort-level stages ------------------------------------------------------------------------
    GINN_QC(ch_genotypes)
    // the QC'd fileset as the later stages take it: bed, bim, fam, pgen, pvar, psam (QC writes .bed for a .bed
    // input, else .pgen with the dosages)
    ch_passed = GINN_QC.out.plink.map { meta, bed, bim, fam -> [meta, bed, bim, fam, [], [], []] }
        .mix(GINN_QC.out.pgen.map { meta, pgen, pvar, psam -> [meta, [], [], [], pgen, pvar, psam] })
    GINN_MAP_GENES(ch_passed, ch_genes, optionalFile(params.keep_genes))
    GINN_PRUNE(ch_passed.join(GINN_MAP_GENES.out.map))

    // ---- one analysis per phenotype -------------------------------------------------------------------
    ch_prepare_in = ch_passed
        .join(GINN_PRUNE.out.map)
        .combine(ch_pheno)
        .combine(channel.fromList(pheno_names))
        .map { _cohort, bed, bim, fam, pgen, pvar, psam, map, pheno, name ->
            [[id: name], bed, bim, fam, pgen, pvar, psam, map, pheno, optionalFile(params.covar), optionalFile(params.pc_file)]
        }
    GINN_PREPARE(ch_prepare_in)
    GINN_PAIRTEST(GINN_PREPARE.out.data)
    GINN_TUNE(GINN_PREPARE.out.data)

    // Perm I's global test (permutations > 0): the main-effect null model, one task per permutation chunk
    // trained against it, and Shapley scores of the observed and permuted ensembles
    def ranges = permutationRanges(params.permutations, params.permutation_chunks)
    ch_tuned = GINN_PREPARE.out.data.join(GINN_TUNE.out.hparams)
    GINN_TRAIN_MAIN(ch_tuned.filter { _row -> ranges.size() > 0 })
    ch_observed_in = ch_tuned.map { meta, data, hparams -> [meta + [chunk: 'observed', permutations: null], data, hparams, []] }
    ch_permuted_in = ch_tuned
        .join(GINN_TRAIN_MAIN.out.models)
        .flatMap { meta, data, hparams, main ->
            ranges.collect { r -> [meta + [chunk: "perm-${r}", permutations: r], data, hparams, main] }
        }
    GINN_TRAIN_INTERACTION(ch_observed_in.mix(ch_permuted_in))

    ch_score_in = GINN_TRAIN_INTERACTION.out.models
        .filter { _row -> ranges.size() > 0 }
        .map { meta, models -> [meta.id, meta, models] }
        .combine(GINN_PREPARE.out.data.map { meta, data -> [meta.id, data] }, by: 0)
        .map { _id, meta, models, data -> [meta, data, models] }
    GINN_SCORE(ch_score_in)

    ch_scores = GINN_SCORE.out.scores
        .map { meta, scores -> [meta.id, scores] }
        .groupTuple(size: ranges.size() + 1, sort: { a, b -> a.name <=> b.name })
        .map { id, scores -> [[id: id], scores] }
    ch_test_in = ranges.size() > 0
        ? GINN_PAIRTEST.out.pairs.join(ch_scores)
        : GINN_PAIRTEST.out.pairs.map { meta, pairs -> [meta, pairs, []] }
    GINN_TEST(ch_test_in)

    // ---- optional: baselines and replication ------------------------------------------------------------
    def methods = commaList(params.baselines)
    GINN_BASELINES(GINN_PREPARE.out.data.combine(channel.fromList(methods)).map { meta, data, method -> [meta + [method: method], data] })

    ch_observed_models = GINN_TRAIN_INTERACTION.out.models
        .filter { meta, _models -> meta.chunk == 'observed' }
        .map { meta, models -> [[id: meta.id], models] }
    ch_replicate_in = params.repl_bfile || params.repl_pfile || params.repl_bgen
        ? GINN_PREPARE.out.data
            .join(ch_observed_models)
            .join(GINN_TEST.out.results)
            .map { meta, data, models, results ->
                [meta, data, models, results] + genotypeFiles(params.repl_bfile, params.repl_pfile, params.repl_bgen, params.repl_sample)
                    + [file(params.repl_pheno, checkIfExists: true), optionalFile(params.repl_covar), optionalFile(params.repl_pc_file)]
            }
        : channel.empty()
    GINN_REPLICATE(ch_replicate_in)

    // ---- report over everything, staged in the run folder layout ------------------------------------
    ch_report_in = channel.of([id: 'report'])
        .combine(stagedFiles(ch_truth))
        .combine(stagedFiles(GINN_QC.out.stats))
        .combine(stagedFiles(GINN_MAP_GENES.out.map))
        .combine(stagedFiles(GINN_PRUNE.out.map))
        .combine(stagedFiles(GINN_PREPARE.out.data))
        .combine(stagedFiles(GINN_TUNE.out.hparams))
        .combine(stagedFiles(GINN_PAIRTEST.out.results))
        .combine(stagedFiles(GINN_TRAIN_MAIN.out.models))
        .combine(stagedFiles(GINN_TRAIN_INTERACTION.out.models))
        .combine(stagedFiles(GINN_SCORE.out.scores))
        .combine(stagedFiles(GINN_TEST.out.results))
        .combine(stagedFiles(GINN_BASELINES.out.results))
        .combine(stagedFiles(GINN_REPLICATE.out.replication))
    GINN_REPORT(ch_report_in)

    emit:
    published = channel.empty().mix(
        published('simulate', ch_simulated),
        published('qc', GINN_QC.out.plink.mix(GINN_QC.out.pgen, GINN_QC.out.stats, GINN_QC.out.provenance)),
        published('map_genes', GINN_MAP_GENES.out.map.mix(GINN_MAP_GENES.out.genes, GINN_MAP_GENES.out.provenance)),
        published('prune', GINN_PRUNE.out.map.mix(GINN_PRUNE.out.genes, GINN_PRUNE.out.provenance)),
        published('prepare', GINN_PREPARE.out.data),
        published('tune', GINN_TUNE.out.hparams),
        published('pairtest', GINN_PAIRTEST.out.results),
        published('train_main', GINN_TRAIN_MAIN.out.models),
        published('train_interaction', GINN_TRAIN_INTERACTION.out.models),
        published('score', GINN_SCORE.out.scores.mix(GINN_SCORE.out.main_effects, GINN_SCORE.out.provenance)),
        published('test', GINN_TEST.out.results.mix(GINN_TEST.out.provenance)),
        published('baselines', GINN_BASELINES.out.results.mix(GINN_BASELINES.out.provenance)),
        published('replicate', GINN_REPLICATE.out.replication.mix(GINN_REPLICATE.out.details, GINN_REPLICATE.out.provenance)),
        published('report', GINN_REPORT.out.html)
    )
}
