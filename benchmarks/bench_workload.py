"""The paper's whole workload through `ginn run`, stage by stage: time, networks/s, FLOP/s, peak memory.

    .venv/bin/python benchmarks/bench_workload.py [--scale 1] [--permutations N] [--threads T] [--device cpu]

At --scale 1: `ginn simulate` of 20,000 individuals x 10 genes x 20 SNPs (the complex model, Eq. 1),
then QC, gene mapping, pruning, preparation, 5-fold L1 tuning, the 50-member main-effect and
observed ensembles, 100 Perm I datasets x 50 members (all in one batched training run and one scoring
run: --permutation-chunks 1), exact Shapley scoring of the 6,000 test rows and the test: 5,050
interaction networks. --scale s multiplies the individuals, members and permutations (a smoke run);
--permutations trains fewer permuted datasets, and the total is then also extrapolated to 100 from the
measured per-network times of the training and scoring stages (they scale with the network count).

Printed beside every stage: wall time, networks/s, useful FLOP/s (training: forward F + backward 2F
except the first layer's input gradient, per epoch on the training rows, plus F on the validation
rows, epochs from metrics.json; scoring: the dense-product count of exact enumeration, 2^M (2MH + 2H
+ 2Q) per individual and network, Q = indices scored), its share of this machine's float32 matmul
measured at the start with the same threads, the peak resident memory of the stage (VmHWM, reset
before each stage) and the 1-minute load average when the stage ended. The same run also times two
references: the authors' public training loop rebuilt for timing (authors_loop.py: one network,
batch 140, its per-epoch evaluation included) and the naive Shapley loop of bench_shapley.py (4
predictor calls per pair and coalition), and prints ginn's ratio to each and to the authors' 0.138 s
per network-epoch measured when issue 17 was filed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from authors_loop import AUTHORS_SECONDS_PER_NETWORK_EPOCH, authors_seconds_per_network_epoch  # noqa: E402
from bench_shapley import naive_seconds_per_call, network  # noqa: E402
from bench_trainer import matmul_gflops, training_flops_per_sample  # noqa: E402

from ginn.model import GeneNetworkEnsemble  # noqa: E402
from ginn.plan import plan  # noqa: E402
from ginn.run import run_calls  # noqa: E402
from ginn.run_params import default_params  # noqa: E402
from ginn.threads import threads_default, use_threads  # noqa: E402

FULL = {"samples": 20_000, "members": 50, "permutations": 100}


def workload_params(scale: float, permutations: int | None, max_epochs: int | None, device: str,
                    outdir: Path) -> dict:
    members = max(2, round(FULL["members"] * scale))
    perms = permutations if permutations is not None else max(2, round(FULL["permutations"] * scale))
    return {**default_params(), "outdir": str(outdir), "simulate": True, "sim_model": "complex",
            "sim_n_samples": max(200, round(FULL["samples"] * scale)), "sim_n_genes": 10, "sim_snps_per_gene": 20,
            "sim_haplotypes": 2000 if scale >= 0.5 else 200, "members": members, "permutations": perms,
            "permutation_chunks": 1, "device": device,
            **({"max_epochs": max_epochs} if max_epochs else {})}


def peak_rss_reset() -> None:
    """Reset VmHWM so that the next reading is the peak of the next stage alone (Linux)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stage_networks_and_flops(call, outdir: Path) -> tuple[int | None, float | None, float | None]:
    """(networks, network-epochs, useful FLOPs) of a training or scoring stage; None where not counted."""
    out = call.output()
    if call.module in ("train_main", "train_interaction"):
        info = json.loads((out / "ensemble.json").read_text())
        metrics = json.loads((out / "metrics.json").read_text())
        config = info["config"]
        prov = json.loads((out / "provenance.json").read_text())["params"]
        n_train, _ = _split_rows(call.inputs["data"])
        n_val = round(prov["val_fraction"] * n_train)
        fwd = GeneNetworkEnsemble({**config, "n_networks": 1}).forward_flops()
        per_epoch = (n_train - n_val) * training_flops_per_sample({**config, "n_networks": 1}) + n_val * fwd
        epochs = np.array([record["epochs"] for record in metrics["networks"]], dtype=float)
        return len(epochs), float(epochs.sum()), float(epochs.sum() * per_epoch)
    if call.module == "score":
        prov = json.loads(out.with_name(out.name[: -len(".tsv")] + ".provenance.json").read_text())
        models = json.loads((Path(call.inputs["models"]) / "ensemble.json").read_text())
        n_networks = models["config"]["n_networks"]
        m = len(models["config"]["gene_sizes"])
        hidden = models["config"]["predictor_hidden"]
        q = m + m * (m - 1) // 2
        rows = prov["n_rows"]
        return n_networks, None, float(n_networks * rows * 2 ** m * (2 * m * hidden + 2 * hidden + 2 * q))
    if call.module == "tune":
        p = call.params
        return p["folds"] * len(str(p["l1_grid"]).split(",")) * p["tune_members"], None, None
    return None, None, None


