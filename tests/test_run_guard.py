"""`ginn run` on one output folder: one writer at a time, kill -9 then resume gives the same bytes,
damaged outputs are redone, and provenance lets a stage be rerun on its own."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from _pipeline_data import TINY, tiny_plan, tiny_run_dir
from ginn.cli import cli
from ginn.run import run_calls
from ginn.run_params import default_params
from ginn.runguard import output_lock, remove_stale_temporaries

SRC = Path(__file__).resolve().parents[1] / "src"


def _config(tmp_path: Path, outdir: Path, **changes) -> Path:
    defaults = default_params()
    params = {k: v for k, v in TINY.items() if v != defaults[k]} | {"outdir": str(outdir)} | changes
    path = tmp_path / f"params-{outdir.name}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _ginn_run(config: Path, **kwargs) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "ginn.cli", "-q", "run", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kwargs)


def _results(outdir: Path) -> dict[str, str]:
    """sha256 of every result file; provenance records (wall-clock time, host), the HTML report (its
    generation time) and the run's stamps (checksums of folders that hold provenance records) are left
    out, since only they legitimately differ between two runs."""
    out = {}
    for path in sorted(p for p in outdir.rglob("*") if p.is_file()):
        rel = str(path.relative_to(outdir))
        if "provenance" in path.name or rel.startswith(("report/", ".ginn-run/")):
            continue
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_second_writer_is_refused_with_one_line(tmp_path):
    outdir = tmp_path / "run"
    with output_lock(outdir):  # what a running `ginn run` holds
        result = CliRunner().invoke(cli, ["-q", "run", "--config", str(_config(tmp_path, outdir))], prog_name="ginn")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "another `ginn run`" in lines[0] and str(outdir) in lines[0], result.stderr
    assert sorted(p.name for p in outdir.rglob("*")) == [".ginn-run", "lock"], "the refused run wrote something"


def test_lock_is_released_when_its_holder_dies(tmp_path):
    outdir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]);"
                               "from ginn.runguard import output_lock; from pathlib import Path;"
                               "cm = output_lock(Path(sys.argv[2])); cm.__enter__(); print('held', flush=True);"
                               "time.sleep(600)", str(SRC), str(outdir)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(Exception, match="another `ginn run`"):
        with output_lock(outdir):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with output_lock(outdir):  # the kernel dropped the dead holder's lock
        pass


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / "qc").mkdir()
    stale = [tmp_path / "qc" / ".x.passed.bed.tmp4242", tmp_path / ".y.data.tmp17"]
    stale[0].write_bytes(b"partial")
    stale[1].mkdir()
    (stale[1] / "genotypes.npy").write_bytes(b"partial")
    keep = tmp_path / "qc" / "x.passed.bed"
    keep.write_bytes(b"done")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert keep.exists() and not any(p.exists() for p in stale)


def test_truncated_output_is_detected_and_redone():
    calls = tiny_plan()
    upto = next(i for i, call in enumerate(calls) if call.module == "prepare")
    run_calls(calls[: upto + 1], tiny_run_dir())
    damaged = calls[upto - 1].output()                     # prune's PRUNED.tsv
    genotypes = calls[upto].output() / "genotypes.npy"     # prepare's dataset
    originals = {p: p.read_bytes() for p in (damaged, genotypes)}
    damaged.write_bytes(originals[damaged][: len(originals[damaged]) // 2])
    genotypes.write_bytes(originals[genotypes][:-100])
    done = dict(run_calls(calls[: upto + 1], tiny_run_dir()))
    assert done[f"prune {calls[upto - 1].label}"] == "ran" and done[f"prepare {calls[upto].label}"] == "ran"
    assert all(done[f"{c.module} {c.label}".strip()] == "reused" for c in calls[: upto - 1])
    assert {p: p.read_bytes() for p in originals} == originals


@pytest.mark.slow
def test_kill_9_during_a_stage_then_rerun_gives_identical_results(tmp_path):
    """Run once cleanly; then again from scratch in the same folder, kill -9 it while a stage is
    writing (a temporary output exists; the run is frozen with SIGSTOP first, so that a second run
    started meanwhile must be refused by the lock, not find the first one finished), resume: the
    results must equal the clean run's byte for byte, with no temporary left."""
    outdir = tmp_path / "run"
    config = _config(tmp_path, outdir)
    clean = _ginn_run(config)
    assert clean.wait(timeout=900) == 0, clean.stderr.read()
    reference = _results(outdir)
    assert any(k.startswith("train_interaction/") for k in reference)

    # A stage's temporaries live only while it writes (a few ms each at this size), so the run is
    # watched closely, and started again from scratch if it ended without being caught writing.
    for _attempt in range(5):
        subprocess.run(["rm", "-rf", str(outdir)], check=True)
        victim = _ginn_run(config)
        temporaries: list[Path] = []
        while victim.poll() is None:
            stamps = list((outdir / ".ginn-run").glob("prepare/*.json"))
            temporaries = [p for p in outdir.rglob(".*.tmp*")] if stamps else []
            if temporaries:
                victim.send_signal(signal.SIGSTOP)  # frozen mid-stage, still holding the folder's lock
                temporaries = list(outdir.rglob(".*.tmp*"))   # those not renamed before it froze
                if temporaries:
                    break
                victim.send_signal(signal.SIGCONT)
            time.sleep(0.001)
        if victim.poll() is None and temporaries:
            break
        victim.wait()
    assert victim.poll() is None and temporaries, "no run was caught writing a stage after prepare"
    second = _ginn_run(config)
    assert second.wait(timeout=120) == 2
    assert "another `ginn run`" in second.stderr.read()
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert any(p.exists() for p in temporaries), "kill -9 left no partial output to clean up"

    resumed = _ginn_run(config)
    assert resumed.wait(timeout=900) == 0, resumed.stderr.read()
    assert not list(outdir.rglob(".*.tmp*"))
    resumed_results = _results(outdir)
    assert resumed_results == reference, [k for k in reference if reference[k] != resumed_results.get(k)]
    # provenance under `ginn run`: the stage's own command and the config file's contents
    record = json.loads((outdir / "qc" / "simulated.passed.provenance.json").read_text())
    assert record["command"][:2] == ["ginn", "qc"] and record["config"]["contents"] == config.read_text()


def test_provenance_under_run_records_the_stage_command_config_and_inputs():
    calls = tiny_plan()
    last = next(i for i, call in enumerate(calls) if call.module == "train_main")
    run_calls(calls[: last + 1], tiny_run_dir())   # reused when an earlier test ran them
    prepare = next(c for c in calls if c.module == "prepare")
    record = json.loads((prepare.output() / "provenance.json").read_text())
    assert record["command"] == ["ginn", *prepare.argv]
    assert record["source_revision"]
    hashed = {label: entry["path"] for label, entry in record["inputs"].items()}
    assert hashed["genotypes"].endswith(".passed.bed") and hashed["pheno"].endswith(".pheno.tsv")
    train = next(c for c in calls if c.module == "train_main")
    record = json.loads((train.output() / "provenance.json").read_text())
    if "data" in record["inputs"]:   # folders are hashed file by file, arrays included
        assert "genotypes.npy" in record["inputs"]["data"]["sha256"]
