"""A tiny `ginn run` shared by the pipeline tests: simulated cohort, two-member ensembles, two permutations.

Stages run in this process through ginn.run.run_calls, once per test session (stamps make a second
request free); a test asks for the run up to the stage it needs, so one missing stage command fails only
the stages after it.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ginn.genotypes import DOSAGE_GRID, genotype_input
from ginn.plan import StageCall, plan
from ginn.run import record_stamp, run_calls
from ginn.run_params import default_params

TINY = default_params() | {
    "simulate": True, "sim_n_samples": 300, "sim_haplotypes": 100, "sim_snps_per_gene": 5, "sim_snr": 1.0,
    "pcs": 2, "folds": 2, "l1_grid": "0.0,0.001", "members": 2, "predictor_hidden": 8, "max_epochs": 5,
    "patience": 2, "permutations": 2, "permutation_chunks": 1, "baselines": "topsnp-lr",
}

_RUN: dict[str, Path] = {}


def _with_replication(params: dict) -> dict:
    """The simulated cohort doubles as its own replication cohort (enough to exercise the stage)."""
    simulated = tiny_run_dir() / "simulate" / "simulated"
    return params | {"repl_bfile": str(simulated), "repl_pheno": f"{simulated}.pheno.tsv"}


def tiny_run_dir() -> Path:
    if "dir" not in _RUN:
        _RUN["dir"] = Path(tempfile.mkdtemp(prefix="ginn-tiny-run-"))
        atexit.register(shutil.rmtree, _RUN["dir"], True)
    return _RUN["dir"]


def tiny_plan(params: dict | None = None) -> list[StageCall]:
    return plan(_with_replication(params or TINY), tiny_run_dir())


def run_before(module: str, params: dict | None = None) -> StageCall:
    """Run the tiny workflow up to the first call of ``module``; return that (not yet run) call."""
    calls = tiny_plan(params)
    index = next(i for i, call in enumerate(calls) if call.module == module)
    run_calls(calls[:index], tiny_run_dir())  # finished stages are reused through their stamps
    return calls[index]


def adopt_task_outputs(call: StageCall, task: Path) -> None:
    """Use what a module's script wrote in its task folder as the tiny run's output of that stage.

    Its argv equals the one `ginn run` would use (the contract test checks that first), so the run need
    not compute the stage a second time.
    """
    call.out_dir.mkdir(parents=True, exist_ok=True)
    for path in task.iterdir():
        if path.is_symlink() or path.name in (".command.sh", "versions.yml", "run"):
            continue
        target = call.out_dir / path.name
        if path.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(path, target)
        else:
            shutil.copy2(path, target)
    record_stamp(tiny_run_dir(), call)


def simulated_cohort() -> Path:
    """The tiny run's simulated PLINK fileset prefix (simulated on first use); PREFIX.pheno.tsv beside it."""
    run_before("qc")
    return tiny_run_dir() / "simulate" / "simulated"


def imputed_dosages() -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """The simulated cohort's genotypes blurred as imputation blurs them: (variants x samples) dosages on
    plink2's 1/16384 grid (-1 missing), mostly within 0.1 of the hard call (so it is kept), and its bim and fam."""
    source = genotype_input(bfile=simulated_cohort()).open()
    calls = source.read_hardcalls(slice(None)).astype(np.float64)
    present = calls >= 0
    freq = np.where(present, calls, 0).sum(axis=1, keepdims=True) / (2 * present.sum(axis=1, keepdims=True))
    certainty = np.random.default_rng(3).uniform(0.96, 1.0, size=calls.shape)
    dosages = np.rint((certainty * calls + (1 - certainty) * 2 * freq) * DOSAGE_GRID) / DOSAGE_GRID
    return np.where(present, dosages, -1.0), source.bim, source.fam


def dosage_cohort(kind: str) -> dict[str, str]:
    """The simulated cohort with imputed dosages as a .pgen fileset (``pfile``) or a BGEN 1.3 file with an
    Oxford .sample (``bgen``), written once per session; returns the ``ginn run`` params naming it."""
    if "dosages" not in _RUN:
        _RUN["dosages"] = Path(tempfile.mkdtemp(prefix="ginn-dosage-cohorts-"))
        atexit.register(shutil.rmtree, _RUN["dosages"], True)
    folder = _RUN["dosages"] / kind
    if kind == "pfile":
        params = {"pfile": str(folder / "imputed")}
        if not (folder / "imputed.psam").exists():
            write_pgen(folder / "imputed", *imputed_dosages())
    else:
        params = {"bgen": str(folder / "imputed.bgen"), "sample": str(folder / "imputed.sample")}
        if not (folder / "imputed.sample").exists():
            write_bgen(folder / "imputed", *imputed_dosages())
    return params


def write_pgen(prefix: Path, dosages: np.ndarray, bim: pd.DataFrame, fam: pd.DataFrame) -> None:
    import pgenlib

    prefix.parent.mkdir(parents=True, exist_ok=True)
    writer = pgenlib.PgenWriter(bytes(f"{prefix}.pgen", "utf8"), dosages.shape[1], variant_ct=dosages.shape[0],
                                dosage_present=True)
    writer.append_dosages_batch(np.ascontiguousarray(np.where(dosages < 0, -9, dosages), dtype=np.float32))
    writer.close()
    pd.DataFrame({"#CHROM": bim["chrom"], "POS": bim["pos"], "ID": bim["snp"], "REF": bim["a2"],
                  "ALT": bim["a1"]}).to_csv(f"{prefix}.pvar", sep="\t", index=False)
    pd.DataFrame({"#FID": fam["fid"], "IID": fam["iid"], "SEX": fam["sex"]}).to_csv(f"{prefix}.psam", sep="\t",
                                                                                    index=False)


def write_bgen(prefix: Path, dosages: np.ndarray, bim: pd.DataFrame, fam: pd.DataFrame) -> None:
    """Genotype probabilities whose expected ALT count is the dosage; ALT second (the allele BGEN counts)."""
    import bgen

    prefix.parent.mkdir(parents=True, exist_ok=True)
    with bgen.BgenWriter(f"{prefix}.bgen", dosages.shape[1], samples=list(fam["iid"]), compression="zstd",
                         layout=2) as writer:
        for row, variant in zip(dosages, bim.itertuples()):
            probs = np.stack([np.clip(1 - row, 0, 1), 1 - np.abs(row - 1), np.clip(row - 1, 0, 1)], axis=1)
            probs[row < 0] = np.nan
            writer.add_variant(variant.snp, variant.snp, str(variant.chrom), int(variant.pos),
                               [variant.a2, variant.a1], probs, bit_depth=16)
    Path(f"{prefix}.sample").write_text("ID_1 ID_2 missing sex\n0 0 0 D\n" + "".join(
        f"{f} {i} 0 {sex}\n" for f, i, sex in zip(fam["fid"], fam["iid"], fam["sex"])))