def _split_rows(data: str) -> tuple[int, int]:
    """(training, test) rows of a prepared dataset."""
    from ginn.dataset import Dataset
    dataset = Dataset.load(data)
    return len(dataset.train_idx), len(dataset.test_idx)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies individuals, members and permutations")
    parser.add_argument("--permutations", type=int, default=None, help="permuted datasets (default 100 x scale)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: the task's CPUs)")
    parser.add_argument("--max-epochs", type=int, default=None, help="epoch limit (default: the paper's, 500)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--outdir", default=None, help="run folder (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    threads = use_threads(args.threads)
    tmp = None if args.outdir else tempfile.TemporaryDirectory(prefix="ginn-workload-")
    outdir = Path(args.outdir or tmp.name)
    params = workload_params(args.scale, args.permutations, args.max_epochs, args.device, outdir)

    load = lambda: f"{os.getloadavg()[0]:.2f}"  # noqa: E731
    print(f"torch {torch.__version__}, {threads} thread(s), device {args.device}; load average {load()}")
    matmul = matmul_gflops(device=args.device)
    print(f"dense float32 matmul (2048^3): {matmul:.1f} GFLOP/s (load {load()})")
    print(f"workload: {params['sim_n_samples']:,} individuals x 10 genes x 20 SNPs, {params['members']} members, "
          f"{params['permutations']} Perm I datasets")

    calls = plan(params, outdir)
    rows = []
    header = f"{'stage':<34} {'s':>8} {'networks':>8} {'net/s':>8} {'GFLOP/s':>8} {'%matmul':>7} {'peak MiB':>9} {'load':>5}"
    print(header, flush=True)
    for call in calls:
        peak_rss_reset()
        started = time.perf_counter()
        # the stages' thread default is this run's; ginn run's progress bar is hidden
        with threads_default(threads), open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):
            (_, how), = run_calls([call], outdir)
        seconds = time.perf_counter() - started
        if how == "reused":        # an earlier run's output (same argv and inputs): nothing was measured
            print(f"{call.module + ' ' + call.label:<34} reused", flush=True)
            continue
        networks, network_epochs, flops = stage_networks_and_flops(call, outdir)
        row = {"stage": f"{call.module} {call.label}".strip(), "seconds": seconds, "networks": networks,
               "network_epochs": network_epochs, "flops": flops, "peak_mib": peak_rss_mib(), "load": os.getloadavg()[0],
               "module": call.module}
        rows.append(row)
        gflops = flops / seconds / 1e9 if flops else None
        print(f"{row['stage'][:34]:<34} {seconds:>8.1f} {networks or '':>8} "
              f"{(f'{networks / seconds:.1f}' if networks else ''):>8} {(f'{gflops:.1f}' if gflops else ''):>8} "
              f"{(f'{100 * gflops / matmul:.0f}%' if gflops else ''):>7} {row['peak_mib']:>9.0f} {row['load']:>5.2f}",
              flush=True)

    total = sum(r["seconds"] for r in rows)
    summary = {"total_seconds": total, "matmul_gflops": matmul, "threads": threads, "params": params, "stages": rows}
    reused = len(calls) - len(rows)
    print(f"total {total:.1f} s ({total / 60:.1f} min){f', {reused} reused stage(s) not timed' if reused else ''}, "
          f"load average now {load()}")
    full_perms = FULL["permutations"]
    perm_rows = [r for r in rows if r["stage"].split()[0] in ("train_interaction", "score") and "perm" in r["stage"]]
    if params["permutations"] != full_perms and perm_rows:
        scaled = sum(r["seconds"] for r in perm_rows) * (full_perms / params["permutations"] - 1)
        summary["extrapolated_seconds"] = total + scaled
        print(f"extrapolated to {full_perms} permutations (per-network times of the permutation stages): "
              f"{(total + scaled) / 60:.1f} min")

    train = [r for r in rows if r["module"] == "train_interaction"]
    if train:
        n_rows, n_test = _split_rows(str(outdir / "prepare" / "y.data"))
        ours = sum(r["seconds"] for r in train) / sum(r["network_epochs"] for r in train)
        reference = authors_seconds_per_network_epoch(n_rows, n_test, [20] * 10)
        print(f"training: {ours * 1e3:.2f} ms per network-epoch (incl. validation, data, checkpoints) = "
              f"{AUTHORS_SECONDS_PER_NETWORK_EPOCH / ours:.0f}x the authors' {AUTHORS_SECONDS_PER_NETWORK_EPOCH} s, "
              f"{reference / ours:.0f}x the authors' loop timed now "
              f"({reference:.3f} s; load {load()})")
        summary.update(ms_per_network_epoch=ours * 1e3, authors_ratio=AUTHORS_SECONDS_PER_NETWORK_EPOCH / ours,
                       loop_ratio=reference / ours)
    scores = [r for r in rows if r["module"] == "score"]
    if scores:
        m, pairs = 10, 45
        test_rows = json.loads(Path(next(c for c in calls if c.module == "score").output().with_name(
            "y.observed.scores.provenance.json")).read_text())["n_rows"]
        evaluations = sum(r["networks"] for r in scores) * test_rows * pairs * 2 ** (m - 2)
        rate = evaluations / sum(r["seconds"] for r in scores)
        model = network(m, 100)
        values = torch.randn(1, 32, m, generator=torch.Generator().manual_seed(m))
        naive = 1.0 / (4 * naive_seconds_per_call(model, values, 2000))
        print(f"scoring: {rate:.3g} pair-coalition evaluations/s = {rate / naive:.0f}x the naive loop's "
              f"{naive:.3g}/s timed now (load {load()})")
        summary.update(pair_evaluations_per_s=rate, naive_ratio=rate / naive)
    if tmp is not None:
        tmp.cleanup()
    return summary


if __name__ == "__main__":
    main()
