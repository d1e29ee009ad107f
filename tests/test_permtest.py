"""`ginn test`: hand-computed examples, brute-force and statsmodels references, merging of chunks and bad inputs."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ginn.cli import cli
from ginn.files import write_tsv
from ginn.permtest import (RESULT_COLUMNS, bh_qvalues, holm_pvalues, maxt_pvalues, perm_pvalues,
                           permutation_fdr)

# Hand example: 3 pairs, B = 4 permutations.
OBSERVED = np.array([0.9, 0.5, 0.2])
NULL = np.array([[0.1, 0.6, 0.3],
                 [0.2, 0.4, 0.1],
                 [0.95, 0.2, 0.2],
                 [0.3, 0.5, 0.05]])


def test_perm_pvalues_by_hand():
    # pair 0: only 0.95 >= 0.9 -> (1+1)/5; pair 1: 0.6 and the tie 0.5 -> (1+2)/5;
    # pair 2: 0.3 and the tie 0.2 -> (1+2)/5.
    np.testing.assert_allclose(perm_pvalues(OBSERVED, NULL), [2 / 5, 3 / 5, 3 / 5])


def test_maxt_pvalues_by_hand():
    # Per-permutation maxima 0.6, 0.4, 0.95, 0.5. >= 0.9: one; >= 0.5: three; >= 0.2: four.
    np.testing.assert_allclose(maxt_pvalues(OBSERVED, NULL), [2 / 5, 4 / 5, 5 / 5])


def test_permutation_fdr_by_hand():
    # Pooled null (12 scores): >= 0.9: 1, >= 0.5: 3, >= 0.2: 9 -> expected false (1 + count) / (B + 1)
    # = 2/5, 4/5, 10/5. Observed >= 0.9: 1, >= 0.5: 2, >= 0.2: 3. FDR = 0.4, 0.4, 0.667; monotone.
    np.testing.assert_allclose(permutation_fdr(OBSERVED, NULL), [0.4, 0.4, 2 / 3])


def test_permutation_fdr_is_made_monotone_and_capped():
    # Observed 1.0, 0.8, 0.7; B = 2 nulls: [0.85, 0.0, 0.0], [0.75, 0.0, 0.0].
    # Raw FDR: t=1.0 -> (1/3)/1; t=0.8 -> (2/3)/2; t=0.7 -> (3/3)/3: all 1/3, and never 0 although no
    # null score reaches the top one (the observed data counts as one permutation).
    observed = np.array([0.8, 1.0, 0.7])
    null = np.array([[0.85, 0.0, 0.0], [0.75, 0.0, 0.0]])
    np.testing.assert_allclose(permutation_fdr(observed, null), [1 / 3, 1 / 3, 1 / 3])
    # A ranking where the raw FDR falls with the threshold: t=0.9 -> (2/2)/1, t=0.1 -> (2/2)/2 = 0.5,
    # so the top pair's q is lowered to 0.5 by the threshold below it.
    np.testing.assert_allclose(permutation_fdr([0.9, 0.1], [[0.95, 0.0]]), [0.5, 0.5])
    # All nulls above: t=0.2 -> (5/3)/1 capped at 1; t=0.1 -> (5/3)/2 = 5/6, which the top pair takes.
    np.testing.assert_allclose(permutation_fdr([0.1, 0.2], [[5.0, 5.0], [5.0, 5.0]]), [5 / 6, 5 / 6])


def brute_force(observed, null):
    """The three formulas written as literal loops, independent of the vectorised code."""
    B, P = null.shape
    p_perm = [(1 + sum(null[k, j] >= observed[j] for k in range(B))) / (B + 1) for j in range(P)]
    maxima = [max(null[k]) for k in range(B)]
    p_maxt = [(1 + sum(m >= observed[j] for m in maxima)) / (B + 1) for j in range(P)]

    def fdr_at(t):
        expected = (1 + sum(null[k, j] >= t for k in range(B) for j in range(P))) / (B + 1)
        return min(1.0, expected / sum(o >= t for o in observed))

    # q = smallest FDR over the thresholds at or below the pair's score.
    q = [min(fdr_at(t) for t in observed if t <= observed[j]) for j in range(P)]
    return np.array(p_perm), np.array(p_maxt), np.array(q)


@pytest.mark.parametrize("seed", range(6))
def test_formulas_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    B, P = rng.integers(1, 30), rng.integers(1, 25)
    # Rounded to 1 decimal so ties between observed and null scores (and among them) are frequent.
    null = np.round(rng.gamma(2.0, 0.2, size=(B, P)), 1)
    observed = np.round(rng.gamma(2.0, 0.25, size=P), 1)
    p_perm, p_maxt, q = brute_force(observed, null)
    np.testing.assert_allclose(perm_pvalues(observed, null), p_perm)
    np.testing.assert_allclose(maxt_pvalues(observed, null), p_maxt)
    np.testing.assert_allclose(permutation_fdr(observed, null), q)


def test_pvalues_are_never_zero_and_order_is_respected():
    rng = np.random.default_rng(7)
    null = rng.random((19, 10))
    observed = np.full(10, 100.0)
    np.testing.assert_allclose(perm_pvalues(observed, null), 1 / 20)
    np.testing.assert_allclose(maxt_pvalues(observed, null), 1 / 20)
    observed = rng.random(10)
    assert (maxt_pvalues(observed, null) >= perm_pvalues(observed, null)).all()  # maxT is stricter
    q = permutation_fdr(observed, null)
    by_score = q[np.argsort(-observed)]
    assert (np.diff(by_score) >= 0).all() and (q <= 1).all()
    assert (permutation_fdr(np.full(10, 100.0), null) > 0).all()   # no null score reaches them: still q > 0


@pytest.mark.parametrize("seed", range(4))
def test_bh_and_holm_equal_statsmodels(seed):
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.random(40), rng.random(5) * 1e-4, [0.3, 0.3]])   # ties included
    np.testing.assert_allclose(bh_qvalues(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12)
    np.testing.assert_allclose(holm_pvalues(p), multipletests(p, method="holm")[1], rtol=1e-12)


@pytest.mark.parametrize("observed, null", [
    (np.array([]), np.zeros((3, 0))),
    (np.array([1.0, 2.0]), np.zeros((0, 2))),
    (np.array([1.0, 2.0]), np.zeros((3, 3))),
    (np.array([1.0, np.nan]), np.zeros((3, 2))),
])
def test_pure_functions_reject_bad_shapes(observed, null):
    for function in (perm_pvalues, maxt_pvalues, permutation_fdr):
        with pytest.raises(ValueError):
            function(observed, null)


# ---- the command --------------------------------------------------------------------------------

GENES = [f"g{i}" for i in range(1, 6)]
PAIRS = list(itertools.combinations(GENES, 2))


def score_rows(datasets: list[str], seed: int = 0) -> pd.DataFrame:
    """SCORES.tsv rows as `ginn score` writes them, with random positive scores."""
    rng = np.random.default_rng(seed)
    rows = [(d, a, b, rng.gamma(2.0, 0.1), rng.random() * 0.01) for d in datasets for a, b in PAIRS]
    return pd.DataFrame(rows, columns=["dataset", "gene_a", "gene_b", "score", "se"])


def pair_rows(seed: int = 0) -> pd.DataFrame:
    """pairs.tsv rows as `ginn pairtest` writes them: two strong pairs, the rest null."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(len(PAIRS))
    z[:2] = [8.0, -5.0]
    from scipy import stats
    return pd.DataFrame({"gene_a": [a for a, _ in PAIRS], "gene_b": [b for _, b in PAIRS], "z": z,
                         "p_pair": 2 * stats.norm.sf(np.abs(z))})


