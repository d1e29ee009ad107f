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
