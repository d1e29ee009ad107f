"""Evaluation: AP/AUROC against scikit-learn, decisions, calibration, the command and bad inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ginn.cli import cli
from ginn.evaluate import average_precision, decision_metrics, evaluate, roc_auc


@pytest.mark.parametrize("seed", range(6))
def test_ap_and_auroc_equal_scikit_learn(seed):
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    labels = rng.random(n) < rng.uniform(0.05, 0.6)
    labels[0], labels[1] = True, False
    # Rounded scores create ties, which both definitions must handle identically.
    scores = np.round(rng.normal(size=n) + labels * rng.uniform(0, 2), int(rng.integers(0, 3)))
    assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_metrics_of_known_rankings():
    labels = np.array([1, 1, 0, 0, 0], dtype=bool)
    assert average_precision(labels, [5, 4, 3, 2, 1]) == 1.0 and roc_auc(labels, [5, 4, 3, 2, 1]) == 1.0
    assert roc_auc(labels, [1, 2, 3, 4, 5]) == 0.0
    assert average_precision(labels, [5, 1, 4, 3, 2]) == pytest.approx((1 + 2 / 5) / 2)
    assert np.isnan(average_precision(~np.ones(5, bool), np.arange(5))) and np.isnan(roc_auc(np.ones(5, bool), np.arange(5)))


def _write(tmp_path, name, table):
    path = tmp_path / name
    table.to_csv(path, sep="\t", index=False)
    return path


def _pairs(n_genes=5):
    return [(f"g{i}", f"g{j}") for i in range(1, n_genes + 1) for j in range(i + 1, n_genes + 1)]


def test_evaluate_command_writes_metrics_calibration_and_figure(tmp_path):
    pairs = _pairs()
    truth = pd.DataFrame(pairs, columns=["gene_a", "gene_b"]).assign(interacting=[1, 1] + [0] * 8)
    # Results list pairs in the other orientation (gene_b, gene_a): pairs are unordered.
    results = pd.DataFrame({"gene_a": [b for _, b in pairs], "gene_b": [a for a, _ in pairs],
                            "score": np.arange(10, 0, -1.0),
                            "p_pair": [0.01, 0.2, 0.03] + [0.5] * 7, "global_p_maxt": [0.04, 0.6] + [0.9] * 8,
                            "p_pair_fwer": [0.01, 0.5, 0.04] + [1.0] * 7, "called": [True, False, True] + [False] * 7})
    truth_path, results_path = _write(tmp_path, "truth.tsv", truth), _write(tmp_path, "res.tsv", results)
    out = tmp_path / "eval"
    result = CliRunner().invoke(cli, ["evaluate", "--results", str(results_path), "--truth", str(truth_path),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(f"{out}.tsv", sep="\t")
    row = metrics.iloc[0]
    assert row["ap"] == 1.0 and row["auroc"] == 1.0 and row["n_true"] == 2
    assert row["power_pair"] == 0.5 and row["specificity_pair"] == pytest.approx(7 / 8)
    assert row["power_global_maxt"] == 0.5 and row["specificity_global_maxt"] == 1.0
    # called: g2-g1 (true) and g3-g1 (false) -> FDP 1/2, power 1/2; p_pair_fwer <= 0.05 calls the same two.
    assert row["n_called"] == 2 and row["fdp"] == 0.5 and row["power_called"] == 0.5
    assert row["fwer_error"] == 1.0 and row["power_fwer"] == 0.5
    calibration = pd.read_csv(f"{out}.calibration.tsv", sep="\t").set_index("nominal")
    assert calibration.loc[0.05, "fpr_pair"] == pytest.approx(1 / 8) and calibration.loc[0.5, "fpr_pair"] == 1.0
    assert (tmp_path / "eval.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "eval.provenance.json").is_file()


def test_calibration_of_uniform_null_pvalues_is_the_diagonal(tmp_path):
    # 40 null datasets x 45 pairs of U(0,1) p-values: the empirical FPR at level t has standard error
    # sqrt(t(1-t)/1800) <= 0.012, so 0.04 is > 3 SE everywhere on the curve.
    rng = np.random.default_rng(0)
    pairs = _pairs(10)
    truth = _write(tmp_path, "null_truth.tsv", pd.DataFrame(pairs, columns=["gene_a", "gene_b"]).assign(interacting=0))
    paths = []
    for k in range(40):
        table = pd.DataFrame(pairs, columns=["gene_a", "gene_b"]).assign(score=rng.random(45), p_pair=rng.random(45))
        paths.append(_write(tmp_path, f"r{k}.tsv", table))
    metrics, calibration, _ = evaluate(paths, [truth])
    assert np.abs(calibration["fpr_pair"] - calibration["nominal"]).max() < 0.04
    assert calibration["fpr_global_maxt"].isna().all() and np.isnan(metrics.iloc[-1]["ap"])
    assert metrics.iloc[-1]["specificity_pair"] == pytest.approx(0.95, abs=0.02)


def test_evaluate_rejects_mismatched_tables(tmp_path):
    pairs = _pairs()
    truth = _write(tmp_path, "truth.tsv", pd.DataFrame(pairs, columns=["gene_a", "gene_b"]).assign(interacting=[1] + [0] * 9))
    short = _write(tmp_path, "short.tsv", pd.DataFrame(pairs[:9], columns=["gene_a", "gene_b"]).assign(score=1.0))
    badlabel = _write(tmp_path, "badlabel.tsv", pd.DataFrame(pairs, columns=["gene_a", "gene_b"]).assign(interacting="maybe"))
    full = _write(tmp_path, "full.tsv", pd.DataFrame(pairs, columns=["gene_a", "gene_b"]).assign(score=1.0))
    for results, truth_path, problem in [(short, truth, "1 truth pair(s) have no score"),
                                         (full, badlabel, "interacting must be 1/0"),
                                         (full, tmp_path / "none.tsv", "truth file not found")]:
        out = tmp_path / "ev"
        result = CliRunner().invoke(cli, ["evaluate", "--results", str(results), "--truth", str(truth_path),
                                          "--out", str(out)])
        assert result.exit_code == 2 and problem in result.output, result.output
        assert not list(tmp_path.glob("ev*")) and not list(tmp_path.glob(".ev*"))


def test_permutation_pvalue_at_alpha_counts_as_a_call():
    # With B = 19 permutations the smallest p-value is 1/20 = 0.05 exactly; it must be able to reject.
    joined = pd.DataFrame({"interacting": [True, True, False, False],
                           "p_pair": [0.05, 0.10, 0.05, 0.50], "global_p_maxt": [0.05, 0.05, 0.10, 1.0]})
    metrics = decision_metrics(joined, alpha=0.05)
    assert metrics["power_pair"] == 0.5 and metrics["specificity_pair"] == 0.5
    assert metrics["power_global_maxt"] == 1.0 and metrics["specificity_global_maxt"] == 1.0
