"""``ginn run``: the whole gene-interaction workflow in one process, without a workflow engine.

The Nextflow pipeline (``main.nf``) and this command run the same stages with the same arguments:
:data:`STAGE_ARGV` builds each stage's ``ginn`` argv from the run parameters, a ``meta`` map (the
identity a Nextflow tuple carries: phenotype, permutation chunk, baseline method) and the stage's
inputs, and the contract tests check that every ``modules/local/<stage>/main.nf`` script renders to
the same argv. :data:`PARAMS` is the one list of parameters: the YAML keys of ``--config``, the flags
of this command, and the ``params`` of ``nextflow.config`` / ``nextflow_schema.json``.

Run folder layout (also what Nextflow publishes under ``--outdir``)::

    DIR/simulate/simulated.{bed,bim,fam,pheno.tsv,genes.tsv,truth.tsv}   (when simulate: true)
    DIR/qc/<cohort>.passed.{bed,bim,fam,qc.tsv,qc.samples.tsv}
    DIR/map_genes/<cohort>.map.tsv       DIR/prune/<cohort>.pruned.tsv
    DIR/prepare/<pheno>.data/            DIR/tune/<pheno>.hparams.json
    DIR/train_main/<pheno>.main/         DIR/train_interaction/<pheno>.<chunk>.models/
    DIR/score/<pheno>.<chunk>.scores.tsv DIR/test/<pheno>.results.tsv
    DIR/baselines/<pheno>.<method>.results.tsv   DIR/replicate/<pheno>.replication.tsv
    DIR/report/report.html

``<chunk>`` is ``observed`` or ``perm-A-B`` (permutations A..B). A finished stage leaves a stamp in
``DIR/.ginn-run/``: the hash of its argv and of its inputs' contents; a later run with the same stamp
and outputs in place skips the stage.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml
from tqdm import tqdm

from .errors import GinnError
from . import files
from .files import atomic_outputs, write_json
from .runguard import checksum, output_checksums, output_lock, remove_stale_temporaries
from .threads import threads_default, threads_option
from .validation import check_plan

log = logging.getLogger(__name__)


# ---- parameters ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """One run parameter: YAML key, ``ginn run`` flag and Nextflow ``params.<name>``."""

    name: str
    default: Any
    type: str  # JSON-schema type: string, integer, number or boolean
    help: str
    group: str
    choices: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


PARAMS: tuple[Param, ...] = (
    # general
    Param("workflow", "gene_interactions", "string", "Workflow to run (`ginn run` runs gene_interactions).",
          "general", ("gene_interactions", "brain_genotype_scores")),
    Param("outdir", "results", "string", "Output folder: one sub-folder per stage.", "general"),
    Param("seed", 1, "integer", "Seed of every stage (splits, initialisations, permutations).", "general"),
    Param("device", "cpu", "string", "torch device for training and scoring: cpu or cuda.", "general"),
    # input
    Param("bfile", None, "string", "PLINK 1 fileset prefix of the discovery cohort (.bed/.bim/.fam).", "input"),
    Param("pheno", None, "string", "Phenotype table with header: FID IID NAME... (NA = missing).", "input"),
    Param("pheno_names", "y", "string", "Comma-separated phenotype columns; each is analysed on its own.", "input"),
    Param("covar", None, "string", "Covariate table with header: FID IID ... (optional).", "input"),
    Param("covar_name", None, "string", "Comma-separated covariate columns to regress out (e.g. age,sex).", "input"),
    Param("genes", None, "string", "Gene annotation (glist, BED or GTF); default: packaged GRCh37 glist, or the "
          "simulated genes when simulate is true.", "input"),
    Param("keep_genes", None, "string", "Only these genes (one symbol a line), e.g. a candidate panel.", "input"),
    # simulation (replaces the input cohort when simulate is true)
    Param("simulate", False, "boolean", "Simulate the cohort (`ginn simulate`) instead of reading bfile/pheno.",
          "simulation"),
    Param("sim_model", "complex", "string", "Simulated phenotype model (paper Eqs. 1-3).", "simulation",
          ("complex", "simple", "null")),
    Param("sim_n_samples", 5000, "integer", "Simulated individuals.", "simulation"),
    Param("sim_n_genes", 10, "integer", "Simulated genes (the first M packaged lipid genes).", "simulation"),
    Param("sim_snr", 0.5, "number", "Simulated signal-to-noise variance ratio.", "simulation"),
    Param("sim_causal_prop", 0.5, "number", "Share of each gene's SNPs with a non-zero weight.", "simulation"),
    Param("sim_mi_ratio", 1.0, "number", "Main-to-interaction variance ratio.", "simulation"),
    Param("sim_haplotypes", 2000, "integer", "Haplotypes simulated per gene by msprime.", "simulation"),
    Param("sim_snps_per_gene", 0, "integer", "Keep at most this many SNPs per simulated gene (0 = all).",
          "simulation"),
    # quality control, gene mapping, pruning, preparation
    Param("geno", 0.05, "number", "QC: maximum variant missing rate.", "qc"),
    Param("mind", 0.05, "number", "QC: maximum sample missing rate.", "qc"),
    Param("maf", 0.01, "number", "QC: minimum minor allele frequency.", "qc"),
    Param("hwe", 1e-6, "number", "QC: minimum Hardy-Weinberg exact test p-value.", "qc"),
    Param("flank", 10_000, "integer", "Bases added to each side of a gene when mapping SNPs.", "qc"),
    Param("keep_variance", 1.0, "number", "Share of each gene's genotype variance kept by LD pruning (1: drop only "
          "SNPs the kept ones explain exactly).", "qc"),
    Param("pcs", 10, "integer", "Genotype principal components regressed out of the phenotype.", "qc"),
    Param("test_fraction", 0.3, "number", "Held-out share of samples.", "qc"),
    # tuning and training
    Param("folds", 5, "integer", "Cross-validation folds of L1 tuning.", "training"),
    Param("l1_grid", "0.0,1e-05,0.0001,0.001", "string", "Comma-separated L1 strengths tried by tuning.",
          "training"),
    Param("tune_members", 1, "integer", "Networks per fold and L1 setting in tuning.", "training"),
    Param("members", 50, "integer", "Deep-ensemble members per target dataset.", "training"),
    Param("predictor_hidden", 100, "integer", "Hidden units of the M-H-1 predictor MLP.", "training"),
    Param("gene_layer", "mlp", "string", "Gene layer: m_i-10-1 MLP (paper) or linear.", "training",
          ("mlp", "linear")),
    Param("lr", 0.005, "number", "Adam learning rate.", "training"),
    Param("batch_size", 0, "integer", "Samples per optimisation step; 0 = min(30,000, a tenth of the training "
          "samples), the paper's 30,000 at UK Biobank scale and >= 10 steps per epoch on smaller cohorts.", "training"),
    Param("max_epochs", 500, "integer", "Epoch limit per network.", "training"),
    Param("patience", 20, "integer", "Early-stopping patience in epochs.", "training"),
    Param("val_fraction", 0.2, "number", "Share of training samples held out for early stopping.", "training"),
    # per-pair interaction test (cross-fitted)
    Param("pairtest_folds", 5, "integer", "Cross-fitting folds of the per-pair test over all samples.", "pairtest"),
    Param("pairtest_members", 2, "integer", "Interaction networks per cross-fitting fold.", "pairtest"),
    # permutation test
    Param("permutation_target", "perm-I", "string", "Permutation null: perm-I (main-effect network + permuted "
          "residuals, the paper's test), perm-T or perm-R.", "permutation", ("perm-I", "perm-T", "perm-R")),
    Param("permutations", 100, "integer", "Permuted datasets in Perm I's global test (0: no global test).",
          "permutation"),
    Param("permutation_chunks", 4, "integer", "Permutations are trained and scored in this many parallel tasks; "
          "results do not depend on it.", "permutation"),
    # baselines and replication
    Param("baselines", "", "string", "Comma-separated baseline methods run beside the networks, e.g. "
          "topsnp-lr,pca-lasso (empty: none).", "baselines"),
    Param("repl_bfile", None, "string", "PLINK fileset prefix of an independent replication cohort.", "replication"),
    Param("repl_pheno", None, "string", "Phenotype table of the replication cohort.", "replication"),
    Param("fdr", 0.1, "number", "False discovery rate of the per-pair calls; called pairs are replicated.",
          "pairtest"),
    # brain-genotype scores (workflow brain_genotype_scores: the Nextflow pipeline or `ginn bgs`)
    Param("bgs_id", "bgs", "string", "Name of the imaging cohort (file prefix).", "brain"),
    Param("bgs_simulate", False, "boolean", "Simulate a synthetic imaging cohort (`ginn bgs simulate`).", "brain"),
    Param("bgs_n_subjects", 200, "integer", "Simulated subjects.", "brain"),
    Param("bgs_n_snps", 6, "integer", "Simulated SNPs.", "brain"),
    Param("bgs_regions", "superiorfrontal_L,lateraloccipital_R", "string",
          "Comma-separated atlas regions the simulated SNPs act on.", "brain"),
    Param("bgs_sim_voxel_size", 2.0, "number", "Voxel size (mm) of simulated images.", "brain"),
    Param("bgs_subjects", None, "string", "Subject table: FID IID image [sex].", "brain"),
    Param("bgs_images", None, "string", "Glob of the subjects' NIfTI images.", "brain"),
    Param("bgs_bfile", None, "string", "PLINK fileset prefix with the subjects' genotypes.", "brain"),
    Param("bgs_cognition", None, "string", "Cognition table: FID IID + one column per measure.", "brain"),
    Param("bgs_confounders", None, "string", "Confounder table: FID IID + columns (optional).", "brain"),
    Param("bgs_covar_name", None, "string", "Comma-separated confounder columns (default: all).", "brain"),
    Param("bgs_adjust_genotype", False, "boolean", "Also adjust the association models for the true genotype.",
          "brain"),
    Param("bgs_snps", None, "string", "Comma-separated SNPs to predict (default: every SNP).", "brain"),
    Param("bgs_voxel_size", 4.0, "number", "Voxel size (mm) of the training grid: 1 on a GPU, 4-8 on CPU.", "brain"),
    Param("bgs_val_fraction", 0.1, "number", "Validation fraction (early stopping).", "brain"),
    Param("bgs_test_fraction", 0.1, "number", "Held-out fraction (scores).", "brain"),
    Param("bgs_arch", "resnet10-se", "string", "3D CNN architecture.", "brain", ("resnet10-se", "sfcn-lite")),
    Param("bgs_epochs", 50, "integer", "Maximum epochs.", "brain"),
    Param("bgs_batch_size", 8, "integer", "Volumes per optimisation step.", "brain"),
    Param("bgs_lr", 0.001, "number", "AdamW learning rate.", "brain"),
    Param("bgs_patience", 10, "integer", "Early-stopping patience in epochs.", "brain"),
    Param("bgs_device", "auto", "string", "torch device: auto, cpu, cuda or cuda:N.", "brain"),
    Param("bgs_seed", 1, "integer", "Seed of every imaging stage.", "brain"),
    Param("bgs_saliency_snps", None, "string", "Comma-separated SNPs to map with SmoothGrad (default: all).", "brain"),
    Param("bgs_saliency_max_subjects", None, "integer", "Map only the first N test subjects.", "brain"),
    Param("bgs_saliency_samples", 20, "integer", "Noisy copies per SmoothGrad map.", "brain"),
    Param("bgs_idp", None, "string", "IDP table (FID IID + numeric columns) instead of atlas regional means.", "brain"),
    Param("bgs_idp_methods", "svm", "string", "Comma-separated IDP baseline classifiers (svm, logistic, lightgbm).",
          "brain"),
)
PARAM_BY_NAME = {p.name: p for p in PARAMS}


def default_params() -> dict[str, Any]:
    return {p.name: p.default for p in PARAMS}


def _coerce(param: Param, value: Any, source: str) -> Any:
    """Check one value against its parameter's type, as nf-schema does for Nextflow."""
    if value is None:
        return None
    kinds = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,)}[param.type]
    if param.name == "pheno_names" and isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if param.type == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, kinds) or (isinstance(value, bool) and param.type != "boolean"):
        raise GinnError(source, f"{param.name} must be of type {param.type}, got {value!r}")
    if param.choices and value not in param.choices:
        raise GinnError(source, f"{param.name} must be one of {', '.join(param.choices)}, got {value!r}")
    return float(value) if param.type == "number" else value


