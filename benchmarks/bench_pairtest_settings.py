"""Are the per-pair test's training settings good ones? L1, batch and stopping, one at a time.

The cross-fitted test (``ginn pairtest``) trains its fold networks with the trainer's defaults (no L1,
batch min(30,000, n/10), patience 20, at most 500 epochs). This benchmark changes one of them at a
time on complex-model cohorts (Eq. 1, msprime genotypes of the packaged lipid genes, S/N 0.5) whose
seeds (101, 102, ...) the README's sweep does not use, and reports per setting: AP of |z| against the
planted pairs, power and FDP of the calls at q <= 0.1, the false-pair rate at p <= 0.05, and the
paired AP difference to the defaults over seeds (mean and 95% t-interval).

    python benchmarks/bench_pairtest_settings.py --seeds 10 --n-samples 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from ginn.dataset import Dataset
from ginn.evaluate import average_precision
from ginn.pairtest import crossfit_pair_test
from ginn.permtest import bh_qvalues
from ginn.simulate import simulate_dataset
from ginn.train import TrainSettings
from paired import paired_interval

VARIANTS = {
    "defaults": {},
    "l1_gene 1e-4": {"l1_gene": 1e-4},
    "l1_gene 1e-3": {"l1_gene": 1e-3},
    "batch 500": {"batch_size": 500},
    "patience 5": {"patience": 5},
}
TRAINING = ("batch_size", "patience", "max_epochs", "lr")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=101)
    parser.add_argument("--n-samples", type=int, default=20_000)
    parser.add_argument("--fdr", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=None, help="Also write the per-dataset rows here (TSV).")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            truth = simulate_dataset(Path(tmp) / f"s{seed}", n_samples=args.n_samples, model="complex", snr=0.5,
                                     genotypes="msprime", seed=seed)
            dataset = Dataset.load(Path(tmp) / f"s{seed}")
            for name, change in VARIANTS.items():
                settings = TrainSettings(seed=seed, progress=False,
                                         **{k: v for k, v in change.items() if k in TRAINING})
                started = time.perf_counter()
                table, _, _ = crossfit_pair_test(dataset, seed=seed, settings=settings,
                                                 **{k: v for k, v in change.items() if k not in TRAINING})
                table = table.merge(truth, on=["gene_a", "gene_b"])
                planted = table["interacting"].to_numpy(bool)
                called = bh_qvalues(table["p_pair"].to_numpy()) <= args.fdr
                rows.append({"seed": seed, "setting": name,
                             "ap": average_precision(planted, table["z"].abs().to_numpy()),
                             "power": called[planted].mean(), "fdp": called[~planted].sum() / max(called.sum(), 1),
                             "false_pair_rate_05": (table["p_pair"].to_numpy()[~planted] <= 0.05).mean(),
                             "seconds": round(time.perf_counter() - started, 1)})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    if args.out:
        table.to_csv(args.out, sep="\t", index=False)
    reference = table[table["setting"] == "defaults"].set_index("seed")["ap"]
    print("\n| setting | AP | power (q ≤ 0.1) | FDP | false-pair rate at 0.05 | AP − AP(defaults), 95% CI |")
    print("|---|---|---|---|---|---|")
    for name in VARIANTS:
        part = table[table["setting"] == name]
        diff = part.set_index("seed")["ap"] - reference
        mean, low, high = paired_interval(diff)
        print(f"| {name} | {part['ap'].mean():.3f} ± {part['ap'].std():.3f} | {part['power'].mean():.2f} | "
              f"{part['fdp'].mean():.3f} | {part['false_pair_rate_05'].mean():.3f} | "
              f"{mean:+.3f} ({low:+.3f}, {high:+.3f}) |")


if __name__ == "__main__":
    main()
