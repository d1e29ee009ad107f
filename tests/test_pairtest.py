"""`ginn pairtest`: the robust Wald test against statsmodels, its calibration while other pairs interact
(known gene values, then the whole cross-fitted network procedure), FDR control and planted recovery."""

from __future__ import annotations

import json
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from ginn.cli import cli
from ginn.dataset import Dataset
from ginn.pairtest import _design_block, crossfit_folds, crossfit_masks, crossfit_pair_test, interaction_wald
from ginn.permtest import bh_qvalues, holm_pvalues
from ginn.simulate import simulate_dataset
from ginn.train import TrainSettings

PAIRS10 = list(combinations(range(10), 2))
# The paper's six interacting pairs of Eq. 1 (0-based) and their kinds.
TRUE_PAIRS = {(0, 1): "max", (6, 8): "max", (2, 4): "sqdiff", (3, 7): "sqdiff", (5, 6): "product", (7, 9): "product"}


def _phenotype(g: np.ndarray, rng: np.random.Generator, strength: float = 0.25) -> np.ndarray:
    """Eq. 1-like phenotype from known gene values: cubic-ish main effects, the six true pairs with
    their own shapes (max, squared difference, product), and noise whose variance grows with g_1^2
    (heteroscedastic, as omitted interactions make it)."""
    y = g @ rng.standard_normal(g.shape[1]) * 0.3 + 0.1 * np.tanh(g[:, 3]) ** 3
    for (a, b), kind in TRUE_PAIRS.items():
        term = {"max": np.maximum(g[:, a], g[:, b]), "sqdiff": (g[:, a] - g[:, b]) ** 2,
                "product": g[:, a] * g[:, b]}[kind]
        y += strength * rng.choice([-1.0, 1.0]) * (term - term.mean()) / term.std()
    return y + rng.standard_normal(len(y)) * (1.0 + 0.5 * g[:, 1] ** 2) ** 0.5


def test_wald_statistics_equal_statsmodels_hc3():
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    n, folds = 1500, 3
    g = rng.standard_normal((n, 5))
    fold = crossfit_folds(n, folds, seed=1)
    y = g[:, 0] * g[:, 1] + g[:, 2] + rng.standard_normal(n) * (1 + np.abs(g[:, 3]))
    pairs = list(combinations(range(5), 2))
    z, p = interaction_wald(g, y, fold, pairs)
    design = _design_block(g, fold, folds, np.array(pairs))
    fit = sm.OLS(y, design).fit(cov_type="HC3")
    expected = fit.tvalues[-len(pairs):]
    # Same estimator in float64 (block-accumulated normal equations vs statsmodels' pinv): 1e-8.
    np.testing.assert_allclose(z, expected, rtol=1e-8)
    np.testing.assert_allclose(p, 2 * stats.norm.sf(np.abs(expected)), rtol=1e-7)
    assert abs(z[0]) > 10      # the planted product g0 g1


def test_a_gene_without_signal_gives_p_one_not_nan():
    rng = np.random.default_rng(1)
    g = rng.standard_normal((600, 4))
    g[:, 2] = 0.0              # a gene the networks ignored
    z, p = interaction_wald(g, rng.standard_normal(600), crossfit_folds(600, 3, 0), list(combinations(range(4), 2)))
    touches = [2 in pair for pair in combinations(range(4), 2)]
    assert np.all(z[touches] == 0) and np.all(p[touches] == 1) and np.isfinite(p).all()


def test_p_values_never_underflow_to_zero():
    rng = np.random.default_rng(5)
    g = rng.standard_normal((4000, 3))
    y = 5 * g[:, 0] * g[:, 1] + 0.1 * rng.standard_normal(4000)      # |z| in the hundreds
    z, p = interaction_wald(g, y, crossfit_folds(4000, 2, 0), [(0, 1), (0, 2), (1, 2)])
    assert abs(z[0]) > 50 and p[0] > 0 and bh_qvalues(p)[0] > 0


