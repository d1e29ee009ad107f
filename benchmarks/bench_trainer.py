"""Throughput of the batched trainer next to this machine's dense float32 matmul rate.

    .venv/bin/python benchmarks/bench_trainer.py [--networks 1,8,64,256] [--epochs 2] [--device cpu]

Data: 20,000 samples x 2,000 SNPs in 10 genes of 200 (independent binomial genotypes), the
trainer's default batch (a tenth of the rows: 10 Adam steps per epoch), gene MLPs m_i-10-1 and a
10-100-1 predictor. All rows train; one row validates, so the figures are training steps (forward,
backward, Adam). Networks of up to ginn.fused.MAX_FUSED_SNPS SNPs (e.g. --snps-per-gene 20, the
paper's simulation) run through the fused C kernel, larger ones through torch's batched products
in cache-sized micro-batches.

Training FLOPs per network and sample: forward F; backward 2F, except the first gene layer whose
input needs no gradient (its weight gradient only: 2*P*10). Achieved GFLOP/s counts these useful
FLOPs (padding excluded) over wall time. The reference is torch.mm of two 2,048 x 2,048 float32
matrices with the same threads, measured in the same run. Other users share this machine: the
script prints the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from ginn.model import GeneNetworkEnsemble, make_config
from ginn.train import NetworkPlan, TrainSettings, train_networks

N_SAMPLES, N_GENES, SNPS_PER_GENE = 20_000, 10, 200


def matmul_gflops(n: int = 2048, repeats: int = 10, device: str = "cpu") -> float:
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.mm(a, b)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def training_flops_per_sample(config: dict) -> int:
    """Useful FLOPs of one training step, per network and sample (see module docstring)."""
    model = GeneNetworkEnsemble(config)
    first_layer = 2 * model.n_snps * model.gene_hidden
    return first_layer * 2 + 3 * (model.forward_flops() - first_layer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="1,8,64,256")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per K (after one warm-up epoch)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--micro-batch-mib", type=int, default=None,
                        help="activation memory per micro-batch (default: the trainer's for the device)")
    parser.add_argument("--samples", type=int, default=N_SAMPLES, help="training rows")
    parser.add_argument("--snps-per-gene", type=int, default=SNPS_PER_GENE)
    parser.add_argument("--batch-size", type=int, default=0, help="rows per Adam step (0: the trainer's default)")
    parser.add_argument("--authors", action="store_true",
                        help="also time the authors' training loop (authors_loop.py: one network, batch 140, their "
                             "per-epoch evaluation of a 30%% held-out set included) after each K, and compare ginn "
                             "with it and with the authors' 0.138 s per network-epoch measured for issue 17")
    args = parser.parse_args()
    n_samples, snps_per_gene = args.samples, args.snps_per_gene
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    p = N_GENES * snps_per_gene
    genotypes = rng.binomial(2, rng.uniform(0.05, 0.5, p), size=(n_samples, p)).astype(np.int8)
    snp_mean = genotypes.mean(axis=0).astype(np.float32)
    target = rng.normal(size=(n_samples, 1)).astype(np.float32)
    train = np.ones((1, n_samples), dtype=bool)
    val = np.zeros((1, n_samples), dtype=bool)
    val[0, 0] = True
    config = make_config([snps_per_gene] * N_GENES, 1)
    flops = training_flops_per_sample(config)

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; torch threads {torch.get_num_threads()}")
    reference = matmul_gflops(device=args.device)
    print(f"dense float32 matmul (2048^3): {reference:.1f} GFLOP/s")
    print(f"{'K':>5} {'s/epoch':>9} {'ms/network-epoch':>16} {'networks*samples/s':>19} {'GFLOP/s':>8} "
          f"{'% of matmul':>11}")
    for k in (int(x) for x in args.networks.split(",")):
        plan = NetworkPlan(seeds=np.arange(k), target_column=np.zeros(k, int), mask_column=np.zeros(k, int),
                           l1_gene=np.full(k, 1e-4), l1_predictor=np.full(k, 1e-4))

        settings = TrainSettings(max_epochs=1 + args.epochs, patience=10_000, progress=False, device=args.device,
                                 micro_batch_bytes=(args.micro_batch_mib or 0) << 20, batch_size=args.batch_size)
        result = train_networks(config, genotypes, snp_mean, target, train, val, plan, settings)
        per_epoch = float(np.median(result.epoch_seconds[1:]))   # the first epoch warms caches up
        rate = k * n_samples / per_epoch
        gflops = rate * flops / 1e9
        ours = per_epoch / k
        print(f"{k:>5} {per_epoch:>9.3f} {1e3 * ours:>16.3f} {rate:>19,.0f} {gflops:>8.1f} "
              f"{100 * gflops / reference:>10.0f}%", flush=True)
        if args.authors:
            from authors_loop import AUTHORS_SECONDS_PER_NETWORK_EPOCH, authors_seconds_per_network_epoch
            loop = authors_seconds_per_network_epoch(n_samples, round(n_samples * 3 / 7), [snps_per_gene] * N_GENES)
            print(f"      the authors' loop: {loop:.3f} s/network-epoch -> ginn {loop / ours:.0f}x; "
                  f"vs the authors' {AUTHORS_SECONDS_PER_NETWORK_EPOCH} s: {AUTHORS_SECONDS_PER_NETWORK_EPOCH / ours:.0f}x "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
