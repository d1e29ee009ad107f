"""``ginn test``: per-pair interaction calls with FDR control, and Perm I's global test beside them.

Two questions, two sets of columns in RESULTS.tsv (one row per gene pair, best ``score`` first):

* **Does this pair interact, given the other pairs?** From ``ginn pairtest`` (cross-fitted gene values,
  robust Wald test of the pair's product term in a joint model; see :mod:`ginn.pairtest`):
  ``p_pair`` (two-sided p of H0: no interaction of genes a and b), ``q_pair`` (Benjamini-Hochberg
  q-value over all pairs), ``p_pair_fwer`` (Holm-adjusted p: family-wise error), ``called``
  (``q_pair <= --fdr``: the calls a user reads first) and ``score`` = |z|, the ranking.
* **Does any pair interact at all?** Perm I (the paper's test; optional, from ``--scores``):
  permuting the main-effect NN's residual removes every interaction at once, so these p-values are
  calibrated under the GLOBAL null "no gene interacts", not per pair (with true interactions present,
  false pairs get small values too). Every permuted dataset k = 1..B gives one null Shapley score per
  pair, so for observed scores s (P pairs) and null scores n (B x P):

  * ``global_p_perm`` -- per pair, (1 + #{k: n[k, j] >= s[j]}) / (B + 1);
  * ``global_p_maxt`` -- Westfall-Young single step against the per-permutation maximum over all pairs,
    (1 + #{k: max_j n[k, j] >= s[i]}) / (B + 1); its smallest value is the p-value of the global test;
  * ``global_q_fdr`` -- permutation FDR under the global null: at threshold t the expected number of
    null pairs scoring >= t, (1 + sum_k #{j: n[k, j] >= t}) / (B + 1), over the number of observed
    pairs scoring >= t, capped at 1 and made monotone over the ranking;
  * ``shapley`` -- the observed ensemble's Shapley interaction score (the paper's ranking).

The (1 + b) / (B + 1) convention counts the observed data as one of the permutations, so no p- or
q-value is zero and a p-value <= alpha happens with probability <= alpha under exchangeability.
Ties count as exceedances (conservative).

The in-memory Perm I study runner of the calibration test lives in :mod:`ginn.studies`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import click
import numpy as np
import pandas as pd

from .errors import GinnError
from .files import atomic_outputs, numeric_column, provenance_path, provenance_record, read_table, write_json, write_tsv
from .contract import stage_default, stage_options

log = logging.getLogger(__name__)

SCORE_COLUMNS = ["dataset", "gene_a", "gene_b", "score", "se"]
# Per-pair columns, then the global (Perm I) columns: the layout of `ginn test` and `ginn baselines`.
PAIR_CALL_COLUMNS = ["p_pair", "q_pair", "p_pair_fwer", "called"]
GLOBAL_COLUMNS = ["global_p_perm", "global_p_maxt", "global_q_fdr", "n_permutations"]
RESULT_COLUMNS = ["gene_a", "gene_b", "score", *PAIR_CALL_COLUMNS, *GLOBAL_COLUMNS]
DEFAULT_FDR = stage_default("test", "fdr")
_PERM_NAME = re.compile(r"perm-(\d+)")


def _as_scores(observed, null) -> tuple[np.ndarray, np.ndarray]:
    """Float64 observed (P,) and null (B, P) scores, checked for shape and finiteness."""
    observed = np.asarray(observed, dtype=np.float64)
    null = np.asarray(null, dtype=np.float64)
    if observed.ndim != 1 or observed.size == 0:
        raise ValueError(f"observed scores must be a non-empty vector, got shape {observed.shape}")
    if null.ndim != 2 or null.shape[0] == 0 or null.shape[1] != observed.size:
        raise ValueError(f"null scores must be (B >= 1, {observed.size}), got shape {null.shape}")
    if not (np.isfinite(observed).all() and np.isfinite(null).all()):
        raise ValueError("scores must be finite")
    return observed, null


def _count_at_least(sorted_values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """#{v in sorted_values: v >= t} for each threshold t (sorted_values ascending)."""
    return sorted_values.size - np.searchsorted(sorted_values, thresholds, side="left")


def perm_pvalues(observed, null) -> np.ndarray:
    """Per-pair permutation p-values (1 + #{k: null[k, j] >= observed[j]}) / (B + 1)."""
    observed, null = _as_scores(observed, null)
    exceed = (null >= observed[None, :]).sum(axis=0)
    return (1.0 + exceed) / (null.shape[0] + 1.0)


