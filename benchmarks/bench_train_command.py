"""One whole `ginn train` process at the paper's simulated size, timed as a user (or a Nextflow task) runs it.

    .venv/bin/python benchmarks/bench_train_command.py [--repeats 3] [--members 50] [--threads T] [--scale 1]

bench_trainer.py times training steps inside one process; this times everything a training command
does: Python and torch start-up, reading the prepared dataset, training every network to early
stopping with its validation passes, the final predictions, metrics and the written ensemble. Data:
the cohort of bench_workload.py (`ginn simulate` of 20,000 individuals x 10 genes x 20 SNPs, then QC,
gene mapping, pruning and preparation through `ginn run`'s stage calls), trained with the stage's
defaults. Printed per repeat: wall time, network-epochs (metrics.json), wall time per network-epoch and
its ratio to the authors' 0.138 s; then the start-up alone (a process that only imports ginn.train)
and the authors' training loop (authors_loop.py) timed in the same run, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from authors_loop import AUTHORS_SECONDS_PER_NETWORK_EPOCH, authors_seconds_per_network_epoch  # noqa: E402
from bench_workload import workload_params  # noqa: E402

from ginn.plan import plan  # noqa: E402
from ginn.run import run_calls  # noqa: E402
from ginn.threads import threads_default, use_threads  # noqa: E402

DATA_STAGES = ("simulate", "qc", "map_genes", "prune", "prepare")


def prepared_dataset(outdir: Path, scale: float) -> Path:
    """The workload's prepared dataset folder, made by its first stages."""
    calls = [c for c in plan(workload_params(scale, None, None, "cpu", outdir), outdir) if c.module in DATA_STAGES]
    run_calls(calls, outdir)
    return next(c for c in calls if c.module == "prepare").output()


def main(argv: list[str] | None = None) -> list[float]:
    """Prints the figures; returns the wall time per network-epoch of each repeat."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--model", default="interaction", choices=["interaction", "main"])
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: the task's CPUs)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the individuals (a smoke run)")
    args = parser.parse_args(argv)
    threads = use_threads(args.threads)
    load = lambda: f"{os.getloadavg()[0]:.2f}"  # noqa: E731
    ginn = str(Path(sys.executable).with_name("ginn"))
    with tempfile.TemporaryDirectory(prefix="ginn-train-command-") as tmp:
        with threads_default(threads):
            data = prepared_dataset(Path(tmp), args.scale)
        individuals = workload_params(args.scale, None, None, "cpu", Path(tmp))["sim_n_samples"]
        print(f"`ginn train --model {args.model} --members {args.members} --threads {threads}` on {data.name} "
              f"({individuals:,} individuals x 10 genes x 20 SNPs); load {load()}")
        per_epoch = []
        for repeat in range(args.repeats):
            out = Path(tmp) / f"models{repeat}"
            started = time.perf_counter()
            subprocess.run([ginn, "-q", "train", "--data", str(data), "--out", str(out), "--model", args.model,
                            "--members", str(args.members), "--threads", str(threads)], check=True)
            wall = time.perf_counter() - started
            metrics = json.loads((out / "metrics.json").read_text())
            epochs = sum(record["epochs"] for record in metrics["networks"])
            per = wall / epochs
            per_epoch.append(per)
            print(f"  run {repeat + 1}: {wall:.2f} s, {epochs} network-epochs ({epochs / args.members:.1f} per network): "
                  f"{per * 1e3:.2f} ms per network-epoch = {AUTHORS_SECONDS_PER_NETWORK_EPOCH / per:.0f}x the "
                  f"authors' {AUTHORS_SECONDS_PER_NETWORK_EPOCH} s (load {load()})", flush=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import ginn.train"], check=True)
    print(f"start-up alone (a process importing ginn.train, torch included): {time.perf_counter() - started:.2f} s")
    import torch
    torch.set_num_threads(threads)
    loop = authors_seconds_per_network_epoch(14_019, 5_981, [20] * 10)
    print(f"the authors' loop (authors_loop.py): {loop:.3f} s per network-epoch (load {load()})")
    return per_epoch


if __name__ == "__main__":
    main()
