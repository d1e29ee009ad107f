#!/usr/bin/env nextflow
/*
 * ginn: gene-gene interactions with interpretable neural networks.
 * This file only wires: declare and validate the params, pick the workflow, publish its outputs.
 *
 *   nextflow run . -profile test,docker                      # simulated data made by the pipeline itself
 *   nextflow run . -profile docker,gpu -params-file params.yaml
 *   nextflow run . -profile docker,gpu --workflow brain_genotype_scores --bgs_simulate true
 *
 * The params file is the same YAML that `ginn run --config` reads. Outputs land in --outdir/<stage>/ (the
 * layout `ginn run` writes), the package versions once in --outdir/pipeline_info/versions.yml.
 */

include { validateParameters; paramsSummaryLog } from 'plugin/nf-schema'
include { GENE_INTERACTIONS                    } from './workflows/gene_interactions.nf'
include { BRAIN_GENOTYPE_SCORES                } from './workflows/brain_genotype_scores.nf'
include { GINN_VERSIONS                        } from './modules/local/versions/main.nf'

// >>> generated: params
params {
    // ---- General options
    // Workflow to run (`ginn run` runs gene_interactions).
    workflow: String = 'gene_interactions'
    // Seed of every random draw.
    seed: Integer = 0
    // torch device: cpu, cuda, cuda:N or auto (TF32 matmuls on CUDA).
    device: String = 'cpu'

    // ---- Input cohort
    // Discovery cohort: PLINK 1 fileset prefix (.bed/.bim/.fam).
    bfile: String?
    // Discovery cohort: PLINK 2 fileset prefix (.pgen/.pvar/.psam), hard calls or dosages.
    pfile: String?
    // Discovery cohort: BGEN 1.2/1.3 file (dosages are kept).
    bgen: String?
    // Discovery cohort: Oxford .sample file of --bgen (default: the IDs inside it).
    sample: String?
    // Phenotype table with header: FID IID NAME... (NA = missing).
    pheno: String?
    // Comma-separated phenotype columns; each is analysed on its own.
    pheno_names: String = 'y'
    // Covariate table with header: FID IID ... (optional).
    covar: String?
    // Precomputed PCs of the discovery cohort: FID IID PC1 PC2 ... (optional).
    pc_file: String?
    // Gene annotation (glist, BED or GTF); default: packaged GRCh37 glist, or the simulated genes when simulate is true.
    genes: String?
    // Only these genes (one symbol a line), e.g. a candidate panel.
    keep_genes: String?

    // ---- Simulated cohort
    // Simulate the cohort (`ginn simulate`) instead of reading its genotypes and pheno.
    simulate: Boolean = false
    // Simulated individuals.
    sim_n_samples: Integer = 5000
    // Simulated genes (the first M packaged lipid genes).
    sim_n_genes: Integer = 10
    // Phenotype model: complex (Eq. 1: max, squared difference and product interactions among the paper's six gene pairs), simple (Eq. 2: products of top SNPs), null (Eq. 3).
    sim_model: String = 'complex'
    // Signal-to-noise variance ratio var(main + interaction)/var(noise).
    sim_snr: Float = 0.1
    // Proportion of each gene's SNPs with a non-zero weight alpha_ij.
    sim_causal_prop: Float = 0.5
    // Main-to-interaction variance ratio M/I (ignored by the null model).
    sim_mi_ratio: Float = 1.0
    // Haplotypes simulated per gene by msprime; individuals draw two each from this pool.
    sim_haplotypes: Integer = 2000
    // Keep at most this many SNPs per gene, chosen at random (0 = all).
    sim_snps_per_gene: Integer = 0

    // ---- Quality control, gene mapping, pruning, preparation
    // Max variant missing rate (hard calls).
    geno: Float = 0.05
    // Max sample missing rate (1 disables).
    mind: Float = 0.05
    // Min minor allele frequency (from dosages).
    maf: Float = 0.01
    // Min Hardy-Weinberg exact test p-value.
    hwe: Float = 1e-06
    // Min IMPUTE INFO score (BGEN only; the paper used 0.4).
    min_info: Float = 0.0
    // Bases added to each side of a gene.
    flank: Integer = 10000
    // Share of each gene's standardised genotype variance the kept SNPs must explain (1: drop only SNPs the kept ones explain exactly).
    keep_variance: Float = 1.0
    // Comma-separated covariate columns to regress out (e.g. age,sex).
    covar_name: String?
    // Genotype principal components to regress out (computed here unless --pc-file).
    pcs: Integer = 10
    // Held-out share of samples.
    test_fraction: Float = 0.3

    // ---- Tuning and training
    // Hidden units H of the M-H-1 predictor MLP (paper: 100 for 10 genes, 200 for 65; unused by --model main).
    predictor_hidden: Integer = 100
    // Gene MLP m_i-10-1 (paper) or linear m_i-1 (the authors' public code).
    gene_layer: String = 'mlp'
    // Adam learning rate.
    lr: Float = 0.005
    // Samples per optimisation step; 0 = min(30,000, a tenth of the training samples): the paper's 30,000 at UK Biobank scale, >= 10 steps per epoch on smaller cohorts.
    batch_size: Integer = 0
    // Epoch limit per network.
    max_epochs: Integer = 500
    // Stop a network after this many epochs without a better validation MSE.
    patience: Integer = 20
    // Share of the training samples held out (seeded) for early stopping.
    val_fraction: Float = 0.2
    // Cross-validation folds over the training samples.
    folds: Integer = 5
    // Comma-separated L1 strengths tried for the gene MLPs (and the predictor, unless --l1-predictor-grid).
    l1_grid: String = '0.0,1e-05,0.0001,0.001'
    // Networks per fold and setting (their mean prediction is scored).
    tune_members: Integer = 1
    // Deep-ensemble members per target dataset (paper: 50).
    members: Integer = 50

    // ---- Per-pair interaction test
    // Cross-fitting folds over all samples: each fold's gene values come from networks trained on the others.
    pairtest_folds: Integer = 5
    // Interaction networks per fold; their gene values are averaged.
    pairtest_members: Integer = 2
    // Pairs with Benjamini-Hochberg q_pair at most this are called.
    fdr: Float = 0.1

    // ---- Permutation test
    // Permutation null: perm-I (main-effect network + permuted residuals, the paper's test), perm-T or perm-R.
    permutation_target: String = 'perm-I'
    // Permuted datasets in Perm I's global test (0: no global test).
    permutations: Integer = 100
    // Permutations are trained and scored in this many parallel tasks; results do not depend on it.
    permutation_chunks: Integer = 4

    // ---- Baselines
    // Comma-separated baseline methods run beside the networks, e.g. topsnp-lr,pca-lasso (empty: none).
    baselines: String = ''

    // ---- Replication
    // Replication cohort: PLINK 1 fileset prefix (.bed/.bim/.fam).
    repl_bfile: String?
    // Replication cohort: PLINK 2 fileset prefix (.pgen/.pvar/.psam), hard calls or dosages.
    repl_pfile: String?
    // Replication cohort: BGEN 1.2/1.3 file (dosages are kept).
    repl_bgen: String?
    // Replication cohort: Oxford .sample file of --bgen (default: the IDs inside it).
    repl_sample: String?
    // Phenotype table of the replication cohort.
    repl_pheno: String?
    // Covariate table of the replication cohort (columns: covar_name).
    repl_covar: String?
    // Precomputed PCs of the replication cohort (optional).
    repl_pc_file: String?

    // ---- Brain-genotype scores
    // Name of the imaging cohort (file prefix).
    bgs_id: String = 'bgs'
    // Simulate a synthetic imaging cohort (`ginn bgs simulate`).
    bgs_simulate: Boolean = false
    // Subject table: FID IID image [sex].
    bgs_subjects: String?
    // Glob of the subjects' NIfTI images.
    bgs_images: String?
    // PLINK fileset prefix with the subjects' genotypes.
    bgs_bfile: String?
    // Cognition table: FID IID + one column per measure.
    bgs_cognition: String?
    // Confounder table: FID IID + columns (optional).
    bgs_confounders: String?
    // IDP table (FID IID + numeric columns) instead of atlas regional means.
    bgs_idp: String?
    // Comma-separated IDP baseline classifiers (svm, logistic, lightgbm).
    bgs_idp_methods: String = 'svm'
    // Number of subjects.
    bgs_n_subjects: Integer = 200
    // SNPs written to the PLINK fileset.
    bgs_n_snps: Integer = 6
    // Comma-separated planted regions: Desikan-Killiany label_L / label_R, a bare label for both hemispheres, or several joined by '+'. SNP j is planted in region j; the others have no effect.
    bgs_regions: String = 'superiorfrontal,lateraloccipital'
    // Voxel size (mm) of the images.
    bgs_sim_voxel_size: Float = 2.0
    // Random seed.
    bgs_seed: Integer = 1
    // Comma-separated SNP IDs to predict (default: every SNP of --bfile).
    bgs_snps: String?
    // Voxel size (mm) of the training grid: 1-2 on a GPU (the method uses 1); 4 is a CPU default (not the method's), 6-8 for tests.
    bgs_voxel_size: Float = 4.0
    // Validation fraction (early stopping, learning-rate schedule).
    bgs_val_fraction: Float = 0.2
    // Held-out fraction: the subjects scored and tested against cognition (large enough that a 200-subject cohort keeps 60).
    bgs_test_fraction: Float = 0.3
    // resnet10-se: the paper's ResNet-10 with squeeze-and-excitation; sfcn-lite: small CPU network.
    bgs_arch: String = 'resnet10-se'
    // Maximum epochs.
    bgs_epochs: Integer = 50
    // Volumes per optimisation step (the method's).
    bgs_batch_size: Integer = 20
    // AdamW learning rate (measured on CPU-sized synthetic data; the method's 5e-6 did not train there).
    bgs_lr: Float = 0.001
    // Stop after this many epochs without a better validation mean balanced accuracy; the learning rate is multiplied by 0.5 after 4 such epochs (ReduceLROnPlateau).
    bgs_patience: Integer = 10
    // auto, cpu, cuda or cuda:N (AMP on CUDA).
    bgs_device: String = 'auto'
    // Comma-separated SNPs to map (default: all the model predicts).
    bgs_saliency_snps: String?
    // Map only the first N subjects of the split.
    bgs_saliency_max_subjects: Integer?
    // Noisy copies per SmoothGrad map.
    bgs_saliency_samples: Integer = 20
    // Comma-separated confounder columns (default: all).
    bgs_covar_name: String?
    // Adjust for each head's true genotype, as the method does (the score must add to the SNP).
    bgs_adjust_genotype: Boolean = true
}
// <<< generated: params