def invoke(args: list[str]):
    """Run ``ginn ARGS`` in-process (prog_name as the console script names it in messages)."""
    return CliRunner().invoke(cli, args, prog_name="ginn")


def run_test_cli(tmp_path, *tables: pd.DataFrame, out_name="RESULTS.tsv"):
    tmp_path.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, table in enumerate(tables):
        paths.append(tmp_path / f"scores{i}.tsv")
        write_tsv(paths[-1], table, float_format=None)
    pairs = tmp_path / "pairs.tsv"
    write_tsv(pairs, pair_rows(), float_format=None)
    out = tmp_path / out_name
    result = invoke(["test", "--pairs", str(pairs), "--scores", *map(str, paths), "--out", str(out)])
    return result, out, paths


def test_command_matches_pure_functions_and_writes_provenance(tmp_path):
    datasets = ["observed"] + [f"perm-{k}" for k in range(1, 20)]
    scores = score_rows(datasets)
    result, out, _ = run_test_cli(tmp_path, scores)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == [*RESULT_COLUMNS, "shapley"]
    assert (np.diff(table["score"]) <= 0).all() and (table["n_permutations"] == 19).all()
    pairs = pair_rows().set_index(["gene_a", "gene_b"])
    by_pair = table.set_index(["gene_a", "gene_b"]).loc[pairs.index]
    np.testing.assert_allclose(by_pair["score"], np.abs(pairs["z"]), rtol=1e-5)
    np.testing.assert_allclose(by_pair["q_pair"], bh_qvalues(pairs["p_pair"]), rtol=1e-5)
    np.testing.assert_allclose(by_pair["p_pair_fwer"], holm_pvalues(pairs["p_pair"]), rtol=1e-5)
    assert list(by_pair["called"]) == list(bh_qvalues(pairs["p_pair"]) <= 0.1) and by_pair["called"].sum() >= 2
    observed = scores[scores.dataset == "observed"].set_index(["gene_a", "gene_b"])["score"]
    null = np.stack([scores[scores.dataset == d].set_index(["gene_a", "gene_b"])["score"].loc[observed.index]
                     for d in datasets[1:]])
    expected = pd.DataFrame({"shapley": observed.to_numpy(),
                             "global_p_perm": perm_pvalues(observed.to_numpy(), null),
                             "global_p_maxt": maxt_pvalues(observed.to_numpy(), null),
                             "global_q_fdr": permutation_fdr(observed.to_numpy(), null)}, index=observed.index)
    got = table.set_index(["gene_a", "gene_b"]).loc[observed.index]
    for column in expected:
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-5)  # file keeps 6 digits
    provenance = json.loads((tmp_path / "RESULTS.provenance.json").read_text())
    assert provenance["stage"] == "test" and provenance["n_permutations"] == 19
    assert provenance["permutations"] == "1-19" and len(provenance["inputs"]) == 2


