"""The pipeline's parameters: ``ginn run``'s YAML keys and flags, and Nextflow's ``params``.

Most are derived: a param that feeds a stage flag (``param("geno")`` in :mod:`ginn.contract.pipeline`)
takes that flag's type, default, range, choices and help. The rest say what to run on (:data:`OWN`).
One params file serves ``ginn run --config`` and ``nextflow run -params-file``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .pipeline import PROCESSES
from .spec import DEVICE_PATTERN, Flag
from .stages import GENOTYPES, MAX_PERMUTATIONS, MAX_SIM_SAMPLES


@dataclass(frozen=True)
class Param:
    """One run parameter: YAML key, ``ginn run`` flag and Nextflow ``params.<name>``."""

    name: str
    type: str  # JSON-schema type: string, integer, number or boolean
    default: Any
    help: str
    group: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    pattern: str | None = None
    format: str | None = None  # nf-schema: file-path, directory-path, path

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @classmethod
    def from_flag(cls, name: str, flag: Flag, group: str) -> Param:
        return cls(name, flag.schema_type, flag.default, flag.help, group, flag.choices, flag.minimum, flag.maximum,
                   flag.open_min, flag.open_max, DEVICE_PATTERN if flag.kind == "device" else None)


GROUPS = {  # group id -> (title, description), in schema order
    "general": ("General options", "Workflow choice, output folder, seed and device."),
    "input": ("Input cohort", "The discovery cohort (give one of bfile, pfile and bgen, and pheno; or simulate)."),
    "simulation": ("Simulated cohort", "A cohort simulated by the pipeline (`simulate: true`)."),
    "qc": ("Quality control, gene mapping, pruning, preparation", "The cohort-level stages."),
    "training": ("Tuning and training", "Network architecture and optimisation."),
    "pairtest": ("Per-pair interaction test", "Cross-fitted per-pair tests and their FDR-controlled calls."),
    "permutation": ("Permutation test", "Perm I/T/R null datasets (the global test) and their chunking into tasks."),
    "baselines": ("Baselines", "Comparison methods run beside the networks."),
    "replication": ("Replication", "An independent cohort to replicate candidate pairs in (give one of repl_bfile, "
                    "repl_pfile and repl_bgen, and repl_pheno)."),
    "brain": ("Brain-genotype scores", "The imaging workflow (`workflow: brain_genotype_scores`)."),
    "containers": ("Containers", "The image every process runs in."),
}

# The group of each process's derived params (a param used by several processes takes the first).
PROCESS_GROUP = {"GINN_SIMULATE": "simulation", "GINN_QC": "qc", "GINN_MAP_GENES": "qc", "GINN_PRUNE": "qc",
                 "GINN_PREPARE": "qc", "GINN_TUNE": "training", "GINN_PAIRTEST": "pairtest",
                 "GINN_TRAIN_MAIN": "training",
                 "GINN_TRAIN_INTERACTION": "training", "GINN_SCORE": "training", "GINN_TEST": "pairtest",
                 "GINN_BASELINES": "baselines", "GINN_REPLICATE": "replication", "GINN_REPORT": "replication"}
GENERAL = ("seed", "device")

GENOTYPE_KINDS = ("bfile", "pfile", "bgen")  # a cohort's genotypes: exactly one of these (bgen with its sample)
_FILE_FLAGS = ("bgen", "sample")  # genotype flags that name one file (the others a fileset prefix)


def genotype_params(prefix: str, group: str, cohort: str) -> tuple[Param, ...]:
    """A cohort's genotype input: one param per genotype flag of the stages (``--bfile``, ``--pfile``,
    ``--bgen``, ``--sample``), named like it after ``prefix``, with its type, default and help."""
    return tuple(Param(prefix + flag.python_name, flag.schema_type, flag.default, f"{cohort}: {flag.help}", group,
                       format="file-path" if flag.name in _FILE_FLAGS else None) for flag in GENOTYPES)


# Params that are not a stage flag's value: what to run on, and how the workflow fans out.
OWN: tuple[Param, ...] = (
    Param("workflow", "string", "gene_interactions", "Workflow to run (`ginn run` runs gene_interactions).",
          "general", ("gene_interactions", "brain_genotype_scores")),
    Param("outdir", "string", "results", "Output folder: one sub-folder per stage.", "general",
          pattern=r"^\s*\S", format="directory-path"),  # not empty: that would write into the working folder
    *genotype_params("", "input", "Discovery cohort"),
    Param("pheno", "string", None, "Phenotype table with header: FID IID NAME... (NA = missing).", "input",
          format="file-path"),
    Param("pheno_names", "string", "y", "Comma-separated phenotype columns; each is analysed on its own.", "input"),
    Param("covar", "string", None, "Covariate table with header: FID IID ... (optional).", "input",
          format="file-path"),
    Param("pc_file", "string", None, "Precomputed PCs of the discovery cohort: FID IID PC1 PC2 ... (optional).",
          "input", format="file-path"),
    Param("genes", "string", None, "Gene annotation (glist, BED or GTF); default: packaged GRCh37 glist, or the "
          "simulated genes when simulate is true.", "input", format="file-path"),
    Param("keep_genes", "string", None, "Only these genes (one symbol a line), e.g. a candidate panel.", "input",
          format="file-path"),
    Param("simulate", "boolean", False, "Simulate the cohort (`ginn simulate`) instead of reading its genotypes "
          "and pheno.",
          "simulation"),
    Param("sim_n_samples", "integer", 5000, "Simulated individuals.", "simulation", minimum=10,
          maximum=MAX_SIM_SAMPLES),
    Param("sim_n_genes", "integer", 10, "Simulated genes (the first M packaged lipid genes).", "simulation",
          minimum=1),
    Param("permutation_target", "string", "perm-I", "Permutation null: perm-I (main-effect network + permuted "
          "residuals, the paper's test), perm-T or perm-R.", "permutation", ("perm-I", "perm-T", "perm-R")),
    Param("permutations", "integer", 100, "Permuted datasets in Perm I's global test (0: no global test).",
          "permutation", minimum=0, maximum=MAX_PERMUTATIONS),
    Param("permutation_chunks", "integer", 4, "Permutations are trained and scored in this many parallel tasks; "
          "results do not depend on it.", "permutation", minimum=1),
    Param("baselines", "string", "", "Comma-separated baseline methods run beside the networks, e.g. "
          "topsnp-lr,pca-lasso (empty: none).", "baselines"),
    *genotype_params("repl_", "replication", "Replication cohort"),
    Param("repl_pheno", "string", None, "Phenotype table of the replication cohort.", "replication",
          format="file-path"),
    Param("repl_covar", "string", None, "Covariate table of the replication cohort (columns: covar_name).",
          "replication", format="file-path"),
    Param("repl_pc_file", "string", None, "Precomputed PCs of the replication cohort (optional).", "replication",
          format="file-path"),
    Param("bgs_id", "string", "bgs", "Name of the imaging cohort (file prefix).", "brain"),
    Param("bgs_simulate", "boolean", False, "Simulate a synthetic imaging cohort (`ginn bgs simulate`).", "brain"),
    Param("bgs_subjects", "string", None, "Subject table: FID IID image [sex].", "brain", format="file-path"),
    Param("bgs_images", "string", None, "Glob of the subjects' NIfTI images.", "brain"),
    Param("bgs_bfile", "string", None, "PLINK fileset prefix with the subjects' genotypes.", "brain"),
    Param("bgs_cognition", "string", None, "Cognition table: FID IID + one column per measure.", "brain",
          format="file-path"),
    Param("bgs_confounders", "string", None, "Confounder table: FID IID + columns (optional).", "brain",
          format="file-path"),
    Param("bgs_idp", "string", None, "IDP table (FID IID + numeric columns) instead of atlas regional means.",
          "brain", format="file-path"),
    Param("bgs_idp_methods", "string", "svm", "Comma-separated IDP baseline classifiers (svm, logistic, lightgbm).",
          "brain"),
    Param("container_registry", "string", "ghcr.io/ginn-project", "Registry and namespace of the ginn images.",
          "containers"),
    Param("container_flavour", "string", "cuda", "Image flavour: cuda (GPU and CPU) or cpu (smaller, CPU only).",
          "containers", ("cuda", "cpu")),
)


def _derived() -> list[Param]:
    own = {p.name for p in OWN}
    found: dict[str, Param] = {}
    for process in PROCESSES:
        group = PROCESS_GROUP.get(process.name, "brain")
        for arg in process.arguments:
            if arg.source != "params" or arg.value in own:
                continue
            param = Param.from_flag(arg.value, process.flag(arg), "general" if arg.value in GENERAL else group)
            earlier = found.setdefault(arg.value, param)
            if (earlier.type, earlier.default, earlier.choices) != (param.type, param.default, param.choices):
                raise AssertionError(f"params.{arg.value} feeds flags with different types or defaults: "
                                     f"{earlier} vs {param}")
            found[arg.value] = _strictest(earlier, param)
    return list(found.values())


def _strictest(a: Param, b: Param) -> Param:
    """A param feeding two flags accepts what both accept."""
    low = max(((p.minimum, p.exclusive_minimum) for p in (a, b) if p.minimum is not None), default=(None, False))
    high = min(((p.maximum, not p.exclusive_maximum) for p in (a, b) if p.maximum is not None), default=(None, True))
    return replace(a, minimum=low[0], exclusive_minimum=low[1], maximum=high[0], exclusive_maximum=not high[1])


def _ordered(params: list[Param]) -> tuple[Param, ...]:
    order = list(GROUPS)
    return tuple(sorted(params, key=lambda p: order.index(p.group)))  # stable: keeps order within a group


PARAMS: tuple[Param, ...] = _ordered(list(OWN) + _derived())
PARAM_BY_NAME = {p.name: p for p in PARAMS}
