"""Each Nextflow process of the pipeline: its inputs, outputs, resources and how it calls its stage.

A :class:`Process` is rendered into ``modules/local/<module>/main.nf`` (:mod:`ginn.contract.render`) and
into the argv ``ginn run`` executes (:func:`argv`), so the two cannot disagree. An :class:`Arg` sets one
flag of the stage (:mod:`ginn.contract.stages`) from a pipeline param, a staged input, the task's ``meta``
map, a fixed value or an output name. Wherever a stage has ``--device`` the process passes the workflow's
device param and runs on a GPU (label ``process_gpu``); wherever it has ``--threads`` it passes the task's
CPUs: giving a stage those flags is all it takes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .stages import STAGES, Flag


@dataclass(frozen=True)
class In:
    """One input element: ``val`` (a value, e.g. meta), ``path`` (staged files) or ``each`` (one task per item)."""

    name: str
    kind: str = "path"
    stage_as: str | None = None


@dataclass(frozen=True)
class Emit:
    """A named output channel: ``meta`` and file patterns (``${meta.id}`` style), one tuple per task.

    ``when`` names inputs: the stage writes these files only when one of them is staged (the emit is
    optional; e.g. qc writes .bed for a .bed input and .pgen for a .pgen or BGEN input)."""

    name: str
    files: tuple[str, ...]
    folder: bool = False  # the first file is a folder the stage fills
    when: tuple[str, ...] = ()

    def written(self, inputs: Mapping[str, Any]) -> bool:
        """Whether a task with these inputs writes this emit's files."""
        return not self.when or any(_is_set(inputs.get(name)) for name in self.when)


@dataclass(frozen=True)
class Arg:
    """One flag of the stage command and where its value comes from.

    source: ``params`` (value = param name), ``input`` (an input's file; ``prefix`` drops its extension,
    ``.bed`` or ``.pgen``: the fileset prefix),
    ``meta`` (a field of meta), ``fixed`` (a literal), ``out`` (an output pattern), ``root`` (the folder
    the inputs are staged in: the literal value in a task, the run folder in ``ginn run``), ``task`` (a
    property of the Nextflow task, e.g. ``cpus``; ``ginn run`` leaves the flag to its default). ``when`` names a meta
    field or an input: the flag is passed only when that is set. A param whose default is null, or an
    input that may be empty, is passed only when set, too.
    """

    flag: str
    source: str
    value: str
    when: str | None = None
    prefix: bool = False


def param(flag: str, name: str | None = None, when: str | None = None) -> Arg:
    return Arg(flag, "params", name or flag.replace("-", "_"), when)


def inp(flag: str, name: str, prefix: bool = False, when: str | None = None) -> Arg:
    return Arg(flag, "input", name, when, prefix)


def meta(flag: str, key: str, when: str | None = None) -> Arg:
    return Arg(flag, "meta", key, when)


def fixed(flag: str, value: str) -> Arg:
    return Arg(flag, "fixed", value)


def out(pattern: str) -> Arg:
    return Arg("out", "out", pattern)


def task_cpus() -> Arg:
    """``--threads``: the CPUs the task was given (``ginn run``: the stage's own default)."""
    return Arg("threads", "task", "cpus")


@dataclass(frozen=True)
class Process:
    """A Nextflow process: one call of one stage command."""

    name: str  # GINN_QC
    module: str  # modules/local/<module>/main.nf, and the run folder's stage sub-folder
    stage: str  # key of ginn.contract.stages.STAGES
    doc: str
    resources: str  # resource label (conf/base.config) when the process does not use a GPU
    inputs: tuple[tuple[In, ...], ...]
    outputs: tuple[Emit, ...]
    args: tuple[Arg, ...]
    optional_inputs: tuple[str, ...] = ()  # inputs that may be staged empty ([]): their flags are then left out
    tag: str = "${meta.id}"
    device_param: str = "device"  # the workflow's device param

    @property
    def arguments(self) -> tuple[Arg, ...]:
        """``args`` plus ``--device`` and ``--threads`` wherever the stage has them (before ``--out``)."""
        flags = {flag.name for flag in STAGES[self.stage].flags}
        automatic = [param("device", self.device_param)] if "device" in flags else []
        automatic += [task_cpus()] if "threads" in flags else []
        *head, last = self.args
        return (*head, *automatic, last) if last.source == "out" else (*self.args, *automatic)

    @property
    def uses_gpu(self) -> bool:
        return any(arg.flag == "device" for arg in self.arguments)

    @property
    def label(self) -> str:
        return "process_gpu" if self.uses_gpu else self.resources

    @property
    def command(self) -> list[str]:
        return self.stage.split()

    def flag(self, arg: Arg) -> Flag:
        return STAGES[self.stage].flag(arg.flag)

    @property
    def variadic(self) -> bool:
        """The stage takes further files after one flag (``--scores a b c``) instead of a repeated flag."""
        return any(flag.argument for flag in STAGES[self.stage].flags)

    def input_names(self) -> list[str]:
        return [element.name for declaration in self.inputs for element in declaration]


