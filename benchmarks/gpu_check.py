"""The GPU check a session with a lent GPU runs (under 10 minutes on one data-centre GPU).

    .venv/bin/python benchmarks/gpu_check.py                 # on the GPU machine
    .venv/bin/python benchmarks/gpu_check.py --dry-run       # tiny sizes on the CPU (what the tests run)

1. The paper's whole workload through `ginn run` on the device (benchmarks/bench_workload.py at
   --scale 1: 20,000 x 10 genes x 20 SNPs, 50-member ensembles, 100 Perm I datasets in one batched
   run, exact scoring), stage by stage.
2. A UK Biobank-sized training step: 300,000 individuals x 4,300 SNPs in 65 genes (int8 genotypes
   on the device), the paper's batch of 30,000 and 65-200-1 predictor, for a chunk of networks:
   seconds per epoch, networks·samples/s, FLOP/s against the device's float32 (TF32) matmul, and
   peak device memory.

It needs a CUDA build of torch in .venv (see README). Each part prints as it finishes, so a run cut
short by its time limit still reports what it measured.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_workload  # noqa: E402
from bench_trainer import matmul_gflops, training_flops_per_sample  # noqa: E402

from ginn.model import make_config  # noqa: E402
from ginn.train import NetworkPlan, TrainSettings, train_networks  # noqa: E402

UKB = {"samples": 300_000, "snps": 4_300, "genes": 65, "hidden": 200, "batch": 30_000, "networks": 50}
DRY = {"samples": 3_000, "snps": 130, "genes": 5, "hidden": 20, "batch": 1_000, "networks": 4}


def large_step(device: str, sizes: dict, epochs: int) -> dict:
    """Train ``sizes['networks']`` networks for ``epochs`` epochs on random int8 genotypes; rates per epoch."""
    rng = np.random.default_rng(0)
    n, p, m = sizes["samples"], sizes["snps"], sizes["genes"]
    gene_sizes = np.full(m, p // m)
    gene_sizes[: p - gene_sizes.sum()] += 1
    genotypes = rng.integers(0, 3, size=(n, p), dtype=np.int8)
    snp_mean = genotypes.mean(axis=0, dtype=np.float64).astype(np.float32)
    target = rng.normal(size=(n, 1)).astype(np.float32)
    val = np.zeros((1, n), dtype=bool)
    val[0, rng.choice(n, n // 10, replace=False)] = True
    config = make_config(gene_sizes, 1, predictor_hidden=sizes["hidden"])
    k = sizes["networks"]
    plan = NetworkPlan(seeds=np.arange(k), target_column=np.zeros(k, int), mask_column=np.zeros(k, int),
                       l1_gene=np.zeros(k), l1_predictor=np.zeros(k))
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    settings = TrainSettings(batch_size=sizes["batch"], max_epochs=epochs, patience=10_000, progress=False,
                             device=device)
    result = train_networks(config, genotypes, snp_mean, target, ~val, val, plan, settings)
    per_epoch = float(np.median(result.epoch_seconds[1:] if epochs > 1 else result.epoch_seconds))
    train_rows = n - n // 10
    rate = k * train_rows / per_epoch
    gflops = rate * training_flops_per_sample(config) / 1e9
    memory = torch.cuda.max_memory_allocated() / 2 ** 30 if device.startswith("cuda") else float("nan")
    return {"seconds_per_epoch": per_epoch, "network_samples_per_s": rate, "gflops": gflops, "peak_gib": memory}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU: checks the script, measures nothing")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the large step (the first warms up)")
    parser.add_argument("--skip-workload", action="store_true", help="only the UK Biobank-sized step")
    args = parser.parse_args(argv)
    device = "cpu" if args.dry_run else args.device
    if device.startswith("cuda"):
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}", flush=True)
    results: dict = {"device": device}
    if not args.skip_workload:
        print("== 1. the paper's whole workload through ginn run ==", flush=True)
        workload = ["--device", device] + (["--scale", "0.01", "--max-epochs", "2", "--threads", "1"]
                                            if args.dry_run else ["--scale", "1"])
        results["workload"] = bench_workload.main(workload)
    sizes = DRY if args.dry_run else UKB
    print(f"== 2. UK Biobank-sized training: {sizes['samples']:,} x {sizes['snps']:,} SNPs in {sizes['genes']} genes, "
          f"batch {sizes['batch']:,}, {sizes['networks']} networks ==", flush=True)
    matmul = matmul_gflops(device=device)
    started = time.perf_counter()
    step = large_step(device, sizes, 2 if args.dry_run else args.epochs)
    print(f"{step['seconds_per_epoch']:.2f} s/epoch, {step['network_samples_per_s']:,.0f} networks*samples/s, "
          f"{step['gflops']:.0f} GFLOP/s = {100 * step['gflops'] / matmul:.0f}% of float32 matmul ({matmul:.0f} GFLOP/s), "
          f"peak device memory {step['peak_gib']:.1f} GiB, {time.perf_counter() - started:.0f} s in all; "
          f"load {os.getloadavg()[0]:.2f}", flush=True)
    results["large_step"] = {**step, "matmul_gflops": matmul}
    return results


if __name__ == "__main__":
    main()
