"""Which LD-pruning level should ginn use? Planted gene scores kept, and pair detection, per level.

For each seed: a complex-model cohort (Eq. 1, msprime genotypes of the packaged lipid genes), pruned
per gene with ``ginn prune``'s rule at each ``--keep-variance`` level (1 = no pruning). Per level:

* SNPs kept, and how much of each planted gene score g_i = sum_j alpha_ij x_ij the kept SNPs can
  still express (R^2 of g_i regressed on the gene's kept SNPs; the issue's measure);
* average precision of ginn's per-pair test (``ginn pairtest`` defaults) against the planted pairs,
  and the paired difference of each level to no pruning over seeds.

    python benchmarks/bench_pruning.py --seeds 6 --n-samples 20000 --levels 0.9,0.99,1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ginn.dataset import Dataset, write_dataset
from ginn.evaluate import average_precision
from ginn.pairtest import crossfit_pair_test
from ginn.plink import new_fam
from ginn.prune import ld_matrix, select_by_ld_score
from ginn.simulate import simulate_cohort, truth_table
from paired import paired_interval


def cohort(seed: int, n_samples: int, snps_per_gene: int):
    """The draws of ``simulate_dataset(model='complex', genotypes='msprime', snr=0.5)`` with this seed."""
    return simulate_cohort(n_samples=n_samples, model="complex", snr=0.5, snps_per_gene=snps_per_gene,
                           genotypes="msprime", seed=seed)


def kept_share(x: np.ndarray, alpha: np.ndarray, kept: np.ndarray) -> float:
    """R^2 of the planted gene score on the kept SNPs (least squares, centred)."""
    x = x.astype(np.float64) - x.mean(axis=0)
    score = x @ alpha
    coef, *_ = np.linalg.lstsq(x[:, kept], score, rcond=None)
    return 1.0 - np.sum((score - x[:, kept] @ coef) ** 2) / np.sum(score ** 2)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--n-samples", type=int, default=20_000)
    parser.add_argument("--snps-per-gene", type=int, default=20)
    parser.add_argument("--levels", default="0.9,0.99,1")
    parser.add_argument("--no-networks", action="store_true",
                        help="Only the planted gene scores kept (no pair tests): seconds instead of minutes.")
    args = parser.parse_args(argv)
    levels = [float(v) for v in args.levels.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(1, args.seeds + 1):
            simulated, phenotype, is_test = cohort(seed, args.n_samples, args.snps_per_gene)
            truth = truth_table(simulated.genes, phenotype.pairs)
            for level in levels:
                kept = [select_by_ld_score(ld_matrix(x), level)[0] for x in simulated.per_gene]
                shares = [kept_share(x, a, k) for x, a, k in zip(simulated.per_gene, phenotype.alphas, kept)]
                folder = Path(tmp) / f"s{seed}_{level}"
                folder.mkdir()
                columns = np.concatenate([np.flatnonzero(simulated.snps["gene"] == g)[k]
                                          for g, k in zip(simulated.genes, kept)])
                write_dataset(folder, simulated.matrix()[:, columns], phenotype.y, is_test, new_fam(args.n_samples),
                              simulated.snps.iloc[columns].reset_index(drop=True), simulated.genes, [len(k) for k in kept])
                started = time.perf_counter()
                ap = np.nan
                if not args.no_networks:
                    table, _, _ = crossfit_pair_test(Dataset.load(folder), seed=seed)
                    table = table.merge(truth, on=["gene_a", "gene_b"])
                    ap = average_precision(table["interacting"].to_numpy(bool), table["z"].abs().to_numpy())
                rows.append({"seed": seed, "keep_variance": level, "snps_kept": int(sum(len(k) for k in kept)),
                             "snps_total": int(sum(x.shape[1] for x in simulated.per_gene)),
                             "min_gene_score_r2": float(np.min(shares)), "mean_gene_score_r2": float(np.mean(shares)),
                             "ap": ap, "seconds": round(time.perf_counter() - started, 1)})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby("keep_variance")[["snps_kept", "min_gene_score_r2", "mean_gene_score_r2", "ap"]].agg(["mean", "std"])
    print(summary.round(3).to_string())
    reference = table[table["keep_variance"] == max(levels)].set_index("seed")["ap"]
    print("\n| keep variance | SNPs kept | planted gene score R² on kept SNPs (min over genes) | AP | AP − AP(no pruning), 95% CI |")
    print("|---|---|---|---|---|")
    for level, part in table.groupby("keep_variance"):
        diff = part.set_index("seed")["ap"] - reference
        mean, low, high = paired_interval(diff)
        print(f"| {level:g} | {part['snps_kept'].mean():.0f} of {part['snps_total'].mean():.0f} | "
              f"{part['min_gene_score_r2'].mean():.2f} ± {part['min_gene_score_r2'].std():.2f} | "
              f"{part['ap'].mean():.3f} ± {part['ap'].std():.3f} | {mean:+.3f} ({low:+.3f}, "
              f"{high:+.3f}) |")


if __name__ == "__main__":
    main()
