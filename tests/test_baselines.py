"""Baselines: LR p-values against statsmodels, gene representations, recovery, seeds, bad inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ginn.baselines import gene_representations, lr_interaction_tests, run_baseline
from ginn.cli import cli
from ginn.dataset import Dataset
from ginn.permtest import RESULT_COLUMNS
from ginn.simulate import simulate_dataset


@pytest.fixture(scope="module")
def simple_data(tmp_path_factory):
    # One causal SNP per gene (causal_prop 0.05 of 20), so each gene's top SNP is also its interacting
    # SNP: the setting where the paper's top-SNP LR is the right model (Fig. 4).
    folder = tmp_path_factory.mktemp("simple")
    truth = simulate_dataset(folder, n_samples=3000, model="simple", snr=1.0, causal_prop=0.05, seed=3)
    return Dataset.load(folder), truth


def test_lr_pvalues_equal_statsmodels_ols(simple_data):
    import statsmodels.api as sm

    data, _ = simple_data
    for representation in ("topsnp", "pca"):
        g = gene_representations(data, representation)
        y = data.target.astype(np.float64)
        t, p = lr_interaction_tests(g, y)
        k = 0
        for i in range(data.n_genes):
            for j in range(i + 1, data.n_genes):
                fit = sm.OLS(y, sm.add_constant(np.column_stack([g[:, i], g[:, j], g[:, i] * g[:, j]]))).fit()
                # Same least-squares problem solved two ways: agreement to ~1e-9 relative is float64
                # round-off; 1e-6 leaves room for p-values near 1e-12 where the t tail is steep.
                assert t[k] == pytest.approx(fit.tvalues[3], rel=1e-6)
                assert p[k] == pytest.approx(fit.pvalues[3], rel=1e-6)
                k += 1


def test_representations_are_learnt_on_the_training_split(simple_data):
    from sklearn.decomposition import PCA

    data, _ = simple_data
    train = data.train_idx
    x = np.asarray(data.genotypes[:, data.gene_offsets[0]:data.gene_offsets[1]], dtype=np.float64)
    top = gene_representations(data, "topsnp")[:, 0]
    correlations = [abs(np.corrcoef(x[train, k], data.target[train])[0, 1]) for k in range(x.shape[1])]
    best = x[:, int(np.argmax(correlations))]
    assert abs(np.corrcoef(top, best)[0, 1]) == pytest.approx(1.0)
    assert top[train].std() == pytest.approx(1.0)
    pc = gene_representations(data, "pca")[:, 0]
    reference = PCA(n_components=1).fit(x[train]).transform(x)[:, 0]
    assert abs(np.corrcoef(pc, reference)[0, 1]) == pytest.approx(1.0)


def test_topsnp_lr_recovers_simple_interactions(tmp_path):
    # One SNP per gene, so the top SNP is the interacting SNP whatever its main effect. A true pair
    # holding a fraction v of var(y) has |t| ~ sqrt(n v / var(noise)); v >= 0.004 at n = 3000 and S/N 1
    # gives |t| >= 4.9, while the largest of 39 false |t| exceeds 4 with probability ~2e-3.
    truth = simulate_dataset(tmp_path, n_samples=3000, model="simple", snr=1.0, snps_per_gene=1, seed=3)
    data = Dataset.load(tmp_path)
    table = run_baseline(data, "topsnp-lr")
    simulation = data.meta["simulation"]
    strong = {(a, b) for (a, b, _), v in zip(simulation["pairs"], simulation["pair_variance"]) if v >= 0.004}
    assert len(strong) >= 3
    ranked = list(map(tuple, table[["gene_a", "gene_b"]].values))
    false_ranks = [r for r, pair in enumerate(ranked) if pair not in set(map(tuple, truth.loc[
        truth.interacting, ["gene_a", "gene_b"]].values))]
    assert max(ranked.index(pair) for pair in strong) < min(false_ranks)
    by_pair = table.set_index(["gene_a", "gene_b"])
    assert (by_pair.loc[sorted(strong), "p_pair_fwer"] < 1e-3).all() and by_pair.loc[sorted(strong), "called"].all()
    assert list(table.columns) == RESULT_COLUMNS and len(table) == 45
    assert table["score"].is_monotonic_decreasing


@pytest.mark.parametrize("method,perm", [("pca-lasso", "R"), ("topsnp-xgb", "T")])
def test_permutation_baselines_are_seeded(simple_data, method, perm):
    data, _ = simple_data
    settings = {"perm": perm, "permutations": 3, "seed": 7, "threads": 1, "shap_rows": 100, "xgb_trees": 20}
    first = run_baseline(data, method, **settings)
    again = run_baseline(data, method, **settings)
    pd.testing.assert_frame_equal(first, again)
    assert (first["n_permutations"] == 3).all()
    # With B = 3 permutations every p-value lies on the (1 + b) / 4 grid.
    assert np.allclose((first["global_p_perm"] * 4) % 1, 0) and first["global_p_perm"].min() >= 0.25
    assert first["p_pair"].isna().all() and not first["called"].any()   # no per-pair test: nothing called


def test_baselines_command_and_bad_inputs(simple_data, tmp_path):
    data, _ = simple_data
    out = tmp_path / "res.tsv"
    result = CliRunner().invoke(cli, ["baselines", "--data", str(data.path), "--method", "pca-lr", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == RESULT_COLUMNS and (tmp_path / "res.provenance.json").is_file()
    # permutations draw a progress bar on a terminal only, never into a log
    result = CliRunner().invoke(cli, ["-q", "baselines", "--data", str(data.path), "--method", "pca-lasso", "--perm", "T",
                                      "--permutations", "2", "--threads", "1", "--out", str(tmp_path / "perm.tsv")])
    assert result.exit_code == 0 and result.output == "", result.output
    for args, problem in [(["--method", "topsnp-lr", "--perm", "T", "--permutations", "5"], "analytic"),
                          (["--method", "topsnp-lasso", "--perm", "T"], "need both --perm"),
                          (["--method", "topsnp-xgb", "--data", str(tmp_path)], "not a ginn dataset folder")]:
        bad = tmp_path / "bad.tsv"
        argv = ["baselines", "--data", str(data.path), *args, "--out", str(bad)]
        result = CliRunner().invoke(cli, argv)
        assert result.exit_code == 2 and problem in result.output, result.output
        assert not bad.exists()