def test_chunked_score_files_merge_to_the_same_result(tmp_path):
    datasets = ["observed"] + [f"perm-{k}" for k in range(1, 31)]
    scores = score_rows(datasets, seed=3)
    whole, whole_out, _ = run_test_cli(tmp_path / "whole", scores)
    # Three chunks as parallel `ginn score` runs write them: observed with 1-10, then 11-20, 21-30;
    # rows shuffled and one chunk writes its pairs reversed (g2 g1): pairs are unordered.
    chunk1 = scores[scores.dataset.isin(datasets[:11])].sample(frac=1, random_state=1)
    chunk2 = scores[scores.dataset.isin(datasets[11:21])]
    chunk3 = scores[scores.dataset.isin(datasets[21:])].rename(columns={"gene_a": "gene_b", "gene_b": "gene_a"})
    parts, parts_out, _ = run_test_cli(tmp_path / "parts", chunk3, chunk1, chunk2)
    assert whole.exit_code == 0 and parts.exit_code == 0, (whole.output, parts.output)
    pd.testing.assert_frame_equal(pd.read_csv(whole_out, sep="\t"), pd.read_csv(parts_out, sep="\t"))


def test_more_files_may_follow_repeated_scores_options(tmp_path):
    scores = score_rows(["observed", "perm-1", "perm-2"])
    paths = []
    for name, part in (("a", scores[scores.dataset != "perm-2"]), ("b", scores[scores.dataset == "perm-2"])):
        paths.append(tmp_path / f"{name}.tsv")
        write_tsv(paths[-1], part)
    write_tsv(tmp_path / "pairs.tsv", pair_rows())
    result = invoke(["test", "--pairs", str(tmp_path / "pairs.tsv"), "--scores", str(paths[0]), "--scores",
                     str(paths[1]), "--out", str(tmp_path / "R.tsv")])
    assert result.exit_code == 0, result.output
    assert (pd.read_csv(tmp_path / "R.tsv", sep="\t")["n_permutations"] == 2).all()


