"""Every stage command's flags: the one place a flag's type, default, range and help are written.

The click options of each command (``@stage_options``), ``ginn run``'s parameters, ``nextflow_schema.json``,
the params of ``nextflow.config`` and each Nextflow module's script are derived from these tuples
(``python -m ginn.contract`` regenerates the files; a test proves they are current). Adding a flag to a
stage is one line here plus, if the pipeline should set it, one argument in :mod:`ginn.contract.pipeline`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import Flag, click_options

SEED = 0  # default seed of every gene-interaction stage
BGS_SEED = 1  # default seed of every brain-genotype-scores stage
MAX_SEED = 2**32 - 1  # seeds are unsigned 32-bit integers (numpy's legacy seeding and every tool's common range)
FDR = 0.1  # false discovery rate of the per-pair calls (test, baselines, replicate, report)
L1_DEFAULT = 0.0  # L1 strength of gene-MLP and predictor weights when neither --hparams nor --l1-* set one
# Upper bounds of sizes that are allocated before any other check, so that a slip of the keyboard (--members
# 1000000000) is one line, not minutes of work ending out of memory; each is far beyond any real use.
MAX_MEMBERS = 1000  # networks per ensemble (the paper's 50, x 20)
MAX_PERMUTATIONS = 10_000  # permuted datasets: permutation p-values down to 1e-4
MAX_SIM_SAMPLES = 10_000_000  # simulated individuals (20 x UK Biobank)

# Genotype input of every stage that reads genotypes: the command gets one `genotypes` argument, built from
# these four by ginn.genotypes.genotype_input (COMBINERS).
GENOTYPES = (
    Flag('bfile', 'text', 'PLINK 1 fileset prefix (.bed/.bim/.fam).', into='genotypes'),
    Flag('pfile', 'text', 'PLINK 2 fileset prefix (.pgen/.pvar/.psam), hard calls or dosages.', into='genotypes'),
    Flag('bgen', 'text', 'BGEN 1.2/1.3 file (dosages are kept).', into='genotypes'),
    Flag('sample', 'text', 'Oxford .sample file of --bgen (default: the IDs inside it).', into='genotypes'),
)
COMBINERS = {"genotypes": "ginn.genotypes:genotype_input"}

THREADS = Flag('threads', 'int', 'CPU threads for torch and BLAS (default: the CPUs given to the task: $GINN_THREADS, '
               '$NXF_TASK_CPUS, else the cgroup quota or CPU affinity).', minimum=1, at_most_cpus=True)
DEVICE = Flag('device', 'device', 'torch device: cpu, cuda, cuda:N or auto (TF32 matmuls on CUDA).', default='cpu')

# `ginn simulate` (ginn.simulate)
SIMULATE = (
    Flag('model', 'choice',
         "Phenotype model: complex (Eq. 1: max, squared difference and product interactions among the "
         "paper's six gene pairs), simple (Eq. 2: products of top SNPs), null (Eq. 3).", default='complex',
         choices=('complex', 'simple', 'null')),
    Flag('n-samples', 'int', 'Number of individuals to simulate (not with --bfile, which uses its samples).',
         minimum=10, maximum=MAX_SIM_SAMPLES),
    Flag('genes', 'file', 'Gene names, one a line, in model order (gene 1 first) [default: packaged lipid genes].',
         dest='genes_file'),
    Flag('n-genes', 'int', 'Use the first M genes of the list [default: 10 with the packaged list, else all].',
         minimum=1),
    Flag('gene-list', 'file', 'Gene coordinates (glist: chrom start end gene) [default: packaged glist-hg19].',
         dest='glist'),
    Flag('snr', 'float', 'Signal-to-noise variance ratio var(main + interaction)/var(noise).', default=0.1,
         minimum=0, open_min=True),
    Flag('causal-prop', 'float', "Proportion of each gene's SNPs with a non-zero weight alpha_ij.", default=0.5,
         minimum=0, open_min=True, maximum=1),
    Flag('mi-ratio', 'float', 'Main-to-interaction variance ratio M/I (ignored by the null model).', default=1.0,
         minimum=0),
    Flag('n-interacting', 'int', 'Only genes 1..k interact (the six pairs repeat per block of ten genes).',
         default=10, minimum=2),
    Flag('flank', 'int', 'Base pairs simulated on each side of a gene (at most 1 Mb: msprime takes ~1.5 min '
         'for 2,000 haplotypes there).', default=10000, minimum=0, maximum=1_000_000),
    Flag('maf', 'float', 'Keep simulated SNPs with minor allele frequency at least this.', default=0.01, minimum=0,
         maximum=0.5),
    Flag('haplotypes', 'int', 'Haplotypes simulated per gene by msprime; individuals draw two each from this pool.',
         default=2000, minimum=20, maximum=100_000),
    Flag('snps-per-gene', 'int', 'Keep at most this many SNPs per gene, chosen at random (0 = all).', default=0,
         minimum=0),
    Flag('bfile', 'file', 'Use the genotypes of this PLINK fileset instead of simulating them (needs --map).'),
    Flag('map', 'file', 'SNP-to-gene map (snp gene) of --bfile, e.g. from `ginn map-genes`.', dest='map_file'),
    Flag('seed', 'int', 'Seed of every random draw.', default=SEED, minimum=0, maximum=MAX_SEED),
    Flag('out', 'path', 'Output prefix: PREFIX.bed/.bim/.fam, .pheno.tsv, .genes.tsv, .truth.tsv, .provenance.json.',
         required=True),
)
# `ginn qc` (ginn.qc)
QC = (
    *GENOTYPES,
    Flag('geno', 'float', 'Max variant missing rate (hard calls).', default=0.05, minimum=0.0, maximum=1.0),
    Flag('mind', 'float', 'Max sample missing rate (1 disables).', default=0.05, minimum=0.0, maximum=1.0),
    Flag('maf', 'float', 'Min minor allele frequency (from dosages).', default=0.01, minimum=0.0, maximum=0.5),
    Flag('hwe', 'float', 'Min Hardy-Weinberg exact test p-value.', default=1e-06, minimum=0.0, maximum=1.0),
    Flag('min-info', 'float', 'Min IMPUTE INFO score (BGEN only; the paper used 0.4).', default=0.0, minimum=0.0,
         maximum=1.0),
    Flag('chunk-size', 'int', 'Variants read per chunk.', default=4096, minimum=1),
    Flag('out', 'text', 'Output prefix: OUT.bed/.bim/.fam (OUT.pgen/.pvar/.psam for dosages), OUT.qc.tsv, '
         'OUT.qc.samples.tsv.', required=True),
)
# `ginn map-genes` (ginn.genes)
MAP_GENES = (
    *GENOTYPES,
    Flag('genes', 'path',
         'Gene annotation: glist (chrom start end symbol), TSV with header, BED or GTF [default: the '
         'packaged GRCh37 glist].', dest='genes_file'),
    Flag('genes-format', 'choice', 'Annotation format (auto: by file extension).', default='auto',
         choices=('auto', 'glist', 'bed', 'gtf')),
    Flag('keep-genes', 'path', 'Only these genes (one symbol a line), e.g. a candidate panel.'),
    Flag('flank', 'int', 'Bases added to each side of a gene.', default=10000, minimum=0),
    Flag('out', 'file', 'Output MAP.tsv (snp gene); MAP.genes.tsv reports SNPs per gene.', required=True),
)
# `ginn prune` (ginn.prune)
PRUNE = (
    *GENOTYPES,
    Flag('map', 'path', 'SNP-gene map from `ginn map-genes` (snp gene).', required=True, dest='map_path'),
    # 1 = lossless: only SNPs that the kept ones already explain exactly go. Measured (benchmarks/bench_pruning.py,
    # 10 msprime cohorts of 10 genes x 20 SNPs): 0.9 kept 117 of 200 SNPs and left the worst gene 0.63 +- 0.16 of its
    # planted gene score; 0.99 kept 158 and 0.92 +- 0.10; 1 keeps 179 and all of it. The networks learn gene values
    # from the kept SNPs, so pruning below 1 only trades detection for speed (lower it for genes with thousands of SNPs).
    Flag('keep-variance', 'float', "Share of each gene's standardised genotype variance the kept SNPs must explain "
         "(1: drop only SNPs the kept ones explain exactly).", default=1.0, minimum=0, maximum=1, open_min=True),
    Flag('out', 'file', 'Output PRUNED.tsv (snp gene); PRUNED.genes.tsv summarises genes.', required=True),
)
# `ginn prepare` (ginn.prepare)
PREPARE = (
    *GENOTYPES,
    Flag('map', 'path', 'SNP-gene map (snp gene), usually from `ginn prune`.', required=True, dest='map_path'),
    Flag('pheno', 'path', 'Phenotype table with header: FID IID NAME... (NA and -9 = missing).', required=True),
    Flag('pheno-name', 'text', 'Phenotype column to analyse.', required=True),
    Flag('covar', 'path', 'Covariate table with header: FID IID ... (NA and -9 = missing; a text column such as '
         'sex M/F is categorical).'),
    Flag('covar-name', 'text', 'Comma-separated covariate columns to regress out (e.g. age,sex).'),
    Flag('pcs', 'int', 'Genotype principal components to regress out (computed here unless --pc-file).', default=10,
         minimum=0),
    Flag('pc-file', 'path', 'Precomputed PCs: FID IID PC1 PC2 ... (e.g. plink2 --pca).'),
    Flag('test-fraction', 'float', 'Held-out share of samples.', default=0.3, minimum=0, maximum=1, open_min=True,
         open_max=True),
    Flag('seed', 'int', 'Seed for the split and the PC sketch.', default=SEED, minimum=0, maximum=MAX_SEED),
    Flag('out', 'dir', 'Output dataset folder DATA/.', required=True),
)
# shared by `ginn tune` and `ginn train`
TRAINING = (
    Flag('model', 'choice',
         'Gene interaction NN, or the main-effect NN (linear predictor, Eq. 13) used as the Perm I null '
         'model.', default='interaction', choices=('interaction', 'main'), dest='model_kind'),
    Flag('predictor-hidden', 'int',
         'Hidden units H of the M-H-1 predictor MLP (paper: 100 for 10 genes, 200 for 65; unused by --model '
         'main).', default=100, minimum=1, maximum=10_000),
    Flag('gene-layer', 'choice', "Gene MLP m_i-10-1 (paper) or linear m_i-1 (the authors' public code).",
         default='mlp', choices=('mlp', 'linear')),
    Flag('lr', 'float', 'Adam learning rate.', default=0.005, minimum=0, open_min=True),
    Flag('batch-size', 'int',
         "Samples per optimisation step; 0 = min(30,000, a tenth of the training samples): the paper's "
         "30,000 at UK Biobank scale, >= 10 steps per epoch on smaller cohorts.", default=0, minimum=0),
    Flag('max-epochs', 'int', 'Epoch limit per network.', default=500, minimum=1),
    Flag('patience', 'int', 'Stop a network after this many epochs without a better validation MSE.', default=20,
         minimum=1),
    Flag('val-fraction', 'float', 'Share of the training samples held out (seeded) for early stopping.', default=0.2,
         minimum=0, maximum=1, open_min=True, open_max=True),
    DEVICE,
    Flag('chunk-networks', 'int', 'Train at most this many networks at once; default all on a GPU, 500 on the CPU '
         '(there larger runs were no faster per network through the fused kernel, and slower on torch\'s path: '
         '6.4 ms per network-epoch at 2,000 against 3.8 at 500).', minimum=1),
    Flag('seed', 'int', 'Seed of inits, data order, splits and permutations.', default=SEED, minimum=0, maximum=MAX_SEED),
    THREADS,
)
# `ginn tune` (ginn.train)
TUNE = (
    Flag('data', 'path', 'Prepared dataset folder (from `ginn prepare`).', required=True),
    *TRAINING,
    Flag('folds', 'int', 'Cross-validation folds over the training samples.', default=5, minimum=2),
    Flag('l1-grid', 'grid',
         'Comma-separated L1 strengths tried for the gene MLPs (and the predictor, unless '
         '--l1-predictor-grid).', default='0.0,1e-05,0.0001,0.001'),
    Flag('l1-predictor-grid', 'grid',
         'Comma-separated predictor L1 strengths; given, every pair with --l1-grid is tried.'),
    Flag('members', 'int', 'Networks per fold and setting (their mean prediction is scored).', default=1, minimum=1,
         maximum=MAX_MEMBERS),
    Flag('out', 'file', 'Output HPARAMS.json (chosen l1_gene, l1_predictor and the CV curve).', required=True),
)
# `ginn train` (ginn.train)
TRAIN = (
    Flag('data', 'path', 'Prepared dataset folder (from `ginn prepare`).', required=True),
    *TRAINING,
    Flag('members', 'int', 'Deep-ensemble members per target dataset (paper: 50).', default=50, minimum=1,
         maximum=MAX_MEMBERS),
    Flag('hparams', 'path', 'HPARAMS.json from `ginn tune` (l1_gene, l1_predictor).'),
    Flag('l1-gene', 'float', f'L1 strength on gene-MLP weights (overrides --hparams; default {L1_DEFAULT}).',
         minimum=0),
    Flag('l1-predictor', 'float', f'L1 strength on predictor weights (overrides --hparams; default {L1_DEFAULT}).',
         minimum=0),
    Flag('target', 'choice',
         'observed phenotype, or permuted datasets: perm-I (main effect + permuted residual), perm-T, '
         'perm-R.', default='observed', choices=('observed', 'perm-I', 'perm-T', 'perm-R')),
    Flag('permutations', 'text', 'Permutation indices A-B (inclusive, from 1) for perm-* targets.'),
    Flag('null-model', 'path',
         'MODELS/ folder of a `--model main` ensemble: its mean prediction is the main effect for '
         'perm-I/perm-R.'),
    Flag('out', 'dir', 'Output folder MODELS/ (ensemble.pt, ensemble.json, metrics.json, provenance.json).',
         required=True),
)
# `ginn pairtest` (ginn.pairtest)
PAIRTEST = (
    Flag('data', 'path', 'Prepared dataset folder (from `ginn prepare`).', required=True),
    Flag('folds', 'int',
         "Cross-fitting folds over all samples: each fold's gene values come from networks trained on the "
         "others.", default=5, minimum=2, maximum=50),
    Flag('members', 'int', 'Interaction networks per fold; their gene values are averaged.', default=2, minimum=1,
         maximum=MAX_MEMBERS),
    *(flag for flag in TRAINING if flag.name not in ('model', 'chunk-networks')),
    Flag('out', 'dir',
         'Output folder PAIRS/: pairs.tsv (gene_a gene_b z p_pair), the fold ensembles, metrics.json, '
         'provenance.json.', required=True),
)
# `ginn score` (ginn.score)
SCORE = (
    Flag('data', 'path', 'Prepared dataset folder (from `ginn prepare`).', required=True),
    Flag('models', 'path', 'MODELS/ folder from `ginn train`.', required=True),
    Flag('exact', 'bool', 'Enumerate all 2^M coalitions (default when M <= 16; at most 20 genes).', default=False),
    Flag('samples', 'int',
         'Random coalitions per individual and network, shared by all pairs (unbiased SII with a standard '
         'error; default 64 when M > 16).', minimum=2, maximum=100_000),
    Flag('rows', 'choice', 'Individuals the scores average over (the paper scores the test set).', default='test',
         choices=('test', 'train', 'all')),
    Flag('baseline', 'choice', 'Value of an absent gene: its mean over the scored rows, or over the training rows.',
         default='scored', choices=('scored', 'train')),
    Flag('local', 'file', "Also write FILE.npy: the observed ensemble's local SII, rows x gene pairs (for heatmaps).",
         writes=True),
    Flag('triples', 'file',
         'Table with columns gene_a gene_b gene_c: also write SCORES.triples.tsv (third-order SII).',
         dest='triples_file'),
    Flag('seed', 'int', 'Seed of the random coalitions.', default=SEED, minimum=0, maximum=MAX_SEED),
    Flag('batch-size', 'int', 'Rows per gene-layer batch.', default=4096, minimum=1),
    DEVICE,
    THREADS,
    Flag('out', 'file',
         'SCORES.tsv (dataset gene_a gene_b score se se_mc); SCORES.main.tsv gets per-gene Shapley values.',
         required=True),
)
# `ginn test` (ginn.permtest)
TEST = (
    Flag('pairs', 'file', 'pairs.tsv from `ginn pairtest` (gene_a gene_b z p_pair): the per-pair tests to call.',
         required=True, dest='pairs_path'),
    Flag('scores', 'file',
         "Optional: SCORES.tsv from `ginn score` of the observed and Perm I ensembles, for the global test "
         "and the Shapley ranking. Give several (after one --scores or repeated) to merge permutation "
         "chunks scored in parallel.", multiple=True, dest='score_paths'),
    Flag('more_scores', 'file', '', argument=True),
    Flag('fdr', 'float', 'Pairs with Benjamini-Hochberg q_pair at most this are called.', default=FDR, minimum=0,
         maximum=1, open_min=True, open_max=True),
    Flag('out', 'file',
         'RESULTS.tsv: gene_a gene_b score p_pair q_pair p_pair_fwer called global_p_perm global_p_maxt '
         'global_q_fdr n_permutations shapley, best score first.', required=True),
)
# `ginn baselines` (ginn.baselines)
BASELINES = (
    Flag('data', 'path', 'Prepared dataset folder (`ginn prepare` or simulated).', required=True),
    Flag('method', 'choice',
         'Gene representation (topsnp: strongest marginal SNP; pca: first principal component) and '
         'interaction model (lr: per-pair OLS with a product term; lasso: all pairwise products; xgb: '
         'boosted trees scored by SHAP interaction values).', required=True,
         choices=('topsnp-lr', 'topsnp-lasso', 'topsnp-xgb', 'pca-lr', 'pca-lasso', 'pca-xgb')),
    Flag('perm', 'choice',
         'Permutation null for lasso/xgb: T permutes y, R permutes the residual of the linear main-effect '
         'model.', choices=('T', 'R')),
    Flag('permutations', 'int', 'Number of permuted datasets (permutation k is rebuilt from (seed, k)).', default=0,
         minimum=0, maximum=MAX_PERMUTATIONS),
    Flag('xgb-trees', 'int', 'XGBoost trees (learning rate 0.1, 80% row subsampling).', default=100, minimum=1),
    Flag('xgb-depth', 'int', 'XGBoost tree depth.', default=3, minimum=1),
    Flag('shap-samples', 'int',
         'Test samples (a seeded subset) on which XGBoost SHAP interactions are averaged; TreeSHAP '
         'interaction values cost ~3 ms per sample with the default trees.', default=500, minimum=10,
         dest='shap_rows'),
    THREADS,
    Flag('seed', 'int', 'Seed of CV folds, XGBoost subsampling, SHAP rows and permutations.', default=SEED, minimum=0, maximum=MAX_SEED),
    Flag('fdr', 'float', 'lr: pairs with Benjamini-Hochberg q_pair at most this are called.', default=FDR, minimum=0,
         maximum=1, open_min=True, open_max=True),
    Flag('out', 'file', 'RESULTS.tsv with the columns of `ginn test`, sorted by score.', required=True),
)
# `ginn replicate` (ginn.replicate)
REPLICATE = (
    Flag('data', 'path', 'Discovery dataset folder DATA/.', required=True, dest='data_path'),
    Flag('models', 'path', 'Discovery interaction ensemble MODELS/ (its `observed` networks give the gene values).',
         required=True, dest='models_path'),
    Flag('results', 'path', 'RESULTS.tsv of `ginn test` (gene_a gene_b score ... q_pair).', required=True,
         dest='results_path'),
    *GENOTYPES,
    Flag('pheno', 'path', 'Replication phenotype table: FID IID NAME...', required=True),
    Flag('pheno-name', 'text', 'Phenotype column to analyse.', required=True),
    Flag('covar', 'path', 'Covariate table: FID IID ... (NA and -9 = missing; a text column is categorical).'),
    Flag('covar-name', 'text', 'Comma-separated covariates to regress out (e.g. age,sex).'),
    Flag('pcs', 'int', 'Genotype PCs to regress out [default: as many as the discovery data used].', minimum=0),
    Flag('pc-file', 'path', 'Precomputed PCs: FID IID PC1 PC2 ...'),
    Flag('fdr', 'float', "Candidate pairs are those with q_pair (the per-pair test's FDR q-value) at most this.",
         default=FDR, minimum=0, maximum=1),
    Flag('top', 'int', 'Instead of --fdr, take the N highest-scoring pairs.', minimum=1),
    Flag('ambiguous-maf', 'float',
         "A/T and C/G SNPs are oriented by frequency when both cohorts' MAF <= this, else dropped.", default=0.4,
         minimum=0, maximum=0.5),
    Flag('plot-pairs', 'int', 'Write Fig. 7 data (points, learned surface) for this many top candidate pairs.',
         default=6, minimum=0),
    Flag('seed', 'int', 'Seed of the Eq. 5 networks and PCs.', default=SEED, minimum=0, maximum=MAX_SEED),
    THREADS,
    Flag('out', 'file', 'REPL.tsv; REPL.alignment.tsv, .gene_alignment.tsv, .points.tsv, .surface.tsv beside it.',
         required=True),
)
# `ginn report` (ginn.report)
REPORT = (
    Flag('outdir', 'path', 'Run folder (DIR of `ginn run`: DIR/<stage>/...).', required=True),
    Flag('fdr', 'float', 'FDR threshold that marks candidate pairs in tables and figures.', default=FDR, minimum=0,
         maximum=1),
    Flag('out', 'file', 'Output HTML file (self-contained).', required=True),
)
# `ginn bgs simulate` (ginn.bgs.synth)
BGS_SIMULATE = (
    Flag('n-subjects', 'int', 'Number of subjects.', default=200, minimum=20),
    Flag('n-snps', 'int', 'SNPs written to the PLINK fileset.', default=6, minimum=1),
    Flag('regions', 'text', "Comma-separated planted regions: Desikan-Killiany label_L / label_R, a bare label for both hemispheres, or several joined by '+'. SNP j is planted in region j; the others have no effect.", default='superiorfrontal,lateraloccipital'),
    Flag('voxel-size', 'float', 'Voxel size (mm) of the images.', default=2.0, minimum=0.5, maximum=12),
    Flag('snp-r2', 'float', "Variance of a planted region's measure explained by its SNP (the effect-size knob; 0.02 is the upper end of UK Biobank IDP GWAS hits, CPU-sized cohorts need far more to detect anything).", default=0.02, minimum=0, maximum=1),
    Flag('region-volume-sd', 'float', 'Relative volume change of a planted region per SD of its regional effect (about 10% between people for cortical regions).', default=0.1, minimum=0),
    Flag('intensity-effect', 'float', 'Relative intensity change of a planted region per SD of its effect (grey-matter density; 0: the effect is morphometric only, as the volume IDPs see it; beyond +-1 intensities turn negative).', default=0.0,
         minimum=-1, maximum=1),
    Flag('anatomy-sd', 'float', 'SD of the shared, genotype-free brain scaling (linear), visible to every head.', default=0.03, minimum=0),
    Flag('path-effect', 'float', 'Genotype -> brain -> cognition: cognition change per SD of each planted regional effect (noise SD 1; 0 removes the path).', default=0.3,
         minimum=-10, maximum=10),
    Flag('anatomy-effect', 'float', 'Shared-anatomy -> cognition: cognition change per SD of the shared factor (a confounding path without genotype; 0 removes it).', default=0.3,
         minimum=-10, maximum=10),
    Flag('deform-mm', 'float', 'SD of the random smooth deformation (mm).', default=2.0, minimum=0),
    Flag('noise', 'float', 'Voxel noise SD (template range is 0-1).', default=0.05, minimum=0),
    Flag('missing-rate', 'float', 'Fraction of missing genotype calls.', default=0.01, minimum=0, maximum=1, open_max=True),
    Flag('seed', 'int', 'Random seed.', default=BGS_SEED, minimum=0, maximum=MAX_SEED),
    Flag('out', 'dir', 'Output folder: images/*.nii.gz, subjects.tsv (FID IID image sex), genotypes.bed/.bim/.fam, cognition.tsv, confounders.tsv (FID IID age sex head_size centre education PC1 PC2), idp.tsv (regional volumes and total_brain_volume, mm^3), truth.tsv.', required=True),
)
# `ginn bgs prepare` (ginn.bgs.images)
BGS_PREPARE = (
    Flag('subjects', 'path', 'Subject sheet (tab/space or comma separated) with header: FID IID image [sex]; image = NIfTI path relative to the sheet. Without an image column, --image-dir must hold <IID>.nii[.gz].', required=True, dest='subjects_path'),
    Flag('bfile', 'text', "PLINK 1 fileset prefix with the subjects' genotypes.", required=True),
    Flag('snps', 'text', 'Comma-separated SNP IDs to predict (default: every SNP of --bfile).'),
    Flag('voxel-size', 'float', "Voxel size (mm) of the training grid: 1-2 on a GPU (the method uses 1); 4 is a CPU default (not the method's), 6-8 for tests.", default=4.0, minimum=0.5, maximum=12),
    Flag('val-fraction', 'float', 'Validation fraction (early stopping, learning-rate schedule).', default=0.2, minimum=0, maximum=1, open_min=True, open_max=True),
    Flag('test-fraction', 'float', 'Held-out fraction: the subjects scored and tested against cognition (large enough that a 200-subject cohort keeps 60).', default=0.3, minimum=0, maximum=1, open_min=True, open_max=True),
    Flag('n-controls', 'int', 'Negative-control labels (permuted genotypes) trained beside the SNPs; the null of `bgs associate` (100 controls x measures make its false-positive rate measurable to ~0.02).', default=100, minimum=0),
    Flag('min-mask-r', 'float', 'Registration check: least correlation of each resampled image with the MNI brain mask (measured on 300 synthetic images at 8 mm: registered 0.83-0.97, shifted 40 mm 0.40-0.57). An image that its own front-back or up-down flip matches better is an error too.', default=0.7, minimum=0, maximum=1),
    Flag('image-dir', 'dir', "Folder of the images: looked up by the sheet's file names, or by <IID>.nii[.gz] without an image column."),
    Flag('seed', 'int', 'Seed of the stratified split and the control permutations.', default=BGS_SEED, minimum=0, maximum=MAX_SEED),
    Flag('out', 'dir', 'Output folder PREP/.', required=True),
)
# `ginn bgs train` (ginn.bgs.train)
BGS_TRAIN = (
    Flag('data', 'dir', 'Prepared imaging folder from `ginn bgs prepare`.', required=True, exists=True, dest='data_path'),
    Flag('arch', 'choice', "resnet10-se: the paper's ResNet-10 with squeeze-and-excitation; sfcn-lite: small CPU network.", default='resnet10-se', choices=('resnet10-se', 'sfcn-lite')),
    Flag('width', 'int', 'Channels of the first stage (default 64 for resnet10-se, 16 for sfcn-lite).', minimum=1),
    Flag('epochs', 'int', 'Maximum epochs.', default=50, minimum=1),
    Flag('batch-size', 'int', "Volumes per optimisation step (the method's).", default=20, minimum=1),
    Flag('lr', 'float', "AdamW learning rate (measured on CPU-sized synthetic data; the method's 5e-6 did not train there).", default=0.001, minimum=0, open_min=True),
    Flag('weight-decay', 'float', "AdamW weight decay (the method's).", default=8e-05, minimum=0),
    Flag('patience', 'int', 'Stop after this many epochs without a better validation mean balanced accuracy; the learning rate is multiplied by 0.5 after 4 such epochs (ReduceLROnPlateau).', default=10, minimum=1),
    Flag('balanced', 'bool', 'Class-balanced sampling of training subjects (with replacement).', default=True, negatable=True),
    Flag('device', 'device', 'auto, cpu, cuda or cuda:N (AMP on CUDA).', default='auto'),
    Flag('checkpoint', 'file', 'Resumable checkpoint file written every epoch; training resumes from it when it exists.', writes=True),
    THREADS,
    Flag('seed', 'int', 'Seed of initialisation and sampling.', default=BGS_SEED, minimum=0, maximum=MAX_SEED),
    Flag('out', 'dir', 'Output folder MODEL/.', required=True),
)
# `ginn bgs score` (ginn.bgs.score)
BGS_SCORE = (
    Flag('data', 'dir', 'Prepared imaging folder from `ginn bgs prepare`.', required=True, exists=True, dest='data_path'),
    Flag('model', 'dir', 'Trained model folder from `ginn bgs train`.', required=True, exists=True, dest='model_path'),
    Flag('split', 'choice', 'Subjects to score.', default='test', choices=('train', 'val', 'test')),
    Flag('batch-size', 'int', 'Volumes per forward pass.', default=16, minimum=1),
    Flag('device', 'device', 'auto, cpu, cuda or cuda:N.', default='auto'),
    Flag('seed', 'int', 'Seed of the bootstrap CIs.', default=BGS_SEED, minimum=0, maximum=MAX_SEED),
    THREADS,
    Flag('out', 'file', 'SCORES.tsv; metrics go to SCORES.metrics.tsv beside it.', required=True),
)
# `ginn bgs saliency` (ginn.bgs.saliency)
BGS_SALIENCY = (
    Flag('data', 'dir', 'Prepared imaging folder from `ginn bgs prepare`.', required=True, exists=True, dest='data_path'),
    Flag('model', 'dir', 'Trained model folder from `ginn bgs train`.', required=True, exists=True, dest='model_path'),
    Flag('snps', 'text', 'Comma-separated SNPs to map (default: all the model predicts).'),
    Flag('split', 'choice', 'Subjects to map.', default='test', choices=('train', 'val', 'test')),
    Flag('max-subjects', 'int', 'Map only the first N subjects of the split.', minimum=1),
    Flag('n-samples', 'int', 'Noisy copies per SmoothGrad map.', default=20, minimum=1),
    Flag('noise', 'float', "SmoothGrad noise SD as a fraction of each volume's intensity range (max - min); 0.01 as the method.", default=0.01, minimum=0),
    Flag('subject-maps', 'bool', "Write each subject's map as NIfTI (group maps and the region table are always written).", default=True, negatable=True),
    Flag('batch-size', 'int', 'Subjects per noisy forward pass.', default=16, minimum=1),
    Flag('device', 'device', 'auto, cpu, cuda or cuda:N.', default='auto'),
    Flag('seed', 'int', 'Seed of the SmoothGrad noise.', default=BGS_SEED, minimum=0, maximum=MAX_SEED),
    THREADS,
    Flag('out', 'dir', 'Output folder SAL/.', required=True),
)
# `ginn bgs idp` (ginn.bgs.idp)
BGS_IDP = (
    Flag('data', 'dir', 'Prepared imaging folder from `ginn bgs prepare` (split, genotypes, default IDPs).', required=True, exists=True, dest='data_path'),
    Flag('method', 'choice', 'Classifier.', default='svm', choices=('svm', 'logistic', 'lightgbm')),
    Flag('idp', 'file', "IDP table (FID IID + numeric columns, e.g. regional volumes; `bgs simulate` writes idp.tsv) instead of the prepared folder's regional mean intensities.", dest='idp_path'),
    Flag('seed', 'int', 'Seed of the classifier and bootstrap CIs.', default=BGS_SEED, minimum=0, maximum=MAX_SEED),
    Flag('out', 'file', 'SCORES.tsv of the baseline; metrics go to SCORES.metrics.tsv beside it.', required=True),
)
# `ginn bgs associate` (ginn.bgs.associate)
BGS_ASSOCIATE = (
    Flag('scores', 'file', 'SCORES.tsv from `bgs score` or `bgs idp` (repeat to test several methods at once).', required=True, multiple=True, dest='scores_paths'),
    Flag('cognition', 'file', 'Cognition table: FID IID + one column per measure.', required=True, dest='cognition_path'),
    Flag('measures', 'text', 'Comma-separated cognition columns (default: all).'),
    Flag('covar', 'file', "Confounder table: FID IID + columns (text columns become indicator variables); the method's set is head size, centre, education and genetic PCs (plus age and sex).", dest='confounders_path'),
    Flag('covar-name', 'text', 'Comma-separated confounder columns (default: all).', dest='covar_names'),
    Flag('adjust-genotype', 'bool', "Adjust for each head's true genotype, as the method does (the score must add to the SNP).", default=True, negatable=True),
    Flag('genotype-baseline', 'bool', "Also test each SNP's dosage itself (method 'genotype').", default=True, negatable=True),
    Flag('alpha', 'float', "Family-wise level for `significant` (Bonferroni over a method's SNPs x measures).", default=0.05, minimum=0, maximum=1, open_min=True, open_max=True),
    Flag('out', 'file', 'Output ASSOC.tsv.', required=True),
)
# `ginn bgs results` (ginn.bgs.report)
BGS_RESULTS = (
    Flag('metrics', 'file', 'SCORES.metrics.tsv of a method (repeat for the CNN and each IDP baseline).', required=True, multiple=True, dest='metrics_paths'),
    Flag('assoc', 'file', 'ASSOC.tsv from `bgs associate`.', required=True, dest='assoc_path'),
    Flag('truth', 'file', 'truth.tsv of a simulated cohort (adds planted and region columns).', dest='truth_path'),
    Flag('out', 'file', 'Output RESULTS.tsv.', required=True),
)


@dataclass(frozen=True)
class Stage:
    """A stage command: its flags and whether its code can run on a GPU (it has a ``--device`` flag)."""

    command: str
    flags: tuple[Flag, ...]

    @property
    def uses_gpu(self) -> bool:
        return any(flag.name == "device" for flag in self.flags)

    def flag(self, name: str) -> Flag:
        for flag in self.flags:
            if flag.name == name:
                return flag
        raise KeyError(f"`ginn {self.command}` has no --{name}")


STAGES: dict[str, Stage] = {stage.command: stage for stage in (
    Stage("simulate", SIMULATE), Stage("qc", QC), Stage("map-genes", MAP_GENES), Stage("prune", PRUNE),
    Stage("prepare", PREPARE), Stage("tune", TUNE), Stage("pairtest", PAIRTEST), Stage("train", TRAIN),
    Stage("score", SCORE),
    Stage("test", TEST), Stage("baselines", BASELINES), Stage("replicate", REPLICATE), Stage("report", REPORT),
    Stage("bgs simulate", BGS_SIMULATE), Stage("bgs prepare", BGS_PREPARE), Stage("bgs train", BGS_TRAIN),
    Stage("bgs score", BGS_SCORE), Stage("bgs saliency", BGS_SALIENCY), Stage("bgs idp", BGS_IDP),
    Stage("bgs associate", BGS_ASSOCIATE), Stage("bgs results", BGS_RESULTS),
)}


def stage_default(command: str, flag: str):
    """The default of ``ginn <command> --<flag>``, for the in-memory API's signatures (its one home)."""
    return STAGES[command].flag(flag).default


def stage_options(command: str):
    """The click options of ``ginn <command>``, from its contract."""
    return click_options(STAGES[command].flags, COMBINERS)
