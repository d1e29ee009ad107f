"""Replication power and calibration of `ginn replicate` (the paper's Eq. 5) over simulated cohorts.

Per seed: one complex-interaction model (Eq. 1) gives a discovery cohort and an independent
replication cohort; an interaction ensemble is trained and scored on the discovery cohort, and
every gene pair is tested in the replication cohort. Prints, pooled over seeds, the share of the
planted pairs among the NN's top 6 ("discovered") that replicate at one-sided p < 0.05, the same
share for all null pairs (should be near 0.05) with 95% Clopper-Pearson intervals, and timings.

    python benchmarks/bench_replicate.py --seeds 1,2,3 --n-discovery 8000 --n-replication 5000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _replicate_data import split_simulation  # noqa: E402  (test-data helper shared with the tests)

from ginn.genotypes import genotype_input  # noqa: E402
from ginn.replicate import run_replicate  # noqa: E402
from ginn.score import run_score  # noqa: E402
from ginn.train import TrainSettings, run_train  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1,2,3", help="Comma-separated simulation seeds.")
    parser.add_argument("--n-discovery", type=int, default=8000)
    parser.add_argument("--n-replication", type=int, default=5000)
    parser.add_argument("--snps-per-gene", type=int, default=10)
    parser.add_argument("--snr", type=float, default=2.0)
    parser.add_argument("--members", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=25)
    return parser.parse_args()


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    low = stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
    high = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return low, high


def one_seed(seed: int, args: argparse.Namespace, root: Path) -> tuple[pd.DataFrame, dict[str, float]]:
    timings = {}
    start = time.perf_counter()
    cohorts = split_simulation(root, args.n_discovery, args.n_replication, seed=seed, n_genes=10,
                               snps_per_gene=args.snps_per_gene, snr=args.snr)
    settings = TrainSettings(seed=seed, progress=False, max_epochs=args.max_epochs, batch_size=1000, patience=4,
                             lr=0.01)
    run_train(cohorts.data, root / "models", members=args.members, predictor_hidden=32, seed=seed, settings=settings)
    timings["train_s"] = time.perf_counter() - start
    start = time.perf_counter()
    scores = run_score(cohorts.data, root / "models", root / "scores.tsv")
    ranked = scores.sort_values("score", ascending=False).assign(q_pair=np.nan, called=False)
    ranked[["gene_a", "gene_b", "score", "q_pair", "called"]].to_csv(root / "results.tsv", sep="\t",
                                                                          index=False)
    timings["score_s"] = time.perf_counter() - start
    start = time.perf_counter()
    table = run_replicate(cohorts.data, root / "models", root / "results.tsv", genotype_input(bfile=cohorts.repl), cohorts.pheno, "y",
                          root / "repl.tsv", top=45, seed=seed)
    timings["replicate_s"] = time.perf_counter() - start
    merged = table.merge(cohorts.truth, on=["gene_a", "gene_b"])
    merged["discovered"] = merged.index < 6
    return merged.assign(seed=seed), timings


def main() -> None:
    args = parse_args()
    tables, timings = [], []
    for seed in [int(s) for s in args.seeds.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            table, timing = one_seed(seed, args, Path(tmp))
        tables.append(table)
        timings.append(timing)
        planted = table[table["interacting"] & table["discovered"]]
        print(f"seed {seed}: discovered planted {len(planted)}, replicated {int((planted.p_one_sided < 0.05).sum())}; "
              f"null replicated {int((table[~table.interacting].p_one_sided < 0.05).sum())} of "
              f"{int((~table.interacting).sum())}; " + ", ".join(f"{k} {v:.1f}" for k, v in timing.items()))
    pooled = pd.concat(tables)
    for label, rows in (("discovered planted pairs", pooled[pooled.interacting & pooled.discovered]),
                        ("all planted pairs", pooled[pooled.interacting]),
                        ("null pairs", pooled[~pooled.interacting])):
        k, n = int((rows.p_one_sided < 0.05).sum()), len(rows)
        low, high = clopper_pearson(k, n)
        print(f"{label}: replicate at one-sided p < 0.05 in {k}/{n} = {k / max(n, 1):.3f} (95% CI {low:.3f}-{high:.3f})")


if __name__ == "__main__":
    main()