def _drop_one_perm_pair(scores):
    return scores.drop(scores.index[(scores.dataset == "perm-2")][3])


def _nan_score(scores):
    scores = scores.copy()
    scores.loc[5, "score"] = np.nan
    return scores


def _text_score(scores):
    scores = scores.astype({"score": object})
    scores.loc[4, "score"] = "big"
    return scores


@pytest.mark.parametrize("break_scores, problem", [
    (lambda s: s[s.dataset != "observed"], "no 'observed' dataset"),
    (lambda s: s[s.dataset == "observed"], "no permuted datasets"),
    (lambda s: pd.concat([s, s.iloc[[7]]]), "duplicate score for observed"),
    (lambda s: pd.concat([s, s.iloc[[12]].rename(columns={"gene_a": "gene_b", "gene_b": "gene_a"})]),
     "duplicate score for perm-1"),
    (_drop_one_perm_pair, "perm-2 lacks 1 observed pair(s)"),
    (lambda s: pd.concat([s, pd.DataFrame([["perm-1", "g1", "g9", 0.1, 0.0]], columns=s.columns)]),
     "perm-1 has 1 pair(s) not in the observed scores"),
    (_nan_score, "score is not a finite number on line 7"),
    (_text_score, "score is not a finite number on line 6"),
    (lambda s: s.drop(columns="se"), "lacks column(s) se"),
    (lambda s: s.replace({"perm-2": "shuffled"}), "dataset must be 'observed' or 'perm-<k>'"),
    (lambda s: s.replace({"g2": "g1"}), "gene pair of a gene with itself"),
    (lambda s: s.replace({"perm-2": "perm-01"}), "permutation names perm-1, perm-01 give the same permutation index"),
    (lambda s: s.iloc[:0], "no rows"),
])
def test_bad_score_files_fail_naming_the_file(tmp_path, break_scores, problem):
    scores = score_rows(["observed", "perm-1", "perm-2"])
    result, out, paths = run_test_cli(tmp_path, break_scores(scores))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ginn test: error: ") and str(paths[0]) in lines[0]
    assert problem in lines[0], lines[0]
    assert not out.exists() and not (tmp_path / "RESULTS.provenance.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.tsv", "scores0.tsv"]


def test_duplicate_across_chunks_names_both_files(tmp_path):
    scores = score_rows(["observed", "perm-1", "perm-2"])
    result, out, paths = run_test_cli(tmp_path, scores, scores[scores.dataset == "perm-2"])
    assert result.exit_code == 2 and not out.exists()
    assert f"{paths[1]}: duplicate score for perm-2" in result.output and f"also in {paths[0]}" in result.output


def test_missing_score_file_is_an_error(tmp_path):
    write_tsv(tmp_path / "pairs.tsv", pair_rows())
    result = invoke(["test", "--pairs", str(tmp_path / "pairs.tsv"), "--scores", str(tmp_path / "nope.tsv"),
                     "--out", str(tmp_path / "R.tsv")])
    assert result.exit_code == 2 and "nope.tsv: scores file not found" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.tsv"]