# Resources per label: (cpus, memory GB, hours) on the first attempt, multiplied by the attempt number when a
# task killed for memory or time (exit 104, 130-145) is retried; conf/base.config caps them (resourceLimits).
RESOURCES = {"process_single": (1, 6, 4), "process_low": (2, 12, 4), "process_medium": (6, 36, 8),
             "process_high": (12, 72, 16), "process_gpu": (4, 32, 8)}

TRAINING_ARGS = (
    param("predictor-hidden"), param("gene-layer"), param("lr"), param("batch-size"), param("max-epochs"),
    param("patience"), param("val-fraction"), param("seed"),
)
PLINK = (In("bed"), In("bim"), In("fam"))
META = In("meta", "val")

# A cohort's genotype files, by the stage flag that reads them (ginn.contract.stages.GENOTYPES). A process
# that reads genotypes takes the files of every format it accepts as inputs; all but one fileset's are
# staged empty ([]), and only that fileset's flag is passed.
GENOTYPE_FILES = {"bfile": ("bed", "bim", "fam"), "pfile": ("pgen", "pvar", "psam"), "bgen": ("bgen", "sample")}
ANY_GENOTYPES = ("bfile", "pfile", "bgen")  # what a user gives: qc and replicate read it
QC_GENOTYPES = ("bfile", "pfile")  # what qc writes
QC_WRITES = {"bfile": "bfile", "pfile": "pfile", "bgen": "pfile"}  # qc's input format -> its output's: dosages kept


def genotype_inputs(kinds: tuple[str, ...]) -> tuple[In, ...]:
    return tuple(In(name) for kind in kinds for name in GENOTYPE_FILES[kind])


def genotype_args(kinds: tuple[str, ...]) -> tuple[Arg, ...]:
    """``--bfile``/``--pfile`` (the staged file's prefix), ``--bgen`` and ``--sample``, each when staged."""
    args = tuple(inp(kind, GENOTYPE_FILES[kind][0], prefix=kind != "bgen") for kind in kinds)
    return args + ((inp("sample", "sample"),) if "bgen" in kinds else ())