workflow {
    main:
    // checked before the schema, so that the commonest mistakes get one line (as `ginn run` checks them)
    def genotypes = [params.bfile, params.pfile, params.bgen].findAll { g -> g != null }.size()
    def repl_genotypes = [params.repl_bfile, params.repl_pfile, params.repl_bgen].findAll { g -> g != null }.size()
    if (params.workflow == 'gene_interactions' && !params.simulate && !(genotypes == 1 && params.pheno)) {
        error("ginn: error: --bfile/--pfile/--bgen: give the discovery cohort (one of --bfile PREFIX, --pfile PREFIX or --bgen FILE, with --pheno FILE) or --simulate true")
    }
    if (params.workflow == 'gene_interactions' && params.simulate && genotypes > 0) {
        error("ginn: error: --simulate: simulates the discovery cohort; leave out --bfile/--pfile/--bgen")
    }
    if (repl_genotypes > 1) {
        error("ginn: error: --repl_bfile/--repl_pfile/--repl_bgen: give one genotype input of the replication cohort")
    }
    validateParameters()
    log.info(paramsSummaryLog(workflow))

    ch_published = channel.empty()
    if (params.workflow == 'gene_interactions') {
        GENE_INTERACTIONS()
        ch_published = GENE_INTERACTIONS.out.published
    }
    else {
        BRAIN_GENOTYPE_SCORES()
        ch_published = BRAIN_GENOTYPE_SCORES.out.published
    }
    GINN_VERSIONS()

    publish:
    results = ch_published
    versions = GINN_VERSIONS.out.versions
}

output {
    // every stage's files in its own folder, as `ginn run` lays them out
    results {
        path { stage, _files -> stage }
    }
    versions {
        path 'pipeline_info'
    }
}
