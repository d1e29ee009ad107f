"""Pair-scores per second of the Shapley interaction estimators against the naive reference loop.

    python benchmarks/bench_shapley.py [--threads 1] [--rows 32] [--naive-calls 2000]

The naive reference loops over individuals, pairs and coalitions and calls the network's predictor
four times per pair and coalition (f(S ∪ ij), f(S ∪ i), f(S ∪ j), f(S)) on masked gene values; it is
timed on ``--naive-calls`` calls and extrapolated. Units:

* exact: a pair-score is one individual's exact SII of one pair (naive: 4·2^(M−2) calls);
* Monte-Carlo: a pair-sample is one random coalition's δ_ij for one individual (naive: 4 calls). Our
  coalitions are drawn like the naive ones (SII weights), one coalition shared by all pairs, so the
  samples have the same variance and the rates compare at equal precision; the last column checks
  that by the measured variance ratio (naive single-draw variance / ours per sample, ~1).

Networks are M-H-1 predictors at the paper's sizes (H = 100 for 10 genes, 200 for 65) with
nn.Linear-style random weights and standard-normal gene values; one network (rates are per network).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from bench_trainer import matmul_gflops
from ginn.model import GeneNetworkEnsemble, make_config
from ginn.shapley import ExactInteractions, MonteCarloInteractions, PredictorGame, all_pairs


def network(n_genes: int, hidden: int, seed: int = 0) -> GeneNetworkEnsemble:
    return GeneNetworkEnsemble(make_config([1] * n_genes, 1, predictor_hidden=hidden), seeds=[seed]).eval()


def game_of(model: GeneNetworkEnsemble, values: torch.Tensor) -> PredictorGame:
    return PredictorGame.from_weights(model.predictor_weights(), values.mean(dim=1), dtype=torch.float32)


@torch.no_grad()
def naive_seconds_per_call(model: GeneNetworkEnsemble, values: torch.Tensor, calls: int, seed: int = 0) -> float:
    """The reference loop body: per individual, pair and random coalition, four predictor calls."""
    rng = np.random.default_rng(seed)
    baseline = values.mean(dim=1)[0]
    m = values.shape[2]
    pairs = all_pairs(m)
    start = time.perf_counter()
    done = 0
    while done < calls:
        x = values[0, rng.integers(values.shape[1])]
        i, j = pairs[rng.integers(len(pairs))]
        present = torch.from_numpy(rng.random(m) < rng.random())      # SII-distributed coalition
        present[[i, j]] = False
        delta = 0.0
        for add, sign in (((i, j), 1.0), ((i,), -1.0), ((j,), -1.0), ((), 1.0)):
            mask = present.clone()
            mask[list(add)] = True
            g = torch.where(mask, x, baseline).reshape(1, 1, m)
            delta += sign * float(model.predictor(g)[0, 0])
        done += 4
    return (time.perf_counter() - start) / done


def naive_sample_variance(game: PredictorGame, values: torch.Tensor, n_draws: int, seed: int = 0) -> float:
    """Mean over individuals and pairs of Var δ_ij(S), S drawn by the SII weights (|S| uniform, then S)."""
    rng = np.random.default_rng(seed)
    m = game.n_genes
    variances = []
    for i, j in all_pairs(m)[:: max(1, len(all_pairs(m)) // 40)]:
        keys = rng.random((n_draws, m))
        keys[:, [i, j]] = 2.0                                    # never among the first |S|
        sizes = rng.integers(0, m - 1, n_draws)
        coalition = np.argsort(np.argsort(keys, axis=1), axis=1) < sizes[:, None]
        masks = []
        for add in ((i, j), (i,), (j,), ()):
            mask = coalition.copy()
            mask[:, list(add)] = True
            masks.append(mask)
        f = game.value(values, torch.from_numpy(np.concatenate(masks)))[0]          # (N, 4 draws)
        both, only_i, only_j, none = f.reshape(f.shape[0], 4, n_draws).unbind(1)
        variances.append((both - only_i - only_j + none).var(dim=1).mean().item())
    return float(np.mean(variances))


def timed(func, repeats: int = 5) -> tuple[float, object]:
    """Median wall time of ``repeats`` calls (runs of a few ms are noisy on a shared machine)."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = func()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds)), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--rows", type=int, default=32, help="individuals per timing")
    parser.add_argument("--naive-calls", type=int, default=2000, help="predictor calls timed for the naive loop")
    parser.add_argument("--networks", type=int, default=1,
                        help="networks scored together by the exact estimator (one per thread)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    matmul = matmul_gflops()
    print(f"torch {torch.__version__}, {args.threads} thread(s), float32; dense float32 matmul {matmul:.1f} GFLOP/s; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'M':>3} {'H':>4} {'method':<28} {'ours /s':>12} {'naive /s':>12} {'speed-up':>9}")
    for m, hidden, samples in ((10, 100, 64), (65, 200, 16)):
        model = network(m, hidden)
        values = torch.randn(1, args.rows, m, generator=torch.Generator().manual_seed(m))
        game = game_of(model, values)
        per_call = naive_seconds_per_call(model, values, args.naive_calls)
        pairs = m * (m - 1) // 2
        if m <= 16:
            k = args.networks
            models = [network(m, hidden, seed) for seed in range(k)]
            batch = PredictorGame.from_weights({name: torch.cat([mod.predictor_weights()[name] for mod in models])
                                                for name in ("W1", "b1", "w2", "b2")},
                                               values.mean(dim=1).expand(k, m), dtype=torch.float32)
            seconds, _ = timed(lambda: ExactInteractions(m).scores(batch, values.expand(k, -1, -1)))
            ours, naive = k * args.rows * pairs / seconds, 1.0 / (4 * 2 ** (m - 2) * per_call)
            # the dense product the enumeration stands for: 2^M coalitions x (M x H first layer, H head, Q indices)
            gflops = k * args.rows * 2 ** m * (2 * m * hidden + 2 * hidden + 2 * pairs) / seconds / 1e9
            print(f"{m:>3} {hidden:>4} {'exact (pair-scores)':<28} {ours:>12.4g} {naive:>12.4g} {ours / naive:>8.0f}x"
                  f"   ({ours * 2 ** (m - 2):.3g} pair-coalition evaluations/s, {gflops:.1f} GFLOP/s dense-product "
                  f"equivalent = {100 * gflops / matmul:.0f}% of matmul, {k} networks)")
        else:
            print(f"{m:>3} {hidden:>4} {'exact':<28} {'2^65 coalitions: infeasible for both':>35}")
        rows = args.rows if m <= 16 else max(2, args.rows // 4)
        seconds, mc = timed(lambda: MonteCarloInteractions(m, samples, seed=1).scores(game, values[:, :rows],
                                                                                     keep_local=True))
        ours, naive = rows * pairs * samples / seconds, 1.0 / (4 * per_call)
        # Variance of one of our samples vs one naive coalition draw, same pairs and individuals.
        ours_var = float(np.mean((mc.local_se[0][:, mc.columns(all_pairs(m))] ** 2) * samples))
        ratio = naive_sample_variance(game, values[:, :rows], n_draws=64) / ours_var
        print(f"{m:>3} {hidden:>4} {'Monte-Carlo (pair-samples)':<28} {ours:>12.4g} {naive:>12.4g} "
              f"{ours / naive:>8.0f}x   (variance ratio naive/ours {ratio:.2f})")


if __name__ == "__main__":
    main()