def test_per_pair_calls_alone_without_perm_i(tmp_path):
    write_tsv(tmp_path / "pairs.tsv", pair_rows())
    result = invoke(["test", "--pairs", str(tmp_path / "pairs.tsv"), "--fdr", "0.05", "--out", str(tmp_path / "R.tsv")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "R.tsv", sep="\t")
    assert table["global_p_maxt"].isna().all() and (table["n_permutations"] == 0).all()
    assert list(table.head(2)["score"]) == [8.0, 5.0] and table["called"].head(2).all()
    assert (table["q_pair"] > 0).all() and (table["q_pair"] <= 1).all()


@pytest.mark.parametrize("break_pairs, problem", [
    (lambda t: t.drop(columns="z"), "lacks column(s) z"),
    (lambda t: t.assign(p_pair=t["p_pair"].where(t.index != 3, np.nan)), "p_pair is not a finite number on line 5"),
    (lambda t: t.assign(p_pair=t["p_pair"].where(t.index != 0, 1.5)), "p_pair must lie in [0, 1]"),
    (lambda t: pd.concat([t, t.iloc[[2]].rename(columns={"gene_a": "gene_b", "gene_b": "gene_a"})]), "appears twice"),
    (lambda t: t.iloc[:0], "no rows"),
])
def test_bad_pair_files_fail_naming_the_file(tmp_path, break_pairs, problem):
    write_tsv(tmp_path / "pairs.tsv", break_pairs(pair_rows()), float_format=None)
    result = invoke(["test", "--pairs", str(tmp_path / "pairs.tsv"), "--out", str(tmp_path / "R.tsv")])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert f"{tmp_path / 'pairs.tsv'}:" in result.output and problem in result.output, result.output
    assert not (tmp_path / "R.tsv").exists()


def test_fdr_out_of_range_is_refused(tmp_path):
    write_tsv(tmp_path / "pairs.tsv", pair_rows())
    result = invoke(["test", "--pairs", str(tmp_path / "pairs.tsv"), "--fdr", "0", "--out", str(tmp_path / "R.tsv")])
    assert result.exit_code == 2 and "--fdr" in result.output and not (tmp_path / "R.tsv").exists()


# ---- the in-process study equals the command pipeline ----------------------------------------------

def test_nn_permutation_test_equals_train_score_test_commands(tmp_path):
    """The calibration evidence (tests/test_calibration.py) comes from `nn_permutation_test`; this
    pins it to what users run: `ginn train` (main, observed, perm-I) -> `ginn score` -> `ginn test`."""
    from ginn.dataset import Dataset
    from ginn.studies import NNPermutationSettings, nn_permutation_test
    from ginn.simulate import simulate_dataset
    from ginn.train import TrainSettings

    data_dir = tmp_path / "DATA"
    simulate_dataset(data_dir, n_samples=200, n_genes=10, model="null", snps_per_gene=2, seed=5)
    settings = NNPermutationSettings(members=2, main_members=2, predictor_hidden=8, main_gene_layer="linear",
                                     l1_gene=1e-3, l1_predictor=1e-3)
    training = dict(lr=0.01, batch_size=64, max_epochs=6, patience=3)
    in_memory = nn_permutation_test(Dataset.load(data_dir), "perm-I", 3, seed=11, settings=settings,
                                    train_settings=TrainSettings(progress=False, **training))

    common = ["--data", str(data_dir), "--seed", "11", "--lr", "0.01", "--batch-size", "64", "--max-epochs", "6",
              "--patience", "3", "--l1-gene", "1e-3", "--l1-predictor", "1e-3"]
    steps = [
        ["train", *common, "--model", "main", "--gene-layer", "linear", "--members", "2", "--out", str(tmp_path / "MAIN")],
        ["train", *common, "--predictor-hidden", "8", "--members", "2", "--out", str(tmp_path / "OBS")],
        ["train", *common, "--predictor-hidden", "8", "--members", "2", "--target", "perm-I", "--permutations", "1-3",
         "--null-model", str(tmp_path / "MAIN"), "--out", str(tmp_path / "PERM")],
        ["score", "--data", str(data_dir), "--models", str(tmp_path / "OBS"), "--out", str(tmp_path / "obs.tsv")],
        ["score", "--data", str(data_dir), "--models", str(tmp_path / "PERM"), "--out", str(tmp_path / "perm.tsv")],
        ["test", "--pairs", str(tmp_path / "pairs.tsv"), "--scores", str(tmp_path / "obs.tsv"), str(tmp_path / "perm.tsv"),
         "--out", str(tmp_path / "R.tsv")],
    ]
    genes = [f"g{i}" for i in range(1, 11)]
    write_tsv(tmp_path / "pairs.tsv", pd.DataFrame([(a, b, 0.0, 1.0) for a, b in itertools.combinations(genes, 2)],
                                                   columns=["gene_a", "gene_b", "z", "p_pair"]))
    for step in steps:
        result = invoke(step)
        assert result.exit_code == 0, (step, result.output)
    on_disk = pd.read_csv(tmp_path / "R.tsv", sep="\t").set_index(["gene_a", "gene_b"])
    in_memory = in_memory.set_index(["gene_a", "gene_b"])
    on_disk = on_disk.loc[in_memory.index]
    # Scores agree to float32 summation order (one batched run vs three); SCORES.tsv keeps 6 digits.
    for column in ("shapley", "global_p_perm", "global_p_maxt", "global_q_fdr"):
        np.testing.assert_allclose(on_disk[column], in_memory[column], rtol=1e-4)


def _null_like_results(p_perm: np.ndarray, p_maxt: np.ndarray) -> pd.DataFrame:
    datasets, pairs = p_perm.shape
    return pd.DataFrame({"dataset": np.repeat(np.arange(datasets), pairs), "global_p_perm": p_perm.ravel(),
                         "global_p_maxt": np.repeat(p_maxt, pairs)})


def test_calibration_summary_accepts_calibrated_and_rejects_shifted_pvalues():
    from ginn.studies import calibration_summary

    rng = np.random.default_rng(3)
    B = 39
    # Independent exact permutation p-values: (1 + b)/(B + 1), b uniform on 0..B.
    calibrated = (1 + rng.integers(0, B + 1, size=(30, 45))) / (B + 1)
    good = calibration_summary(_null_like_results(calibrated, np.full(30, 0.5)), B)
    assert good["design_effect"] < 2 and good["ks_pvalue"] > 0.01 and good["mean_p_ttest_pvalue"] > 0.01
    assert 0.02 <= good["fraction_below_alpha"] <= 0.08 and good["family_errors"] == 0
    # Shared per-dataset shifts (a random effect, still uniform marginally): a large design effect
    # that the uncorrected KS mistakes for miscalibration.
    shift = rng.integers(0, B + 1, size=(30, 1))
    clustered = (1 + (shift + rng.integers(0, 8, size=(30, 45))) % (B + 1)) / (B + 1)
    grouped = calibration_summary(_null_like_results(clustered, np.full(30, 0.5)), B)
    assert grouped["design_effect"] > 10 and grouped["ks_pvalue_independent"] < grouped["ks_pvalue"]
    # Too small p-values everywhere (observed scores inflated): every check rejects.
    shifted = calibrated ** 2
    bad = calibration_summary(_null_like_results(shifted, np.where(np.arange(30) < 6, 0.025, 0.5)), B)
    assert bad["fraction_below_alpha"] > 0.08 and bad["ks_pvalue"] < 0.01 and bad["mean_p_ttest_pvalue"] < 0.01
    assert bad["family_errors"] == 6 and bad["family_error_rate"] == 0.2
