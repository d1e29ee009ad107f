"""Calibration (Fig. 5) and permutation-method comparison (Fig. 2) of the NN permutation tests.

Runs the in-process NN permutation test (:func:`ginn.studies.simulation_study`) on simulated
datasets and prints:

* null simulations (Eq. 3), Perm I: the false positive rate of p_perm <= t for nominal levels t (the
  calibration curve), a KS test of the randomised p-values against U(0, 1), and the maxT
  family-wise error over datasets with its 95% Clopper-Pearson interval;
* complex simulations (Eq. 1), per S/N and method (Perm I, T, R): power and specificity of
  p_perm <= 0.05 and p_maxt <= 0.05 (the paper's Fig. 2a uses maxT).

Defaults are the paper's sizes (20 datasets, 50 members, 50 permutations, 20 SNPs per gene, 80k
samples): days on a CPU, so pass smaller values, e.g.

    python benchmarks/bench_calibration.py --n-samples 2000 --snps-per-gene 2 --members 2 --main-members 4 \\
        --predictor-hidden 20 --permutations 39 --datasets 20 --snr 1.0 --threads 1

and ``--device cuda`` where a GPU is available.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import pandas as pd
import torch

from ginn.studies import NNPermutationSettings, calibration_summary, decision_table, simulation_study
from ginn.train import TrainSettings

LEVELS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=20, help="Simulated datasets per setting.")
    parser.add_argument("--n-samples", type=int, default=80_000)
    parser.add_argument("--snps-per-gene", type=int, default=20)
    parser.add_argument("--snr", type=float, nargs="+", default=[1.0, 0.5, 0.1], help="S/N values of the study.")
    parser.add_argument("--permutations", type=int, default=50, help="B permuted datasets per test.")
    parser.add_argument("--members", type=int, default=50, help="Interaction-NN members per ensemble.")
    parser.add_argument("--main-members", type=int, default=10, help="Main-effect NN members (null model).")
    parser.add_argument("--predictor-hidden", type=int, default=100)
    parser.add_argument("--main-gene-layer", choices=["mlp", "linear"], default="linear")
    parser.add_argument("--l1", type=float, default=1e-3, help="L1 strength of gene and predictor weights.")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (1 is fastest for small networks on shared cores).")
    parser.add_argument("--part", choices=["both", "null", "complex"], default="both")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def calibration_report(results: pd.DataFrame, permutations: int) -> None:
    p = results["global_p_perm"].to_numpy()
    print("nominal  " + "  ".join(f"{t:>6g}" for t in LEVELS))
    print("FPR      " + "  ".join(f"{(p <= t).mean():6.3f}" for t in LEVELS))
    s = calibration_summary(results, permutations)
    print(f"KS vs U(0,1) of randomised p-values ({s['n_pvalues']} pairs): D = {s['ks_statistic']:.4f}, "
          f"p = {s['ks_pvalue_independent']:.3g} as if independent; ICC {s['icc']:.2f}, design effect "
          f"{s['design_effect']:.1f}, p = {s['ks_pvalue']:.3g} at n_eff {s['n_effective']}")
    print(f"mean p per dataset vs its null mean: t-test p = {s['mean_p_ttest_pvalue']:.3g}; "
          f"means {np.round(s['dataset_mean_p'], 2).tolist()}")
    low, high = s["family_error_ci"]
    print(f"maxT family-wise error at 0.05: {s['family_errors']}/{s['n_datasets']} = {s['family_error_rate']:.3f} "
          f"(95% CI {low:.3f}-{high:.3f})")


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = NNPermutationSettings(members=args.members, main_members=args.main_members,
                                     predictor_hidden=args.predictor_hidden, main_gene_layer=args.main_gene_layer,
                                     l1_gene=args.l1, l1_predictor=args.l1)

    def train_settings() -> TrainSettings:
        return TrainSettings(lr=args.lr, batch_size=args.batch_size, patience=args.patience, device=args.device,
                             progress=False)

    common = dict(datasets=args.datasets, n_samples=args.n_samples, snps_per_gene=args.snps_per_gene,
                  permutations=args.permutations, settings=settings, seed=args.seed)
    print(f"settings: {common}")
    with tempfile.TemporaryDirectory() as folder:
        for snr in args.snr:
            if args.part in ("both", "null"):
                start = time.perf_counter()
                null = simulation_study(folder, model="null", kinds=["perm-I"], snr=snr,
                                        train_settings=train_settings(), **common)
                print(f"\n== null simulations, S/N {snr}, Perm I ({time.perf_counter() - start:.0f} s)")
                calibration_report(null, args.permutations)
            if args.part in ("both", "complex"):
                start = time.perf_counter()
                complex_ = simulation_study(folder, model="complex", kinds=["perm-I", "perm-T", "perm-R"],
                                            snr=snr, train_settings=train_settings(), **common)
                print(f"\n== complex simulations, S/N {snr} ({time.perf_counter() - start:.0f} s)")
                print(decision_table(complex_).to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    main()
