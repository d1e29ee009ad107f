"""Training throughput of the brain-genotype-score CNNs (volumes per second).

Times full optimisation steps (forward, masked cross-entropy over all SNP heads, backward, AdamW) on
random volumes shaped like the prepared template grid, after warm-up steps; on CUDA with mixed
precision as ``ginn bgs train`` does. Data loading is excluded: the prepared images are a memory-mapped
float16 array, read far faster than these steps consume it.

    python benchmarks/bench_bgs.py                              # CPU, 4 mm, both architectures
    python benchmarks/bench_bgs.py --device cuda --voxel-size 1 --batch-size 8
"""

from __future__ import annotations

import argparse
import time

import torch

from ginn.bgs.model import ARCHITECTURES, build_model
from ginn.bgs.train import training_step
from ginn.bgs.templates import load_template


def throughput(arch: str, shape: tuple[int, ...], *, n_snps: int, batch_size: int, steps: int, warmup: int,
               device: str) -> float:
    torch.manual_seed(0)
    model = build_model({"arch": arch, "n_snps": n_snps}).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    use_amp = device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    x = torch.randn(batch_size, 1, *shape, device=device)
    genotypes = torch.randint(-1, 3, (batch_size, n_snps), device=device)
    for step in range(warmup + steps):
        if step == warmup:
            if use_amp:
                torch.cuda.synchronize()
            started = time.perf_counter()
        training_step(model, optimizer, scaler, x, genotypes, use_amp)
    if use_amp:
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxel-size", type=float, default=4.0, help="grid voxel size in mm")
    parser.add_argument("--arch", choices=ARCHITECTURES, nargs="+", default=list(ARCHITECTURES))
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--n-snps", type=int, default=10)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = load_template(args.voxel_size).grid.shape
    print(f"device={args.device} threads={torch.get_num_threads()} grid={'x'.join(map(str, shape))} "
          f"({args.voxel_size:g} mm) batch={args.batch_size} snps={args.n_snps}")
    for arch in args.arch:
        rate = throughput(arch, shape, n_snps=args.n_snps, batch_size=args.batch_size, steps=args.steps,
                          warmup=args.warmup, device=args.device)
        print(f"{arch:12s} {rate:8.2f} volumes/s (training)")


if __name__ == "__main__":
    main()