def maxt_pvalues(observed, null) -> np.ndarray:
    """Westfall-Young single-step maxT p-values: each observed score against the per-permutation
    maximum over all pairs, (1 + #{k: max_j null[k, j] >= observed[i]}) / (B + 1)."""
    observed, null = _as_scores(observed, null)
    maxima = np.sort(null.max(axis=1))
    return (1.0 + _count_at_least(maxima, observed)) / (null.shape[0] + 1.0)


def permutation_fdr(observed, null) -> np.ndarray:
    """Permutation FDR q-values: at threshold t = each observed score, the expected number of null
    pairs scoring >= t, (1 + #{null scores >= t}) / (B + 1) (the observed data counted as one more
    permutation, so q > 0), over the number of observed pairs scoring >= t, capped at 1 and made
    monotone (non-decreasing as the score falls) over the ranking."""
    observed, null = _as_scores(observed, null)
    expected_false = (1.0 + _count_at_least(np.sort(null, axis=None), observed)) / (null.shape[0] + 1.0)
    discoveries = _count_at_least(np.sort(observed), observed)  # >= 1: a score counts itself
    fdr = np.minimum(1.0, expected_false / discoveries)
    order = np.argsort(-observed, kind="stable")
    q = np.empty_like(fdr)
    q[order] = np.minimum.accumulate(fdr[order][::-1])[::-1]
    return q


def bh_qvalues(p) -> np.ndarray:
    """Benjamini-Hochberg q-values: min over k >= rank of p_(k) m / k, capped at 1 (a NaN p-value stays NaN
    and is not counted among the m tests). Calling q <= alpha controls the FDR at alpha for independent or
    positively dependent p-values."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    scaled = p[order] * len(order) / np.arange(1, len(order) + 1)
    q[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return q


def holm_pvalues(p) -> np.ndarray:
    """Holm step-down adjusted p-values: max over k <= rank of (m - k + 1) p_(k), capped at 1.
    Rejecting adjusted p <= alpha controls the family-wise error at alpha under any dependence."""
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (len(p) - np.arange(len(p)))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def pair_calls(p, fdr: float) -> dict[str, np.ndarray]:
    """The per-pair columns from per-pair p-values: p_pair, q_pair (BH), p_pair_fwer (Holm), called."""
    p = np.asarray(p, dtype=np.float64)
    q = bh_qvalues(p)
    return {"p_pair": p, "q_pair": q, "p_pair_fwer": holm_pvalues(p), "called": q <= fdr}


def check_fdr(fdr: float) -> float:
    if not 0 < fdr < 1:
        raise GinnError("--fdr", f"must be between 0 and 1, not {fdr}")
    return fdr


def _read_score_file(path: Path) -> pd.DataFrame:
    """One SCORES.tsv, checked: columns, numeric finite scores, dataset names, no duplicate pairs."""
    table = read_table(path, required=SCORE_COLUMNS, what="scores")
    if table.empty:
        raise GinnError(path, "scores table has no rows")
    for column in ("dataset", "gene_a", "gene_b"):
        if table[column].isna().any():
            row = int(table.index[table[column].isna()][0]) + 2
            raise GinnError(path, f"missing {column} on line {row}")
    score = numeric_column(table, "score", path)
    names = table["dataset"]
    unknown = ~(names.eq("observed") | names.str.fullmatch(_PERM_NAME))
    if unknown.any():
        raise GinnError(path, f"dataset must be 'observed' or 'perm-<k>', not {names[unknown].iloc[0]!r}")
    same = table["gene_a"] == table["gene_b"]
    if same.any():
        raise GinnError(path, f"gene pair of a gene with itself ({table['gene_a'][same].iloc[0]})")
    # Pairs are unordered: g1-g2 and g2-g1 are the same test.
    swap = table["gene_a"] > table["gene_b"]
    return pd.DataFrame({
        "dataset": names, "gene_a": table["gene_a"], "gene_b": table["gene_b"],
        "first": table["gene_a"].where(~swap, table["gene_b"]), "second": table["gene_b"].where(~swap, table["gene_a"]),
        "score": score, "file": str(path)})


def merge_score_files(paths: list[str | Path]) -> pd.DataFrame:
    """All rows of several SCORES.tsv files (e.g. permutation chunks run in parallel), checked so that
    every dataset scores exactly the observed pairs once and the observed data is present."""
    if not paths:
        raise GinnError("--scores", "no score files given")
    merged = pd.concat([_read_score_file(Path(p)) for p in paths], ignore_index=True)
    key = ["dataset", "first", "second"]
    duplicated = merged.duplicated(key, keep="first")
    if duplicated.any():
        row = merged[duplicated].iloc[0]
        first = merged[(merged[key] == row[key]).all(axis=1)].iloc[0]
        where = "twice in this file" if first["file"] == row["file"] else f"also in {first['file']}"
        raise GinnError(row["file"], f"duplicate score for {row['dataset']} {row['gene_a']}-{row['gene_b']} ({where})")
    if not merged["dataset"].eq("observed").any():
        raise GinnError(", ".join(map(str, paths)), "no 'observed' dataset: the observed scores are missing")
    if merged["dataset"].eq("observed").all():
        raise GinnError(", ".join(map(str, paths)), "no permuted datasets (perm-<k>): nothing to test against")
    names = pd.Series(merged["dataset"].unique())
    same_k = names[names != "observed"].str.extract(_PERM_NAME, expand=False).astype(int).duplicated(keep=False)
    if same_k.any():
        raise GinnError(", ".join(map(str, paths)), f"permutation names {', '.join(names[same_k.index[same_k]])} "
                                                    "give the same permutation index twice")
    observed_pairs = set(merged.loc[merged["dataset"] == "observed", ["first", "second"]].itertuples(index=False))
    for name, rows in merged.groupby("dataset", sort=False):
        pairs = set(rows[["first", "second"]].itertuples(index=False))
        if pairs != observed_pairs:
            files = ", ".join(sorted(rows["file"].unique()))
            missing, extra = sorted(observed_pairs - pairs), sorted(pairs - observed_pairs)
            problem = (f"{name} lacks {len(missing)} observed pair(s), e.g. {'-'.join(missing[0])}" if missing
                       else f"{name} has {len(extra)} pair(s) not in the observed scores, e.g. {'-'.join(extra[0])}")
            raise GinnError(files, problem)
    return merged


GLOBAL_TABLE_COLUMNS = ["gene_a", "gene_b", "shapley", "global_p_perm", "global_p_maxt", "global_q_fdr",
                        "n_permutations"]


def global_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Perm I's global-null columns (gene_a gene_b shapley global_p_perm global_p_maxt global_q_fdr
    n_permutations, best Shapley score first) from merged score rows with columns dataset gene_a
    gene_b score (as written by ``ginn score``)."""
    if "first" not in scores.columns:  # rows not read through merge_score_files: pairs as written
        scores = scores.assign(first=scores["gene_a"], second=scores["gene_b"])
    observed_rows = scores[scores["dataset"] == "observed"].sort_values(["first", "second"], kind="stable")
    wide = scores[scores["dataset"] != "observed"].pivot(index="dataset", columns=["first", "second"], values="score")
    pair_index = pd.MultiIndex.from_frame(observed_rows[["first", "second"]])
    null = wide.reindex(columns=pair_index).to_numpy(dtype=np.float64)
    observed = observed_rows["score"].to_numpy(dtype=np.float64)
    table = observed_rows[["gene_a", "gene_b"]].reset_index(drop=True).assign(
        shapley=observed, global_p_perm=perm_pvalues(observed, null), global_p_maxt=maxt_pvalues(observed, null),
        global_q_fdr=permutation_fdr(observed, null), n_permutations=null.shape[0])
    return table.sort_values("shapley", ascending=False, kind="stable").reset_index(drop=True)[GLOBAL_TABLE_COLUMNS]