def load_params(config: str | Path | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults, then the YAML params file, then flags given on the command line."""
    params = default_params()
    if config is not None:
        try:
            loaded = yaml.safe_load(Path(config).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise GinnError(config, f"cannot read the params file: {exc}") from None
        if not isinstance(loaded, dict):
            raise GinnError(config, "a params file is a YAML mapping of parameter: value")
        unknown = sorted(set(loaded) - set(PARAM_BY_NAME))
        if unknown:
            raise GinnError(config, f"unknown parameter(s): {', '.join(unknown)}")
        params.update({k: _coerce(PARAM_BY_NAME[k], v, str(config)) for k, v in loaded.items()})
    params.update({k: _coerce(PARAM_BY_NAME[k], v, PARAM_BY_NAME[k].flag) for k, v in overrides.items()
                   if v is not None})
    return params


def pheno_names(params: Mapping[str, Any]) -> list[str]:
    return [name.strip() for name in str(params["pheno_names"]).split(",") if name.strip()]


def permutation_ranges(n_permutations: int, chunks: int) -> list[str]:
    """Split permutations 1..N into at most ``chunks`` contiguous ranges ``A-B`` of near-equal size.

    The Nextflow workflow computes the same split (``permutationRanges`` in workflows/gene_interactions.nf).
    """
    chunks = max(1, min(chunks, n_permutations))
    size, extra = divmod(n_permutations, chunks)
    ranges, start = [], 1
    for i in range(chunks):
        stop = start + size + (1 if i < extra else 0) - 1
        ranges.append(f"{start}-{stop}")
        start = stop + 1
    return ranges if n_permutations > 0 else []


# ---- stage argv: one function per Nextflow module ------------------------------------------------

Inputs = Mapping[str, Any]


def _plink_prefix(bed: str) -> str:
    return str(bed)[: -len(".bed")] if str(bed).endswith(".bed") else str(bed)


def _out(out_dir: str, name: str) -> str:
    return os.path.join(out_dir, name)


def _simulate(p, meta, inp, out_dir):
    return ["simulate", "--model", p["sim_model"], "--n-samples", p["sim_n_samples"], "--n-genes", p["sim_n_genes"],
            "--snr", p["sim_snr"], "--causal-prop", p["sim_causal_prop"], "--mi-ratio", p["sim_mi_ratio"],
            "--haplotypes", p["sim_haplotypes"], "--snps-per-gene", p["sim_snps_per_gene"], "--seed", p["seed"],
            "--out", _out(out_dir, meta["id"])]


def _qc(p, meta, inp, out_dir):
    return ["qc", "--bfile", _plink_prefix(inp["bed"]), "--geno", p["geno"], "--mind", p["mind"], "--maf", p["maf"],
            "--hwe", p["hwe"], "--out", _out(out_dir, f"{meta['id']}.passed")]


def _map_genes(p, meta, inp, out_dir):
    genes = ["--genes", inp["genes"]] if inp.get("genes") else []
    keep = ["--keep-genes", inp["keep_genes"]] if inp.get("keep_genes") else []
    return ["map-genes", "--bfile", _plink_prefix(inp["bed"]), *genes, *keep, "--flank", p["flank"],
            "--out", _out(out_dir, f"{meta['id']}.map.tsv")]


def _prune(p, meta, inp, out_dir):
    return ["prune", "--bfile", _plink_prefix(inp["bed"]), "--map", inp["map"], "--keep-variance", p["keep_variance"],
            "--out", _out(out_dir, f"{meta['id']}.pruned.tsv")]


def _prepare(p, meta, inp, out_dir):
    covar = ["--covar", inp["covar"], "--covar-name", p["covar_name"]] if inp.get("covar") else []
    return ["prepare", "--bfile", _plink_prefix(inp["bed"]), "--map", inp["map"], "--pheno", inp["pheno"],
            "--pheno-name", meta["id"], *covar, "--pcs", p["pcs"], "--test-fraction", p["test_fraction"],
            "--seed", p["seed"], "--out", _out(out_dir, f"{meta['id']}.data")]


def _training(p):
    """Flags ``ginn tune`` and ``ginn train`` share."""
    return ["--predictor-hidden", p["predictor_hidden"], "--gene-layer", p["gene_layer"], "--lr", p["lr"],
            "--batch-size", p["batch_size"], "--max-epochs", p["max_epochs"], "--patience", p["patience"],
            "--val-fraction", p["val_fraction"], "--device", p["device"], "--seed", p["seed"]]


def _tune(p, meta, inp, out_dir):
    return ["tune", "--data", inp["data"], "--model", "interaction", *_training(p), "--folds", p["folds"],
            "--l1-grid", p["l1_grid"], "--members", p["tune_members"], "--out", _out(out_dir, f"{meta['id']}.hparams.json")]


def _train_main(p, meta, inp, out_dir):
    return ["train", "--data", inp["data"], "--model", "main", *_training(p), "--members", p["members"],
            "--hparams", inp["hparams"], "--out", _out(out_dir, f"{meta['id']}.main")]


def _train_interaction(p, meta, inp, out_dir):
    permuted = (["--target", p["permutation_target"], "--permutations", meta["permutations"],
                 "--null-model", inp["null_model"]] if meta.get("permutations") else [])
    return ["train", "--data", inp["data"], "--model", "interaction", *_training(p), "--members", p["members"],
            "--hparams", inp["hparams"], *permuted, "--out", _out(out_dir, f"{meta['id']}.{meta['chunk']}.models")]


def _pairtest(p, meta, inp, out_dir):
    return ["pairtest", "--data", inp["data"], "--folds", p["pairtest_folds"], "--members", p["pairtest_members"],
            "--predictor-hidden", p["predictor_hidden"], "--gene-layer", p["gene_layer"], "--lr", p["lr"],
            "--batch-size", p["batch_size"], "--max-epochs", p["max_epochs"], "--patience", p["patience"],
            "--val-fraction", p["val_fraction"], "--device", p["device"], "--seed", p["seed"],
            "--out", _out(out_dir, f"{meta['id']}.pairs")]


def _score(p, meta, inp, out_dir):
    return ["score", "--data", inp["data"], "--models", inp["models"], "--seed", p["seed"],
            "--out", _out(out_dir, f"{meta['id']}.{meta['chunk']}.scores.tsv")]


def _test(p, meta, inp, out_dir):
    scores = ["--scores", *inp["scores"]] if inp.get("scores") else []
    return ["test", "--pairs", os.path.join(inp["pairs"], "pairs.tsv"), *scores, "--fdr", p["fdr"],
            "--out", _out(out_dir, f"{meta['id']}.results.tsv")]


def _baselines(p, meta, inp, out_dir):
    return ["baselines", "--data", inp["data"], "--method", meta["method"], "--seed", p["seed"],
            "--out", _out(out_dir, f"{meta['id']}.{meta['method']}.results.tsv")]


def _replicate(p, meta, inp, out_dir):
    return ["replicate", "--data", inp["data"], "--models", inp["models"], "--results", inp["results"],
            "--bfile", _plink_prefix(inp["bed"]), "--pheno", inp["pheno"], "--pheno-name", meta["id"],
            "--fdr", p["fdr"], "--seed", p["seed"], "--out", _out(out_dir, f"{meta['id']}.replication.tsv")]


def _report(p, meta, inp, out_dir):
    return ["report", "--outdir", inp["run"], "--out", _out(out_dir, "report.html")]


StageArgv = Callable[[Mapping[str, Any], Mapping[str, Any], Inputs, str], list]

# Nextflow module name (modules/local/<name>/main.nf) -> argv builder.
STAGE_ARGV: dict[str, StageArgv] = {
    "simulate": _simulate, "qc": _qc, "map_genes": _map_genes, "prune": _prune, "prepare": _prepare,
    "tune": _tune, "pairtest": _pairtest, "train_main": _train_main, "train_interaction": _train_interaction,
    "score": _score,
    "test": _test, "baselines": _baselines, "replicate": _replicate, "report": _report,
}

# Outputs each module declares, relative to its output folder, as patterns of meta fields.
STAGE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "simulate": ("{id}.bed", "{id}.bim", "{id}.fam", "{id}.pheno.tsv", "{id}.genes.tsv", "{id}.truth.tsv"),
    "qc": ("{id}.passed.bed", "{id}.passed.bim", "{id}.passed.fam", "{id}.passed.qc.tsv"),
    "map_genes": ("{id}.map.tsv",),
    "prune": ("{id}.pruned.tsv",),
    "prepare": ("{id}.data",),
    "tune": ("{id}.hparams.json",),
    "pairtest": ("{id}.pairs",),
    "train_main": ("{id}.main",),
    "train_interaction": ("{id}.{chunk}.models",),
    "score": ("{id}.{chunk}.scores.tsv",),
    "test": ("{id}.results.tsv",),
    "baselines": ("{id}.{method}.results.tsv",),
    "replicate": ("{id}.replication.tsv",),
    "report": ("report.html",),
}


def stage_argv(module: str, params: Mapping[str, Any], meta: Mapping[str, Any], inputs: Inputs,
               out_dir: str = "") -> list[str]:
    """The ``ginn`` argv (without ``ginn``) that ``modules/local/<module>/main.nf`` runs."""
    return [str(a) for a in STAGE_ARGV[module](params, meta, inputs, out_dir)]


# ---- the plan: stage calls in dependency order ---------------------------------------------------

@dataclass
class StageCall:
    """One task: what a Nextflow process instance would run, in ``out_dir`` instead of a work dir."""

    module: str
    params: Mapping[str, Any]
    meta: dict[str, Any]
    inputs: dict[str, Any]
    out_dir: Path
    depends: list[Path] = field(default_factory=list)  # read but not named on the command line

    @property
    def label(self) -> str:
        return " ".join(str(self.meta[k]) for k in ("id", "chunk", "method") if k in self.meta)

    @property
    def argv(self) -> list[str]:
        inputs = {k: (None if v is None else [str(x) for x in v] if isinstance(v, list) else str(v))
                  for k, v in self.inputs.items()}
        return stage_argv(self.module, self.params, self.meta, inputs, str(self.out_dir))

    def outputs(self) -> list[Path]:
        return [self.out_dir / pattern.format(**self.meta) for pattern in STAGE_OUTPUTS[self.module]]

    def output(self) -> Path:
        return self.outputs()[0]

    @property
    def outputs_prefix(self) -> str:
        """Every file this call writes in its stage folder starts with this (see STAGE_OUTPUTS)."""
        return ".".join(str(self.meta[k]) for k in ("id", "chunk", "method") if k in self.meta) + "."


def _plink_files(prefix: str | Path) -> list[Path]:
    return [Path(f"{prefix}{ext}") for ext in (".bed", ".bim", ".fam")]


def plan(params: Mapping[str, Any], outdir: Path) -> list[StageCall]:
    """Every stage call of a run, in an order where each call's inputs come before it."""
    calls: list[StageCall] = []

    def add(module: str, meta: dict, inputs: dict) -> StageCall:
        calls.append(StageCall(module, params, meta, inputs, outdir / module))
        return calls[-1]

    if params["simulate"]:
        sim = add("simulate", {"id": "simulated"}, {})
        cohort, bed = "simulated", str(sim.output())
        pheno, genes = sim.output().with_suffix(".pheno.tsv"), sim.output().with_suffix(".genes.tsv")
        names = ["y"]
    else:
        for key in ("bfile", "pheno"):
            if not params[key]:
                raise GinnError(None, f"{key} is required unless simulate is true")
        cohort, bed = Path(params["bfile"]).name, f"{params['bfile']}.bed"
        pheno, genes, names = Path(params["pheno"]), params["genes"], pheno_names(params)
        if not names:
            raise GinnError(None, "pheno_names names no phenotype column")
    qc = add("qc", {"id": cohort}, {"bed": bed})
    plink = str(qc.output())
    mapped = add("map_genes", {"id": cohort}, {"bed": plink, "genes": genes, "keep_genes": params["keep_genes"]})
    pruned = add("prune", {"id": cohort}, {"bed": plink, "map": mapped.output()})
    ranges = permutation_ranges(params["permutations"], params["permutation_chunks"])
    results = {}
    for name in names:
        data = add("prepare", {"id": name}, {"bed": plink, "map": pruned.output(), "pheno": pheno,
                                              "covar": params["covar"]}).output()
        pairs = add("pairtest", {"id": name}, {"data": data}).output()
        hparams = add("tune", {"id": name}, {"data": data}).output()
        main = add("train_main", {"id": name}, {"data": data, "hparams": hparams}).output() if ranges else None
        scores = []
        for chunk, perms in [("observed", None)] + [(f"perm-{r}", r) for r in ranges]:
            meta = {"id": name, "chunk": chunk, "permutations": perms}
            models = add("train_interaction", meta, {"data": data, "hparams": hparams,
                                                     "null_model": main if perms else None}).output()
            if ranges:
                scores.append(add("score", dict(meta), {"data": data, "models": models}).output())
            if chunk == "observed":
                observed_models = models
        results[name] = add("test", {"id": name}, {"pairs": pairs, "scores": scores}).output()
        for method in [m.strip() for m in params["baselines"].split(",") if m.strip()]:
            add("baselines", {"id": name, "method": method}, {"data": data})
        if params["repl_bfile"]:
            add("replicate", {"id": name}, {"data": data, "models": observed_models, "results": results[name],
                                            "bed": f"{params['repl_bfile']}.bed", "pheno": params["repl_pheno"]})
    report = add("report", {"id": "report"}, {"run": outdir})
    report.depends = [out for call in calls[:-1] for out in call.outputs()]
    return calls


# ---- running with stamps ---------------------------------------------------------------------------

def _input_paths(call: StageCall) -> list[Path]:
    """Files a call reads: its declared inputs (a PLINK prefix brings .bim/.fam along)."""
    paths: list[Path] = list(call.depends)
    for key, value in call.inputs.items():
        if value is None or key == "run":
            continue
        for item in value if isinstance(value, list) else [value]:
            paths.extend(_plink_files(_plink_prefix(str(item))) if key == "bed" else [Path(item)])
    return paths


def stamp_of(call: StageCall) -> dict[str, Any]:
    """What a stage's result is a function of: its argv and its inputs' contents."""
    inputs = {}
    for path in _input_paths(call):
        if not path.exists():
            raise GinnError(path, f"input of stage {call.module} not found")
        inputs[str(path)] = checksum(path)
    return {"argv": call.argv, "inputs": inputs, "outputs_prefix": call.outputs_prefix}


def _stamp_path(outdir: Path, call: StageCall) -> Path:
    return outdir / ".ginn-run" / call.module / f"{call.label.replace(' ', '_')}.json"


def is_current(outdir: Path, call: StageCall, stamp: Mapping[str, Any]) -> bool:
    """Same argv and input contents as the stamped run, and its outputs unchanged since (not damaged)."""
    path = _stamp_path(outdir, call)
    if not path.exists() or not all(out.exists() for out in call.outputs()):
        return False
    try:
        recorded = json.loads(path.read_text())
    except json.JSONDecodeError:
        return False
    outputs = recorded.pop("outputs", None)
    return recorded == json.loads(json.dumps(stamp)) and outputs == output_checksums(call.outputs())


def record_stamp(outdir: Path, call: StageCall, stamp: Mapping[str, Any] | None = None) -> None:
    """Mark a call finished: a later run with the same argv and input contents reuses its outputs."""
    with atomic_outputs() as out:
        write_json(out.file(_stamp_path(outdir, call)),
                   {**(stamp or stamp_of(call)), "outputs": output_checksums(call.outputs())})


@contextlib.contextmanager
def _quiet_stages(verbose: bool) -> Iterator[None]:
    """Keep one progress display: stages' INFO logs and tqdm bars are hidden unless -vv."""
    if verbose:
        yield
        return
    logger, level, env = logging.getLogger("ginn"), logging.getLogger("ginn").level, os.environ.get("TQDM_DISABLE")
    logger.setLevel(logging.WARNING)
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        logger.setLevel(level)
        if env is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = env


def invoke_stage(argv: list[str]) -> None:
    """Run one ``ginn`` subcommand in this process, with exactly the argv Nextflow would use."""
    from .cli import cli

    command = cli.get_command(click.Context(cli), argv[0])
    if command is None:
        raise GinnError(None, f"this ginn build has no `ginn {argv[0]}` command")
    try:
        command.main(args=argv[1:], prog_name=f"ginn {argv[0]}", standalone_mode=False)
    except click.ClickException as exc:
        raise GinnError(None, f"ginn {' '.join(argv)}: {exc.format_message()}") from None


def run_calls(calls: list[StageCall], outdir: Path, verbose: bool = False) -> list[tuple[str, str]]:
    """Run (or reuse) stage calls in order; returns (stage label, "ran" | "reused") per call."""
    done: list[tuple[str, str]] = []
    with _quiet_stages(verbose):
        bar = tqdm(calls, desc="ginn run", unit="stage", disable=False, dynamic_ncols=True)
        for call in bar:
            name = f"{call.module} {call.label}".strip()
            bar.set_postfix_str(name)
            stamp = stamp_of(call)
            if is_current(outdir, call, stamp):
                done.append((name, "reused"))
                continue
            files.RUN_CONTEXT["argv"] = ["ginn", *call.argv]  # provenance records the stage's own command
            try:
                invoke_stage(call.argv)
            except GinnError as exc:
                raise GinnError(exc.path, f"stage {name}: {exc.problem}") from None
            finally:
                files.RUN_CONTEXT.pop("argv")
            record_stamp(outdir, call, stamp)
            done.append((name, "ran"))
    return done


def remove_stale(outdir: Path, calls: list[StageCall]) -> list[Path]:
    """Delete outputs an earlier run made for calls this plan no longer has (e.g. other permutation chunks).

    The report reads whole stage folders, so outputs of a different chunking, phenotype list or baseline
    list would otherwise show up in it. Only outputs recorded by a stamp are touched.
    """
    current = {_stamp_path(outdir, call) for call in calls}
    removed = []
    for stamp in sorted((outdir / ".ginn-run").glob("*/*.json")):
        if stamp in current:
            continue
        try:
            prefix = json.loads(stamp.read_text())["outputs_prefix"]
        except (json.JSONDecodeError, KeyError):
            prefix = None
        stage_dir = outdir / stamp.parent.name
        for path in sorted(stage_dir.glob("*")) if prefix else []:
            if path.name.startswith(prefix):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                removed.append(path)
        stamp.unlink()
    for path in removed:
        log.info("run: removed %s (not part of this run's plan)", path)
    return removed


def run_workflow(params: Mapping[str, Any], outdir: Path, verbose: bool = False) -> list[tuple[str, str]]:
    """Plan and check the run, then, holding the folder's lock, drop temporaries of killed stages and
    outputs of calls it no longer has, and run (or reuse) every stage."""
    calls = plan(params, outdir)
    check_plan(calls, _input_paths)
    with output_lock(outdir):
        remove_stale_temporaries(outdir)
        remove_stale(outdir, calls)
        return run_calls(calls, outdir, verbose)


def _param_option(param: Param):
    if param.type == "boolean":
        return click.option(f"{param.flag}/--no-{param.flag[2:]}", param.name, default=None, help=param.help)
    kind = {"string": str, "integer": int, "number": float}[param.type]
    if param.choices:
        kind = click.Choice(param.choices)
    shown = f" [default: {param.default}]" if param.default not in (None, "") else ""
    return click.option(param.flag, param.name, type=kind, default=None, help=param.help + shown)


def _with_param_options(func):
    for param in reversed(PARAMS):
        func = _param_option(param)(func)
    return func


@click.command("run")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="YAML params file (keys = the flags below in snake_case = Nextflow params).")
@threads_option
@_with_param_options
@click.pass_context
def run_command(ctx: click.Context, config, threads, **overrides):
    """Run the gene-interaction workflow in one process: (simulate) -> qc -> map-genes -> prune -> prepare ->
    tune -> train (main, interaction: observed + permutations) -> score -> test -> (baselines, replicate) -> report.

    Each stage writes into OUTDIR/<stage>/ with the argv the Nextflow module uses; a stage whose argv and
    input contents are unchanged since its last success is reused. Flags override the params file.
    """
    params = load_params(config, overrides)
    if params["workflow"] != "gene_interactions":
        raise GinnError(config or "--workflow", f"`ginn run` runs gene_interactions; run {params['workflow']} "
                        "with `ginn bgs` or the Nextflow pipeline")
    outdir = Path(params["outdir"])
    files.RUN_CONTEXT["config"] = {"path": config, "contents": Path(config).read_text() if config else None,
                                   "params": params}
    root_level = logging.getLogger().getEffectiveLevel()
    try:
        with threads_default(threads):
            done = run_workflow(params, outdir, verbose=root_level <= logging.DEBUG)
    finally:
        files.RUN_CONTEXT.clear()
    ran = sum(1 for _, how in done if how == "ran")
    log.info("run: %d stages ran, %d reused -> %s (report: %s)", ran, len(done) - ran, outdir,
             outdir / "report" / "report.html")
