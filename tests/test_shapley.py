"""Shapley interaction estimators: exact = independent exact computations, Monte-Carlo unbiased."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from shapiq import ExactComputer

from ginn import _coalitions, shapley
from ginn.shapley import (ExactInteractions, MonteCarloInteractions, PredictorGame, ShapleyValues, all_pairs,
                          ensemble_summary, singletons)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_game(n_genes: int, n_networks: int = 2, hidden: int = 8, n_rows: int = 4, seed: int = 0):
    """Random M-H-1 predictors and gene values; the baseline is the gene mean over the rows."""
    gen = torch.Generator().manual_seed(seed)
    W1 = torch.randn(n_networks, hidden, n_genes, generator=gen, dtype=torch.float64)
    b1 = torch.randn(n_networks, hidden, generator=gen, dtype=torch.float64) * 0.5
    w2 = torch.randn(n_networks, hidden, generator=gen, dtype=torch.float64)
    b2 = torch.randn(n_networks, generator=gen, dtype=torch.float64)
    values = torch.randn(n_networks, n_rows, n_genes, generator=gen, dtype=torch.float64)
    return PredictorGame(W1, b1, w2, b2, values.mean(dim=1)), values


def numpy_predictor(game: PredictorGame, k: int):
    """f_k(z) = relu(W1 z + b1)·w2 + b2 written from the weights (independent of the estimators)."""
    W1, b1, w2, b2 = (t.numpy() for t in (game.W1[k], game.b1[k], game.w2[k], game.b2[k]))
    return lambda z: np.maximum(z @ W1.T + b1, 0.0) @ w2 + b2


def masked(x: np.ndarray, baseline: np.ndarray, coalitions: np.ndarray) -> np.ndarray:
    return np.where(coalitions, x, baseline)


def brute_force_index(f, x, baseline, subset) -> float:
    """SII of ``subset`` from its definition: sum over S ⊆ F∖U of s!(M−s−q)!/(M−q+1)! times the
    discrete derivative sum_{L ⊆ U} (−1)^{q−|L|} f(S ∪ L), one coalition at a time."""
    m, q = len(x), len(subset)
    rest = [g for g in range(m) if g not in subset]
    total = 0.0
    for size in range(len(rest) + 1):
        weight = math.factorial(size) * math.factorial(m - size - q) / math.factorial(m - q + 1)
        for s in itertools.combinations(rest, size):
            for r in range(q + 1):
                for part in itertools.combinations(subset, r):
                    mask = np.zeros(m, bool)
                    mask[list(s) + list(part)] = True
                    total += weight * (-1) ** (q - r) * f(masked(x, baseline, mask))
    return total


@pytest.mark.parametrize("n_genes", [4, 7, 10])
def test_exact_pairs_and_shapley_values_equal_shapiq(n_genes):
    game, values = random_game(n_genes, seed=n_genes)
    # Small blocks so several high-bit blocks (and their coefficient rows) are exercised.
    exact = ExactInteractions(n_genes, singletons(n_genes) + all_pairs(n_genes), block_bits=3)
    result = exact.scores(game, values, keep_local=True)
    pair_cols, single_cols = result.columns(all_pairs(n_genes)), result.columns(singletons(n_genes))
    for k, n in [(0, 0), (1, 3)]:
        f = numpy_predictor(game, k)
        x, c = values[k, n].numpy(), game.baseline[k].numpy()
        computer = ExactComputer(lambda coalitions: f(masked(x, c, coalitions.astype(bool))), n_players=n_genes)
        sii, sv = computer("SII", order=2), computer("SV", order=1)
        expected_pairs = [sii.values[sii.interaction_lookup[p]] for p in all_pairs(n_genes)]
        expected_sv = [sv.values[sv.interaction_lookup[(i,)]] for i in range(n_genes)]
        # float64 throughout; 1e-6 is the required agreement, the observed one is ~1e-14.
        np.testing.assert_allclose(result.local[k, n, pair_cols], expected_pairs, atol=1e-6, rtol=0)
        np.testing.assert_allclose(result.local[k, n, single_cols], expected_sv, atol=1e-6, rtol=0)
        # Efficiency: Shapley values add up to f(x) − f(baseline).
        assert result.local[k, n, single_cols].sum() == pytest.approx(f(x) - f(c), abs=1e-9)
    # Global score (Eq. 11) is the mean of |local| over individuals.
    np.testing.assert_allclose(result.score, np.abs(result.local).mean(axis=1), rtol=1e-12)
    assert np.all(result.se_mc == 0)


def test_exact_triples_equal_brute_force_and_shapiq():
    n_genes = 6
    game, values = random_game(n_genes, hidden=5, n_rows=2, seed=3)
    subsets = [(0, 1, 2), (1, 3, 5), (0, 4), (2,)]
    result = ExactInteractions(n_genes, subsets, block_bits=4).scores(game, values, keep_local=True)
    f = numpy_predictor(game, 1)
    x, c = values[1, 1].numpy(), game.baseline[1].numpy()
    brute = [brute_force_index(f, x, c, u) for u in subsets]
    np.testing.assert_allclose(result.local[1, 1], brute, atol=1e-6, rtol=0)
    sii = ExactComputer(lambda coalitions: f(masked(x, c, coalitions.astype(bool))), n_players=n_genes)("SII", order=3)
    np.testing.assert_allclose(result.local[1, 1, :2], [sii.values[sii.interaction_lookup[u]] for u in subsets[:2]],
                               atol=1e-6, rtol=0)


def test_main_effect_predictor_has_no_interactions():
    """H = 0 (Eq. 13): f = w·g + b, so every SII is 0 and phi_i = w_i (g_i − c_i)."""
    gen = torch.Generator().manual_seed(1)
    w, b = torch.randn(2, 5, generator=gen), torch.randn(2, generator=gen)
    values = torch.randn(2, 6, 5, generator=gen)
    game = PredictorGame.from_weights({"w": w, "b": b}, values.mean(dim=1))
    result = ExactInteractions(5, singletons(5) + all_pairs(5)).scores(game, values, keep_local=True)
    assert np.abs(result.local[:, :, result.columns(all_pairs(5))]).max() < 1e-9
    expected = (w[:, None, :] * (values - values.mean(dim=1, keepdim=True))).double().numpy()
    np.testing.assert_allclose(result.local[:, :, result.columns(singletons(5))], expected, atol=1e-9)


# ---- the C kernel of exact enumeration (ginn._coalitions) ---------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n_genes, hidden, low_bits", [(1, 1, 1), (2, 3, 2), (3, 7, 2), (5, 17, 5), (8, 100, 8),
                                                       (10, 100, 10), (11, 33, 7), (12, 5, 12), (12, 64, 4)])
def test_coalition_kernel_equals_the_predictor_on_every_coalition(dtype, n_genes, hidden, low_bits):
    """values() of every block against f − b2 on masked inputs (PredictorGame.value, float64), for
    H that fill no whole vector and blocks of 1 to 256 coalitions."""
    game, values = random_game(n_genes, n_networks=1, hidden=hidden, n_rows=3, seed=n_genes + hidden)
    members = ((torch.arange(1 << n_genes)[:, None] >> torch.arange(n_genes)) & 1).bool()
    expected = (game.value(values, members) - game.b2[:, None, None])[0].numpy()        # (N, 2^M)
    # rounding error bound: every partial sum is at most sum_u |w2| (|base| + sum_i |offset_i|)
    scale = (game.w2[0].abs() * (game.base[0].abs() + game.offsets(0, values[0]).abs().sum(1))).sum(1).max()
    in_dtype = PredictorGame(game.W1, game.b1, game.w2, game.b2, game.baseline, dtype)
    centred = (values[0].to(dtype) - in_dtype.baseline[0]).numpy()
    weights = in_dtype.W1[0].T.contiguous().numpy()
    out = np.empty((3, 1 << low_bits), centred.dtype)
    for block in range(1 << (n_genes - low_bits)):
        _coalitions.values(centred, weights, in_dtype.base[0].numpy(), in_dtype.w2[0].numpy(), out, block, low_bits)
        np.testing.assert_allclose(out, expected[:, block << low_bits: (block + 1) << low_bits], rtol=0,
                                   atol=8 * torch.finfo(dtype).eps * float(scale))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exact_scores_in_c_equal_the_torch_path(monkeypatch, dtype):
    game, values = random_game(9, n_networks=2, hidden=13, n_rows=5, seed=9)
    game = PredictorGame(game.W1, game.b1, game.w2, game.b2, game.baseline, dtype)
    subsets = singletons(9) + all_pairs(9) + [(0, 4, 8), (1, 2, 7)]
    in_c = ExactInteractions(9, subsets, block_bits=5).scores(game, values, keep_local=True)
    monkeypatch.setattr(shapley, "_coalitions", None)
    with pytest.warns(RuntimeWarning, match="not built"):
        in_torch = ExactInteractions(9, subsets, block_bits=5).scores(game, values, keep_local=True)
    scale = np.abs(in_torch.local).max()
    np.testing.assert_allclose(in_c.local, in_torch.local, rtol=0, atol=100 * torch.finfo(dtype).eps * scale)


_X, _WEIGHTS, _VECTOR, _OUT = np.zeros((2, 3)), np.zeros((3, 5)), np.zeros(5), np.zeros((2, 8))
_BAD_BUFFERS = {  # arguments of values() with one thing wrong; (_X, _WEIGHTS, _VECTOR, _VECTOR, _OUT, 0, 3) is right
    "dtype": (_X.astype(np.float32), _WEIGHTS, _VECTOR, _VECTOR, _OUT, 0, 3),
    "integers": tuple(a.astype(np.int64) for a in (_X, _WEIGHTS, _VECTOR, _VECTOR, _OUT)) + (0, 3),
    "hidden units": (_X, _WEIGHTS, np.zeros(4), _VECTOR, _OUT, 0, 3),
    "rows of out": (_X, _WEIGHTS, _VECTOR, _VECTOR, np.zeros((3, 8)), 0, 3),
    "coalitions of out": (_X, _WEIGHTS, _VECTOR, _VECTOR, np.zeros((2, 4)), 0, 3),
    "block": (_X, _WEIGHTS, _VECTOR, _VECTOR, np.zeros((2, 4)), 2, 2),
    "low bits": (_X, _WEIGHTS, _VECTOR, _VECTOR, _OUT, 0, 4),
    "not contiguous": (np.zeros((2, 6))[:, ::2], _WEIGHTS, _VECTOR, _VECTOR, _OUT, 0, 3),
    "read-only out": (_X, _WEIGHTS, _VECTOR, _VECTOR, np.broadcast_to(0.0, (2, 8)), 0, 3),
}


@pytest.mark.parametrize("wrong", sorted(_BAD_BUFFERS))
def test_coalition_kernel_rejects_mismatched_buffers(wrong):
    _coalitions.values(_X, _WEIGHTS, _VECTOR, _VECTOR, _OUT, 0, 3)
    with pytest.raises(ValueError):
        _coalitions.values(*_BAD_BUFFERS[wrong])


# ---- Monte-Carlo ------------------------------------------------------------------------------

M_MC = 12


@pytest.fixture(scope="module")
def game12():
    game, values = random_game(M_MC, n_networks=2, hidden=16, n_rows=8, seed=12)
    exact = ExactInteractions(M_MC, singletons(M_MC) + all_pairs(M_MC)).scores(game, values, keep_local=True)
    return game, values, exact


def test_monte_carlo_is_unbiased_within_four_standard_errors(game12):
    game, values, exact = game12
    mc = MonteCarloInteractions(M_MC, n_samples=64, seed=5).scores(game, values, keep_local=True)
    truth = exact.local[:, :, exact.columns(mc.subsets)]
    # Where every sampled delta is identical (e.g. ReLU units that never switch) the s.e. is ~0 and
    # only float rounding (~1e-15) separates estimate and truth; 1e-9 absorbs that, nothing more.
    within = np.abs(mc.local - truth) <= 4 * mc.local_se + 1e-9
    # Local estimates (2 networks x 8 individuals x 78 indices): a 4-s.e. miss has probability
    # ~1e-4 for a normal mean and ~1e-3 for a t with 63 d.f.; >= 99% within leaves room for skew.
    assert within.mean() >= 0.99
    assert within[:, :, M_MC:].mean() >= 0.99                   # the pairs alone
    # The signed mean over individuals (unbiased, unlike the |.| score) with its own s.e.
    mean_truth = exact.mean[:, exact.columns(mc.subsets)]
    assert (np.abs(mc.mean - mean_truth) <= 4 * mc.se_mc + 1e-9).mean() >= 0.99


def test_monte_carlo_triples_are_unbiased(game12):
    game, values, _ = game12
    triples = [(0, 1, 2), (3, 7, 11), (2, 5, 9), (1, 4, 10), (6, 8, 9)]
    exact = ExactInteractions(M_MC, triples).scores(game, values, keep_local=True)
    # budget=1 forces one row and one triple per chunk through the chunking code.
    for budget in (1, 1 << 20):
        # 256 samples put the median |SII| at ~3 s.e., so a sign or weight error could not pass.
        mc = MonteCarloInteractions(M_MC, n_samples=256, seed=4, pairs=False, triples=triples,
                                    budget=budget).scores(game, values, keep_local=True)
        cols = mc.columns(triples)
        # 80 local estimates; each misses 4 s.e. with probability ~1e-3, so one miss is already rare.
        within = np.abs(mc.local[:, :, cols] - exact.local) <= 4 * mc.local_se[:, :, cols] + 1e-9
        assert within.mean() >= 0.98


def test_monte_carlo_error_shrinks_as_one_over_root_samples(game12):
    game, values, exact = game12
    sample_sizes = np.array([4, 16, 64, 128])
    rmse = []
    for t in sample_sizes:
        mc = MonteCarloInteractions(M_MC, n_samples=int(t), seed=int(t)).scores(game, values, keep_local=True)
        pairs = mc.columns(all_pairs(M_MC))
        error = mc.local[:, :, pairs] - exact.local[:, :, exact.columns(all_pairs(M_MC))]
        rmse.append(np.sqrt(np.mean(error ** 2)))
    slope = np.polyfit(np.log(sample_sizes), np.log(rmse), 1)[0]
    # RMSE over 1,056 local estimates: each point is within a few % of its expectation, which moves
    # the slope fitted over a 32-fold range by < 0.04; 0.1 also allows the mild non-normality at 4.
    assert slope == pytest.approx(-0.5, abs=0.1)


def test_absolute_score_bias_is_bounded_and_shrinks(game12):
    """E|estimate| >= |SII|: the Eq. 11 score is biased upwards, by at most the local s.e."""
    game, values, exact = game12
    pairs = all_pairs(M_MC)
    truth = exact.score[:, exact.columns(pairs)]
    bias, bound = [], []
    for t in (4, 64):
        # Average the score over 3 seeds to see the bias through the sampling noise.
        runs = [MonteCarloInteractions(M_MC, n_samples=t, seed=seed).scores(game, values) for seed in range(3)]
        bias.append(np.mean([r.score[:, r.columns(pairs)] - truth for r in runs]))
        bound.append(np.mean([r.bias_bound[:, r.columns(pairs)] for r in runs]))
    assert 0 < bias[0] <= bound[0]
    assert abs(bias[1]) <= bound[1] < bound[0] / 3     # bound shrinks as 1/sqrt(T): 4x from 4 to 64
    assert abs(bias[1]) < bias[0] / 3


def test_monte_carlo_shapley_values_and_determinism(game12):
    game, values, exact = game12
    single = singletons(M_MC)
    mc = ShapleyValues(M_MC, n_samples=32, seed=2).scores(game, values, keep_local=True)
    truth = exact.local[:, :, exact.columns(single)]
    assert (np.abs(mc.local - truth) <= 4 * mc.local_se + 1e-9).mean() >= 0.99
    exact_sv = ShapleyValues(M_MC).scores(game, values, keep_local=True)
    np.testing.assert_allclose(exact_sv.local, truth, atol=1e-9)
    # Same seed, different memory budget (so different row batches) -> the same estimates.
    a = MonteCarloInteractions(M_MC, n_samples=8, seed=9).scores(game, values, keep_local=True)
    b = MonteCarloInteractions(M_MC, n_samples=8, seed=9, budget=1).scores(game, values, keep_local=True)
    np.testing.assert_allclose(a.local, b.local, atol=1e-12)
    c = MonteCarloInteractions(M_MC, n_samples=8, seed=10).scores(game, values, keep_local=True)
    assert not np.allclose(a.local, c.local)


def test_ensemble_summary_averages_members():
    game, values = random_game(5, n_networks=3, seed=4)
    result = ExactInteractions(5).scores(game, values)
    summary = ensemble_summary(result, [0, 2])
    np.testing.assert_allclose(summary.score, result.score[[0, 2]].mean(axis=0))
    np.testing.assert_allclose(summary.se, np.abs(result.score[0] - result.score[2]) / 2)
    assert np.isnan(ensemble_summary(result, [1]).se).all()
    with pytest.raises(ValueError, match="Monte-Carlo"):
        ExactInteractions(21)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_networks_spread_over_threads_give_the_same_scores(dtype):
    """With several torch threads each network runs on its own thread; nothing may change."""
    game, values = random_game(6, n_networks=5, n_rows=7, seed=3)
    game = PredictorGame(game.W1, game.b1, game.w2, game.b2, game.baseline, dtype)
    estimators = (ExactInteractions(6), MonteCarloInteractions(6, n_samples=4, seed=2))
    one = [e.scores(game, values, keep_local=True) for e in estimators]
    torch.set_num_threads(2)          # the one_torch_thread fixture restores the count
    two = [e.scores(game, values, keep_local=True) for e in estimators]
    assert torch.get_num_threads() == 2
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a.local, b.local)
        np.testing.assert_array_equal(a.score, b.score)