def permutation_ids(scores: pd.DataFrame) -> list[int]:
    """Sorted permutation indices k of the ``perm-<k>`` datasets present."""
    names = scores.loc[scores["dataset"] != "observed", "dataset"].unique()
    return sorted(int(_PERM_NAME.fullmatch(name).group(1)) for name in names)


def read_pairs(path: str | Path) -> pd.DataFrame:
    """PAIRS table from ``ginn pairtest`` (gene_a gene_b z p_pair), checked."""
    table = read_table(path, required=["gene_a", "gene_b", "z", "p_pair"], what="pair tests")
    if table.empty:
        raise GinnError(path, "pair-test table has no rows")
    for column in ("z", "p_pair"):
        table[column] = numeric_column(table, column, path)
    if ((table["p_pair"] < 0) | (table["p_pair"] > 1)).any():
        raise GinnError(path, "p_pair must lie in [0, 1]")
    same = table["gene_a"].astype(str) == table["gene_b"].astype(str)
    if same.any():
        raise GinnError(path, f"line {int(np.flatnonzero(same)[0]) + 2} pairs gene {table['gene_a'][same].iloc[0]} with itself")
    key = pair_key(table)
    if key.duplicated().any():
        raise GinnError(path, f"pair {pair_label(key[key.duplicated()].iloc[0])} appears twice")
    return table.assign(pair=key)