@pytest.mark.slow
def test_calibrated_for_false_pairs_while_true_pairs_interact():
    """Known gene values, the six true pairs of the paper's complex model present with their own
    shapes, heteroscedastic noise, non-Gaussian genes for half the datasets: the 39 false pairs'
    p-values must be U(0,1).

    120 datasets x 39 pairs = 4,680 p-values at n = 4,000 (HC3 is conservative in small samples:
    0.036 at n = 1,500, 0.048 at 4,000). Pairs of one dataset share residuals, so the rate of
    p <= 0.05 is checked with a per-dataset standard error (~0.0036 here; tolerance 0.012 > 3 SE),
    and uniformity with KS on one randomly chosen false pair per dataset (independent, n = 120; it
    guards the whole shape, the rate guards the tail)."""
    rng = np.random.default_rng(2)
    false = [i for i, pair in enumerate(PAIRS10) if pair not in TRUE_PAIRS]
    pooled, one_each, true_z = [], [], []
    for d in range(120):
        n = 4000
        g = rng.standard_normal((n, 10)) if d % 2 == 0 else rng.gamma(2.0, 1.0, (n, 10))
        g = (g - g.mean(0)) / g.std(0)
        y = _phenotype(g, rng)
        z, p = interaction_wald(g, y, crossfit_folds(n, 5, d), PAIRS10)
        pooled.append(p[false])
        one_each.append(p[false][rng.integers(len(false))])
        true_z.append(np.abs(z[[PAIRS10.index(pair) for pair in TRUE_PAIRS]]))
    rates = (np.array(pooled) <= 0.05).mean(axis=1)
    assert abs(rates.mean() - 0.05) < 0.012, rates.mean()
    assert stats.kstest(one_each, "uniform").pvalue > 0.001
    assert np.median(np.array(true_z)) > 3      # and the true pairs are found


def test_bh_calls_control_fdr_with_known_gene_values():
    """FDR of q <= 0.1 over 200 datasets with the six true pairs at a strength where some are missed:
    mean FDP <= 0.1 + 3 SE."""
    rng = np.random.default_rng(3)
    truth = np.array([pair in TRUE_PAIRS for pair in PAIRS10])
    fdp, power = [], []
    for d in range(200):
        g = rng.standard_normal((1200, 10))
        _, p = interaction_wald(g, _phenotype(g, rng, strength=0.12), crossfit_folds(1200, 5, d), PAIRS10)
        called = bh_qvalues(p) <= 0.1
        fdp.append((called & ~truth).sum() / max(1, called.sum()))
        power.append(called[truth].mean())
    fdp = np.array(fdp)
    assert fdp.mean() <= 0.1 + 3 * fdp.std(ddof=1) / np.sqrt(len(fdp)), fdp.mean()
    assert 0.2 < np.mean(power) < 1.0       # an alternative where calls are made and missed


def test_crossfit_masks_never_train_on_the_held_out_fold():
    fold = crossfit_folds(1000, 5, seed=3)
    assert np.bincount(fold).tolist() == [200] * 5
    train, val = crossfit_masks(fold, 5, 0.2, seed=3)
    for f in range(5):
        assert not (train[f] & (fold == f)).any() and not (val[f] & (fold == f)).any()
        assert not (train[f] & val[f]).any() and (train[f] | val[f]).sum() == 800
    assert np.array_equal(crossfit_folds(1000, 5, seed=3), fold)


FAST = dict(lr=0.01, batch_size=500, max_epochs=40, patience=5)


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairtest") / "DATA"
    simulate_dataset(folder, n_samples=3000, model="complex", snr=2.0, snps_per_gene=5, seed=4)
    return folder


def test_held_out_phenotypes_do_not_change_their_gene_values(small_dataset, tmp_path):
    """Cross-fitting: changing the phenotypes of fold 0 changes the networks of the other folds only,
    so fold 0's gene values are untouched up to the shared sign/scale alignment (gene values are
    standardised within the fold; |correlation| with the original stays 1)."""
    import shutil

    from ginn.pairtest import crossfit_gene_values

    data = Dataset.load(small_dataset)
    settings = TrainSettings(progress=False, **FAST)
    _, first, fold = crossfit_pair_test(data, members=1, seed=7, predictor_hidden=16, settings=settings)
    changed = tmp_path / "DATA"
    shutil.copytree(small_dataset, changed)
    target = np.load(changed / "target.npy")
    target[fold == 0] = np.random.default_rng(0).permutation(target[fold == 0])
    np.save(changed / "target.npy", target)
    _, second, _ = crossfit_pair_test(Dataset.load(changed), members=1, seed=7, predictor_hidden=16,
                                      settings=TrainSettings(progress=False, **FAST))
    values = [crossfit_gene_values(r.model, data, fold, 1)[fold == 0] for r in (first, second)]
    for gene in range(data.n_genes):
        if values[0][:, gene].std() > 0:
            assert abs(np.corrcoef(values[0][:, gene], values[1][:, gene])[0, 1]) > 1 - 1e-5