def genotype_optional(kinds: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(element.name for element in genotype_inputs(kinds))


def fileset_emits(prefix: str) -> tuple[Emit, ...]:
    """qc's filtered fileset (:data:`QC_WRITES`): emit ``plink`` for a ``.bed`` input, ``pgen`` otherwise."""
    def written_for(kind: str) -> tuple[str, ...]:  # the staged files whose presence means qc writes ``kind``
        return tuple(GENOTYPE_FILES[given][0] for given, writes in QC_WRITES.items() if writes == kind)
    return (Emit("plink", tuple(f"{prefix}.{ext}" for ext in GENOTYPE_FILES["bfile"]), when=written_for("bfile")),
            Emit("pgen", tuple(f"{prefix}.{ext}" for ext in GENOTYPE_FILES["pfile"]), when=written_for("pfile")))

PROCESSES: tuple[Process, ...] = (
    Process(
        "GINN_SIMULATE", "simulate", "simulate",
        "Simulate a cohort with known gene-gene interactions (paper Eqs. 1-3): PLINK fileset, phenotype, "
        "gene regions, truth.",
        "process_medium", ((META,),),
        (Emit("plink", ("${meta.id}.bed", "${meta.id}.bim", "${meta.id}.fam")), Emit("pheno", ("${meta.id}.pheno.tsv",)),
         Emit("genes", ("${meta.id}.genes.tsv",)), Emit("truth", ("${meta.id}.truth.tsv",)),
         Emit("provenance", ("${meta.id}.provenance.json",))),
        (param("model", "sim_model"), param("n-samples", "sim_n_samples"), param("n-genes", "sim_n_genes"),
         param("snr", "sim_snr"), param("causal-prop", "sim_causal_prop"), param("mi-ratio", "sim_mi_ratio"),
         param("haplotypes", "sim_haplotypes"), param("snps-per-gene", "sim_snps_per_gene"), param("seed"),
         out("${meta.id}")),
    ),
    Process(
        "GINN_QC", "qc", "qc",
        "Sample then variant quality control with plink2's definitions (--mind, --geno, --maf, --hwe).",
        "process_medium", ((META, *genotype_inputs(ANY_GENOTYPES)),),
        (*fileset_emits("${meta.id}.passed"),
         Emit("stats", ("${meta.id}.passed.qc.tsv", "${meta.id}.passed.qc.samples.tsv")),
         Emit("provenance", ("${meta.id}.passed.provenance.json",))),
        (*genotype_args(ANY_GENOTYPES), param("geno"), param("mind"), param("maf"), param("hwe"),
         param("min-info"), out("${meta.id}.passed")),
        optional_inputs=genotype_optional(ANY_GENOTYPES),
    ),
    Process(
        "GINN_MAP_GENES", "map_genes", "map-genes",
        "Map SNPs to genes (gene body +/- flank); without an annotation the packaged GRCh37 glist is used.",
        "process_single", ((META, *genotype_inputs(QC_GENOTYPES)), (In("genes"),), (In("keep_genes"),)),
        (Emit("map", ("${meta.id}.map.tsv",)), Emit("genes", ("${meta.id}.map.genes.tsv",)),
         Emit("provenance", ("${meta.id}.map.provenance.json",))),
        (*genotype_args(QC_GENOTYPES), inp("genes", "genes"), inp("keep-genes", "keep_genes"), param("flank"),
         out("${meta.id}.map.tsv")),
        optional_inputs=("genes", "keep_genes", *genotype_optional(QC_GENOTYPES)),
    ),
    Process(
        "GINN_PRUNE", "prune", "prune",
        "Per-gene LD pruning: keep the fewest SNPs explaining --keep-variance of each gene's genotype variance.",
        "process_medium", ((META, *genotype_inputs(QC_GENOTYPES), In("map")),),
        (Emit("map", ("${meta.id}.pruned.tsv",)), Emit("genes", ("${meta.id}.pruned.genes.tsv",)),
         Emit("provenance", ("${meta.id}.pruned.provenance.json",))),
        (*genotype_args(QC_GENOTYPES), inp("map", "map"), param("keep-variance"), out("${meta.id}.pruned.tsv")),
        optional_inputs=genotype_optional(QC_GENOTYPES),
    ),
    Process(
        "GINN_PREPARE", "prepare", "prepare",
        "One phenotype's dataset: covariates and PCs regressed out, inverse-normal transform, seeded split, "
        "int8 genotypes.",
        "process_medium", ((META, *genotype_inputs(QC_GENOTYPES), In("map"), In("pheno"), In("covar"), In("pc_file")),),
        (Emit("data", ("${meta.id}.data",), folder=True),),
        (*genotype_args(QC_GENOTYPES), inp("map", "map"), inp("pheno", "pheno"), meta("pheno-name", "id"),
         inp("covar", "covar"), param("covar-name", when="covar"), param("pcs"), inp("pc-file", "pc_file"),
         param("test-fraction"), param("seed"), out("${meta.id}.data")),
        optional_inputs=("covar", "pc_file", *genotype_optional(QC_GENOTYPES)),
    ),
    Process(
        "GINN_TUNE", "tune", "tune",
        "Choose the L1 strengths of the interaction network by K-fold cross-validation on the training samples.",
        "process_medium", ((META, In("data")),),
        (Emit("hparams", ("${meta.id}.hparams.json",)),),
        (inp("data", "data"), fixed("model", "interaction"), *TRAINING_ARGS, param("folds"),
         param("l1-grid"), param("members", "tune_members"), out("${meta.id}.hparams.json")),
    ),
    Process(
        "GINN_PAIRTEST", "pairtest", "pairtest",
        "Cross-fitted per-pair interaction test: each gene pair's product term on samples the networks never saw.",
        "process_medium", ((META, In("data")),),
        (Emit("results", ("${meta.id}.pairs",), folder=True), Emit("pairs", ("${meta.id}.pairs/pairs.tsv",))),
        (inp("data", "data"), param("folds", "pairtest_folds"), param("members", "pairtest_members"),
         *TRAINING_ARGS, out("${meta.id}.pairs")),
    ),
    Process(
        "GINN_TRAIN_MAIN", "train_main", "train",
        "Train the main-effect network ensemble (linear predictor, Eq. 13): the null model of the Perm I test.",
        "process_medium", ((META, In("data"), In("hparams")),),
        (Emit("models", ("${meta.id}.main",), folder=True),),
        (inp("data", "data"), fixed("model", "main"), *TRAINING_ARGS, param("members"),
         inp("hparams", "hparams"), out("${meta.id}.main")),
    ),
    Process(
        "GINN_TRAIN_INTERACTION", "train_interaction", "train",
        "Train interaction-network ensembles on the observed phenotype (meta.chunk 'observed') or on one chunk "
        "of permuted datasets (meta.permutations 'A-B').",
        "process_medium", ((META, In("data"), In("hparams"), In("null_model")),),
        (Emit("models", ("${meta.id}.${meta.chunk}.models",), folder=True),),
        (inp("data", "data"), fixed("model", "interaction"), *TRAINING_ARGS, param("members"),
         inp("hparams", "hparams"), param("target", "permutation_target", when="permutations"),
         meta("permutations", "permutations", when="permutations"), inp("null-model", "null_model"),
         out("${meta.id}.${meta.chunk}.models")),
        optional_inputs=("null_model",),
    ),
    Process(
        "GINN_SCORE", "score", "score",
        "Shapley interaction scores between gene nodes for every gene pair and every trained dataset of an "
        "ensemble.",
        "process_medium", ((META, In("data"), In("models")),),
        (Emit("scores", ("${meta.id}.${meta.chunk}.scores.tsv",)),
         Emit("main_effects", ("${meta.id}.${meta.chunk}.scores.main.tsv",)),
         Emit("provenance", ("${meta.id}.${meta.chunk}.scores.provenance.json",))),
        (inp("data", "data"), inp("models", "models"), param("seed"), out("${meta.id}.${meta.chunk}.scores.tsv")),
    ),
    Process(
        "GINN_TEST", "test", "test",
        "Per-pair interaction calls (FDR) from the per-pair tests, with Perm I's global test from the observed "
        "and every permutation chunk's scores beside them.",
        "process_single", ((META, In("pairs"), In("scores")),),
        (Emit("results", ("${meta.id}.results.tsv",)), Emit("provenance", ("${meta.id}.results.provenance.json",))),
        (inp("pairs", "pairs"), inp("scores", "scores"), param("fdr"), out("${meta.id}.results.tsv")),
        optional_inputs=("scores",),
    ),
    Process(
        "GINN_BASELINES", "baselines", "baselines",
        "A baseline interaction method (meta.method, e.g. topsnp-lr) scored into the same results table as "
        "the networks.",
        "process_low", ((META, In("data")),),
        (Emit("results", ("${meta.id}.${meta.method}.results.tsv",)),
         Emit("provenance", ("${meta.id}.${meta.method}.results.provenance.json",))),
        (inp("data", "data"), meta("method", "method"), param("seed"), param("fdr"),
         out("${meta.id}.${meta.method}.results.tsv")),
    ),
    Process(
        "GINN_REPLICATE", "replicate", "replicate",
        "Replicate candidate pairs in an independent cohort (Eq. 5 alpha with one-sided p, Eq. 4 top-SNP p in "
        "both cohorts).",
        "process_medium",
        ((META, In("data"), In("models"), In("results"), *genotype_inputs(ANY_GENOTYPES), In("pheno"), In("covar"),
          In("pc_file")),),
        (Emit("replication", ("${meta.id}.replication.tsv",)), Emit("details", ("${meta.id}.replication.*.tsv",)),
         Emit("provenance", ("${meta.id}.replication.provenance.json",))),
        (inp("data", "data"), inp("models", "models"), inp("results", "results"), *genotype_args(ANY_GENOTYPES),
         inp("pheno", "pheno"), meta("pheno-name", "id"), inp("covar", "covar"),
         param("covar-name", when="covar"), inp("pc-file", "pc_file"), param("fdr"), param("seed"),
         out("${meta.id}.replication.tsv")),
        optional_inputs=("covar", "pc_file", *genotype_optional(ANY_GENOTYPES)),
    ),
    Process(
        "GINN_REPORT", "report", "report",
        "One self-contained HTML page from a run's outputs, staged in the run folder layout (run/<stage>/...).",
        "process_single",
        ((META, *(In(stage, stage_as=f"run/{stage}/*") for stage in (
            "simulate", "qc", "map_genes", "prune", "prepare", "tune", "pairtest", "train_main", "train_interaction",
            "score", "test", "baselines", "replicate"))),),
        (Emit("html", ("report.html",)),),
        (Arg("outdir", "root", "run"), param("fdr"), out("report.html")),
        optional_inputs=("simulate", "qc", "map_genes", "prune", "prepare", "tune", "pairtest", "train_main",
                         "train_interaction", "score", "test", "baselines", "replicate"),
    ),
    # ---- brain-genotype scores
    Process(
        "BGS_SIMULATE", "bgs_simulate", "bgs simulate",
        "Synthetic imaging-genetics cohort from the shipped MNI template: T1 NIfTIs, PLINK genotypes, cognition, "
        "confounders, truth.",
        "process_medium", ((META,),),
        (Emit("cohort", ("${meta.id}.cohort",), folder=True),),
        (param("n-subjects", "bgs_n_subjects"), param("n-snps", "bgs_n_snps"), param("regions", "bgs_regions"),
         param("voxel-size", "bgs_sim_voxel_size"), param("seed", "bgs_seed"), out("${meta.id}.cohort")),
        device_param="bgs_device",
    ),
    Process(
        "BGS_PREPARE", "bgs_prepare", "bgs prepare",
        "Resample and z-score T1 images on the MNI grid, match PLINK genotypes, regional IDPs, stratified "
        "80/10/10 split.",
        "process_medium", ((META, In("subjects"), In("images", stage_as="images/*"), *PLINK),),
        (Emit("data", ("${meta.id}.prep",), folder=True),),
        (inp("subjects", "subjects"), fixed("image-dir", "images"), inp("bfile", "bed", prefix=True),
         param("snps", "bgs_snps"), param("voxel-size", "bgs_voxel_size"), param("val-fraction", "bgs_val_fraction"),
         param("test-fraction", "bgs_test_fraction"), param("seed", "bgs_seed"), out("${meta.id}.prep")),
        device_param="bgs_device",
    ),
    Process(
        "BGS_TRAIN", "bgs_train", "bgs train",
        "Train the multi-task 3D CNN (ResNet-10 + SE, or SFCN-lite) predicting every SNP's genotype class; AMP "
        "on CUDA.",
        "process_medium", ((META, In("data")),),
        (Emit("model", ("${meta.id}.model",), folder=True), Emit("history", ("${meta.id}.model/history.tsv",))),
        (inp("data", "data"), param("arch", "bgs_arch"), param("epochs", "bgs_epochs"),
         param("batch-size", "bgs_batch_size"), param("lr", "bgs_lr"), param("patience", "bgs_patience"),
         param("seed", "bgs_seed"), out("${meta.id}.model")),
        device_param="bgs_device",
    ),
    Process(
        "BGS_SCORE", "bgs_score", "bgs score",
        "Brain-genotype scores of held-out subjects (class probabilities, expected dosage) with calibration and "
        "accuracy metrics.",
        "process_medium", ((META, In("data"), In("model")),),
        (Emit("scores", ("${meta.id}.cnn.tsv",)), Emit("metrics", ("${meta.id}.cnn.metrics.tsv",))),
        (inp("data", "data"), inp("model", "model"), param("seed", "bgs_seed"),
         out("${meta.id}.cnn.tsv")),
        device_param="bgs_device",
    ),
    Process(
        "BGS_SALIENCY", "bgs_saliency", "bgs saliency",
        "SmoothGrad saliency per held-out subject (NIfTI on the input grid), group maps, per-region table and "
        "figures.",
        "process_medium", ((META, In("data"), In("model")),),
        (Emit("saliency", ("${meta.id}.saliency",), folder=True), Emit("regions", ("${meta.id}.saliency/regions.tsv",))),
        (inp("data", "data"), inp("model", "model"), param("snps", "bgs_saliency_snps"),
         param("max-subjects", "bgs_saliency_max_subjects"), param("n-samples", "bgs_saliency_samples"),
         param("seed", "bgs_seed"), out("${meta.id}.saliency")),
        device_param="bgs_device",
    ),
    Process(
        "BGS_IDP", "bgs_idp", "bgs idp",
        "IDP baseline: regional imaging-derived phenotypes -> SVM / logistic regression / LightGBM per SNP, same "
        "scores format.",
        "process_medium", ((META, In("data"), In("idp")), (In("method", "each"),)),
        (Emit("scores", ("${meta.id}.idp-${method}.tsv",)), Emit("metrics", ("${meta.id}.idp-${method}.metrics.tsv",))),
        (inp("data", "data"), Arg("method", "input", "method"), inp("idp", "idp"), param("seed", "bgs_seed"),
         out("${meta.id}.idp-${method}.tsv")),
        optional_inputs=("idp",),
        tag="${meta.id}:${method}",
        device_param="bgs_device",
    ),
    Process(
        "BGS_ASSOCIATE", "bgs_associate", "bgs associate",
        "Nested OLS F-tests of every method's score probabilities on cognition beyond confounders; Bonferroni and "
        "FDR per method.",
        "process_single", ((META, In("scores"), In("cognition"), In("confounders")),),
        (Emit("assoc", ("${meta.id}.assoc.tsv",)),),
        (inp("scores", "scores"), inp("cognition", "cognition"), inp("covar", "confounders"),
         param("covar-name", "bgs_covar_name", when="confounders"), param("adjust-genotype", "bgs_adjust_genotype"),
         out("${meta.id}.assoc.tsv")),
        optional_inputs=("confounders",),
        device_param="bgs_device",
    ),
    Process(
        "BGS_RESULTS", "bgs_results", "bgs results",
        "One comparison table per method x SNP: prediction metrics with CIs and the strongest cognition "
        "association.",
        "process_single", ((META, In("metrics"), In("assoc"), In("truth")),),
        (Emit("results", ("${meta.id}.results.tsv",)),),
        (inp("metrics", "metrics"), inp("assoc", "assoc"), inp("truth", "truth"), out("${meta.id}.results.tsv")),
        optional_inputs=("truth",),
        device_param="bgs_device",
    ),
)
PROCESS_BY_MODULE = {process.module: process for process in PROCESSES}


# ---- the argv of a process, as ``ginn run`` executes it ------------------------------------------------

def substitute(pattern: str, meta_map: Mapping[str, Any], inputs: Mapping[str, Any]) -> str:
    """Fill a ``${meta.x}`` / ``${name}`` pattern the way Nextflow's GString does."""
    def value(match: re.Match) -> str:
        ref = match.group(1)
        return str(meta_map[ref[5:]] if ref.startswith("meta.") else inputs[ref])
    return re.sub(r"\$\{([\w.]+)\}", value, pattern)


def _is_set(value: Any) -> bool:
    return value not in (None, "", [], ())


def _fileset_prefix(path: str) -> str:
    """A staged .bed or .pgen's fileset prefix (what Nextflow's ``baseName`` gives in a task folder)."""
    for suffix in (".bed", ".pgen"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def argv(process: Process, params: Mapping[str, Any], meta_map: Mapping[str, Any], inputs: Mapping[str, Any],
         out_dir: str = "") -> list[str]:
    """The ``ginn`` argv (without ``ginn``) the process's script runs: the same rules as its Groovy."""
    words = list(process.command)
    for arg in process.arguments:
        if arg.when is not None:
            gate = meta_map.get(arg.when) if arg.when not in process.input_names() else inputs.get(arg.when)
            if not _is_set(gate):
                continue
        flag = process.flag(arg)
        if arg.source == "fixed":
            words += [flag.option, arg.value]
        elif arg.source == "root":
            words += [flag.option, str(inputs.get(arg.value) or arg.value)]
        elif arg.source == "task":
            continue
        elif arg.source == "out":
            words += [flag.option, _join(out_dir, substitute(arg.value, meta_map, inputs))]
        elif arg.source == "meta":
            words += [flag.option, str(meta_map[arg.value])]
        elif arg.source == "input":
            value = inputs.get(arg.value)
            if not _is_set(value):
                continue
            files = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
            if arg.prefix:
                files = [_fileset_prefix(f) for f in files]
            words += [flag.option, *files] if not flag.multiple or process.variadic else \
                [w for f in files for w in (flag.option, f)]
        else:  # params
            value = params[arg.value]
            if flag.kind == "bool":
                if flag.negatable:
                    words.append(flag.option if value else f"--no-{flag.name}")
                elif value:
                    words.append(flag.option)
            elif value is not None:
                words += [flag.option, str(value)]
    return words


def _join(out_dir: str, name: str) -> str:
    return f"{out_dir.rstrip('/')}/{name}" if out_dir else name
