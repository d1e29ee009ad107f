"""The plan of a ``ginn run``: every stage call, in an order where each call's inputs come before it.

A :class:`StageCall` is what one Nextflow task would run: a process of :mod:`ginn.contract.pipeline`, the
``meta`` map its tuple carries, its inputs, and an output folder instead of a work directory. Its argv is
rendered by the same contract as the module's script, so ``ginn run`` and the pipeline cannot disagree.

Run folder layout (also what Nextflow publishes under ``--outdir``)::

    DIR/simulate/simulated.{bed,bim,fam,pheno.tsv,genes.tsv,truth.tsv}   (when simulate: true)
    DIR/qc/<cohort>.passed.{bed,bim,fam,qc.tsv,qc.samples.tsv}   (.pgen/.pvar/.psam for pfile or bgen input)
    DIR/map_genes/<cohort>.map.tsv       DIR/prune/<cohort>.pruned.tsv
    DIR/prepare/<pheno>.data/            DIR/tune/<pheno>.hparams.json   DIR/pairtest/<pheno>.pairs/
    DIR/train_main/<pheno>.main/         DIR/train_interaction/<pheno>.<chunk>.models/
    DIR/score/<pheno>.<chunk>.scores.tsv DIR/test/<pheno>.results.tsv
    DIR/baselines/<pheno>.<method>.results.tsv   DIR/replicate/<pheno>.replication.tsv
    DIR/report/report.html

``<chunk>`` is ``observed`` or ``perm-A-B`` (permutations A..B).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .contract.pipeline import GENOTYPE_FILES, PROCESS_BY_MODULE, QC_WRITES, Process, argv, substitute
from .errors import GinnError
from .run_params import pheno_names
from .validation import check_cohort_params


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
    def process(self) -> Process:
        return PROCESS_BY_MODULE[self.module]

    @property
    def label(self) -> str:
        return " ".join(str(self.meta[k]) for k in ("id", "chunk", "method") if k in self.meta)

    @property
    def argv(self) -> list[str]:
        inputs = {k: (None if v is None else [str(x) for x in v] if isinstance(v, list) else str(v))
                  for k, v in self.inputs.items()}
        return argv(self.process, self.params, self.meta, inputs, str(self.out_dir))

    def outputs(self) -> list[Path]:
        """The files the process declares (globs aside) and writes for these inputs, main output first."""
        names = [p for emit in self.process.outputs if emit.written(self.inputs) for p in emit.files
                 if "*" not in p and "/" not in p]
        return [self.out_dir / substitute(name, self.meta, self.inputs) for name in names]

    def output(self) -> Path:
        return self.outputs()[0]

    @property
    def outputs_prefix(self) -> str:
        """Every file this call writes in its stage folder starts with this."""
        return ".".join(str(self.meta[k]) for k in ("id", "chunk", "method") if k in self.meta) + "."


def genotype_files(kind: str, path: str | Path, sample: str | None = None) -> dict[str, str | None]:
    """A cohort's genotype inputs as the processes name them: a fileset's three files, or a BGEN and its .sample."""
    if kind == "bgen":
        return {"bgen": str(path), "sample": sample}
    return {name: f"{path}.{name}" for name in GENOTYPE_FILES[kind]}


def plan(params: Mapping[str, Any], outdir: Path) -> list[StageCall]:
    """Every stage call of a run, in an order where each call's inputs come before it."""
    calls: list[StageCall] = []

    def add(module: str, meta: dict, inputs: dict) -> StageCall:
        calls.append(StageCall(module, params, meta, inputs, outdir / module))
        return calls[-1]

    discovery, replication = check_cohort_params(params)
    if discovery is None:  # simulated (a PLINK 1 fileset)
        sim = add("simulate", {"id": "simulated"}, {})
        kind, cohort, fileset = "bfile", "simulated", sim.out_dir / "simulated"
        genotypes = genotype_files(kind, fileset)
        pheno, genes, names = f"{fileset}.pheno.tsv", f"{fileset}.genes.tsv", ["y"]
    else:
        kind, path, sample = discovery
        # the workflow's file(...).name of a prefix, file(...).baseName of a BGEN file
        cohort = Path(path).stem if kind == "bgen" else Path(path).name
        genotypes = genotype_files(kind, path, sample)
        pheno, genes, names = params["pheno"], params["genes"], pheno_names(params)
        if not names:
            raise GinnError("--pheno-names", "names no phenotype column")
    qc = add("qc", {"id": cohort}, genotypes)
    passed = genotype_files(QC_WRITES[kind], qc.out_dir / f"{cohort}.passed")
    mapped = add("map_genes", {"id": cohort}, passed | {"genes": genes, "keep_genes": params["keep_genes"]})
    pruned = add("prune", {"id": cohort}, passed | {"map": mapped.output()})
    ranges = permutation_ranges(params["permutations"], params["permutation_chunks"])
    for name in names:
        data = add("prepare", {"id": name}, passed | {"map": pruned.output(), "pheno": pheno,
                                                     "covar": params["covar"], "pc_file": params["pc_file"]}).output()
        pairtest = add("pairtest", {"id": name}, {"data": data})
        hparams = add("tune", {"id": name}, {"data": data}).output()
        # the main-effect null model and the scores only serve Perm I's global test (permutations > 0)
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
        pairs = pairtest.output() / "pairs.tsv"
        results = add("test", {"id": name}, {"pairs": pairs, "scores": scores}).output()
        for method in [m.strip() for m in params["baselines"].split(",") if m.strip()]:
            add("baselines", {"id": name, "method": method}, {"data": data})
        if replication is not None:
            add("replicate", {"id": name}, {"data": data, "models": observed_models, "results": results,
                                            **genotype_files(*replication), "pheno": params["repl_pheno"],
                                            "covar": params["repl_covar"], "pc_file": params["repl_pc_file"]})
    report = add("report", {"id": "report"}, {"run": outdir})
    report.depends = [out for call in calls[:-1] for out in call.outputs()]
    return calls