def pair_key(table: pd.DataFrame) -> pd.Series:
    """Unordered pair key: g1-g2 and g2-g1 are the same test."""
    a, b = table["gene_a"].astype(str), table["gene_b"].astype(str)
    return a.where(a < b, b) + "\t" + b.where(a < b, a)


def pair_label(key: str) -> str:
    """A :func:`pair_key` as messages write a pair: GENE_A-GENE_B."""
    return key.replace("\t", "-")


def results_table(pairs: pd.DataFrame, fdr: float = DEFAULT_FDR, scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """RESULTS table: the per-pair calls (score = |z|), with Perm I's global columns when ``scores``
    (merged score rows) are given; best score first."""
    table = pairs[["gene_a", "gene_b"]].reset_index(drop=True).assign(
        score=np.abs(pairs["z"].to_numpy(dtype=np.float64)), **pair_calls(pairs["p_pair"].to_numpy(), fdr))
    if scores is None:
        table = table.assign(shapley=np.nan, **{c: np.nan for c in GLOBAL_COLUMNS[:-1]}, n_permutations=0)
    else:
        perm = global_table(scores)
        perm_key, table_key = pair_key(perm), pair_key(table)
        if set(perm_key) != set(table_key):
            missing = sorted(set(table_key) ^ set(perm_key))[0].replace("\t", "-")
            raise GinnError("--scores", f"the Shapley scores and the pair tests cover different gene pairs (e.g. {missing})")
        perm = perm.set_index(perm_key).drop(columns=["gene_a", "gene_b"])
        table = pd.concat([table, perm.loc[table_key].reset_index(drop=True)], axis=1)
    table = table.sort_values(["score", "gene_a", "gene_b"], ascending=[False, True, True], kind="stable")
    return table.reset_index(drop=True)[[*RESULT_COLUMNS, "shapley"]]


def run_test(pairs_path: str | Path, out: str | Path, *, score_paths: list[str | Path] = (),
             fdr: float = DEFAULT_FDR) -> pd.DataFrame:
    """Per-pair calls from PAIRS (+ Perm I from score files), written to RESULTS.tsv with provenance."""
    check_fdr(fdr)
    pairs = read_pairs(pairs_path)
    scores = merge_score_files(score_paths) if score_paths else None
    table = results_table(pairs, fdr, scores)
    extra = {"fdr": fdr, "n_pairs": len(table), "n_called": int(table["called"].sum()),
             "n_pairs_fwer_below_0.05": int((table["p_pair_fwer"] <= 0.05).sum())}
    if scores is not None:
        ks = permutation_ids(scores)
        gaps = sorted(set(range(ks[0], ks[-1] + 1)) - set(ks))
        if gaps:
            log.warning("test: permutations %s are absent (fine if intended; p-values use the %d present)",
                        ", ".join(map(str, gaps[:10])) + (" ..." if len(gaps) > 10 else ""), len(ks))
        extra.update({"n_permutations": len(ks), "permutations": f"{ks[0]}-{ks[-1]}" if not gaps else ks,
                      "global_test_p": float(table["global_p_maxt"].min())})
    with atomic_outputs() as outputs:
        write_tsv(outputs.file(out), table)
        write_json(outputs.file(provenance_path(out)), provenance_record(
            "test", {"pairs": str(pairs_path), "scores": [str(p) for p in score_paths], "fdr": fdr, "out": str(out)},
            inputs={"pairs": pairs_path, **{f"scores_{i + 1}": p for i, p in enumerate(score_paths)}}, extra=extra))
    log.info("test: %d pairs, %d called at FDR <= %g (%d at FWER <= 0.05)%s -> %s", len(table), extra["n_called"], fdr,
             extra["n_pairs_fwer_below_0.05"],
             f"; Perm I global test p = {extra['global_test_p']:.3g} ({extra['n_permutations']} permutations)"
             if scores is not None else "", out)
    return table


@click.command("test")
@stage_options("test")
def test_command(pairs_path, score_paths, more_scores, fdr, out):
    """Per-pair interaction calls (FDR), with Perm I's global test beside them.

    called / q_pair / p_pair_fwer answer "does this pair interact, given the others?" (from `ginn
    pairtest`). The global_* columns answer "does any pair interact?" (Perm I): they are calibrated
    only under the global null, so never count per-pair findings with them.
    """
    if more_scores and not score_paths:
        raise GinnError("--scores", f"unexpected argument {more_scores[0]!r} (score files follow --scores)")
    run_test(pairs_path, out, score_paths=[*score_paths, *more_scores], fdr=fdr)