def test_command_writes_pairs_models_and_provenance_and_is_deterministic(small_dataset, tmp_path):
    argv = ["pairtest", "--data", str(small_dataset), "--folds", "3", "--members", "1", "--predictor-hidden", "16",
            "--lr", "0.01", "--batch-size", "500", "--max-epochs", "20", "--patience", "3", "--seed", "5"]
    outputs = []
    for name in ("A", "B"):
        result = CliRunner().invoke(cli, [*argv, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        outputs.append(tmp_path / name)
    for name in ("pairs.tsv", "ensemble.json", "ensemble.pt", "metrics.json", "provenance.json"):
        assert (outputs[0] / name).is_file(), name
    assert (outputs[0] / "pairs.tsv").read_bytes() == (outputs[1] / "pairs.tsv").read_bytes()
    table = pd.read_csv(outputs[0] / "pairs.tsv", sep="\t")
    assert list(table.columns) == ["gene_a", "gene_b", "z", "p_pair"] and len(table) == 45
    provenance = json.loads((outputs[0] / "provenance.json").read_text())
    assert provenance["params"]["folds"] == 3 and provenance["seed"] == 5
    networks = json.loads((outputs[0] / "ensemble.json").read_text())["networks"]
    assert [n["fold"] for n in networks] == [0, 1, 2]


@pytest.mark.parametrize("args, problem", [
    (["--folds", "1"], "--folds"),
    (["--members", "0"], "--members"),
    (["--val-fraction", "1.5"], "--val-fraction"),
    (["--folds", "5"], "too few samples per fold"),
])
def test_bad_settings_are_refused_before_training(tmp_path, args, problem):
    data = tmp_path / "DATA"
    simulate_dataset(data, n_samples=120, model="complex", snr=2.0, snps_per_gene=2, seed=4)   # 24 per fold
    result = CliRunner().invoke(cli, ["pairtest", "--data", str(data), *args, "--out", str(tmp_path / "P")])
    assert result.exit_code == 2 and problem in result.output, result.output
    assert not (tmp_path / "P").exists()


@pytest.mark.slow
def test_network_pair_test_is_calibrated_and_controls_fdr_on_simulated_cohorts(tmp_path):
    """The whole procedure (networks trained per fold, gene values from held-out folds, joint robust
    test) on 10 complex-model cohorts (Eq. 1, independent SNPs, n = 4,000, S/N 1): false pairs'
    p-values are uniform while the planted pairs interact, the calls' mean FDP stays <= 0.1 + 2 SE,
    and planted pairs are found.

    390 false-pair p-values: the rate of p <= 0.05 has SE ~0.011 for independent p-values (more with
    the within-dataset dependence), so 0.05 + 0.04 is > 3 SE; KS on one random false pair per dataset
    would have n = 10 only, so uniformity is checked on the pooled p-values against a lenient level."""
    rng = np.random.default_rng(0)
    pooled, fdp, power = [], [], []
    for seed in range(10):
        folder = tmp_path / f"d{seed}"
        truth = simulate_dataset(folder, n_samples=4000, model="complex", snr=1.0, snps_per_gene=5, seed=100 + seed)
        table, _, _ = crossfit_pair_test(Dataset.load(folder), members=1, seed=seed, predictor_hidden=32,
                                         settings=TrainSettings(progress=False, **FAST))
        table = table.merge(truth, on=["gene_a", "gene_b"])
        planted = table["interacting"].to_numpy(dtype=bool)
        pooled.extend(table.loc[~planted, "p_pair"])
        called = bh_qvalues(table["p_pair"]) <= 0.1
        fdp.append((called & ~planted).sum() / max(1, called.sum()))
        power.append(called[planted].mean())
        assert (holm_pvalues(table["p_pair"]) >= table["p_pair"]).all()
    pooled, fdp = np.array(pooled), np.array(fdp)
    print(f"false-pair rate at 0.05: {np.mean(pooled <= 0.05):.3f}; mean FDP {fdp.mean():.3f}; "
          f"power {np.mean(power):.2f}")
    assert np.mean(pooled <= 0.05) <= 0.09
    assert stats.kstest(pooled + rng.uniform(0, 1e-12, len(pooled)), "uniform").pvalue > 1e-3
    assert fdp.mean() <= 0.1 + 2 * fdp.std(ddof=1) / np.sqrt(len(fdp))
    assert np.mean(power) >= 0.3
