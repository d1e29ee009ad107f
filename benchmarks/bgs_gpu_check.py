"""GPU check of ``ginn bgs train``: the method's network at 1-2 mm with mixed precision, volumes/s and peak memory.

Runs the training step ``ginn bgs train`` runs (ResNet-10-SE, SNP heads plus 100 negative-control heads,
AdamW, float16 autocast with gradient scaling on CUDA) on volumes of the prepared template grid, at each
``--voxel-size``, with the method's batch of 20, and prints one line per grid: volumes/s over the timed
steps (after warm-up) and the peak CUDA memory. A batch that does not fit is reported as such, and the
next grid still runs. ``--dry-run`` does the same on the CPU at 8 mm with a tiny batch, so a test checks
the script without a GPU.

    python benchmarks/bgs_gpu_check.py                  # CUDA: 2 and 1.5 mm, batch 20
    python benchmarks/bgs_gpu_check.py --voxel-size 1 --batch-size 8
    python benchmarks/bgs_gpu_check.py --dry-run        # CPU, 8 mm, 2 volumes, 1 step
"""

from __future__ import annotations

import argparse
import time

import torch

from ginn.bgs.model import build_model
from ginn.bgs.templates import load_template
from ginn.bgs.train import BATCH_SIZE, LR, WEIGHT_DECAY, training_step


def check(voxel_size: float, *, arch: str, n_snps: int, n_controls: int, batch_size: int, steps: int, warmup: int,
          device: str) -> str:
    shape = load_template(voxel_size).grid.shape
    use_amp = device.startswith("cuda")
    if use_amp:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    model = build_model({"arch": arch, "n_snps": n_snps, "n_controls": n_controls}).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    x = torch.randn(batch_size, 1, *shape, device=device)
    labels = torch.randint(-1, 3, (batch_size, n_snps + n_controls), device=device)
    grid = f"{voxel_size:g} mm grid {'x'.join(map(str, shape))}"
    try:
        for step in range(warmup + steps):
            if step == warmup:
                if use_amp:
                    torch.cuda.synchronize()
                started = time.perf_counter()
            loss = training_step(model, optimizer, scaler, x, labels, use_amp)
        if use_amp:
            torch.cuda.synchronize()
    except torch.OutOfMemoryError:
        return f"{grid}: batch {batch_size} does not fit in GPU memory"
    rate = steps * batch_size / (time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated() / 2**30 if use_amp else float("nan")
    return (f"{grid}: {rate:.2f} volumes/s, peak memory {peak:.2f} GiB (batch {batch_size}, {arch}, "
            f"{n_snps} SNPs + {n_controls} controls, amp={use_amp}, loss {float(loss):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxel-size", type=float, nargs="+", default=[2.0, 1.5])
    parser.add_argument("--arch", default="resnet10-se")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--n-snps", type=int, default=10)
    parser.add_argument("--n-controls", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dry-run", action="store_true", help="CPU, 8 mm, batch 2, one step: checks the script")
    args = parser.parse_args()
    if args.dry_run:
        device, sizes, batch, steps, warmup = "cpu", [8.0], 2, 1, 0
    else:
        if not torch.cuda.is_available():
            parser.error("no CUDA device (use --dry-run to check the script on the CPU)")
        device, sizes, batch, steps, warmup = "cuda", args.voxel_size, args.batch_size, args.steps, args.warmup
        print(f"device {torch.cuda.get_device_name()} torch {torch.__version__}", flush=True)
    for size in sizes:
        print(check(size, arch=args.arch, n_snps=args.n_snps, n_controls=args.n_controls, batch_size=batch,
                    steps=steps, warmup=warmup, device=device), flush=True)


if __name__ == "__main__":
    main()
