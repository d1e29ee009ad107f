"""``ginn bgs associate``: do brain-genotype scores explain cognition beyond heads without genotype signal?

Any head reading the brain picks up anatomy shared by everyone (brain size, the regions other SNPs act
on), and that anatomy may drive cognition without any genotype. So every statistic is referred to the
same statistic of the negative-control heads (``bgs prepare --n-controls``: permuted genotypes, trained
beside the SNPs on the same features), and a score is called associated only when it beats them.

Per method x head x cognition measure, an OLS of the measure on an intercept, the confounders and, by
default, the head's own (true or permuted) genotype, plus the standardised score (expected dosage
``p1 + 2 p2``). Columns and the hypothesis each tests:

- ``t``, ``p_ols``, ``delta_r2``: H0 "the score adds nothing to the confounders" (OLS t-test, 1 df). Not
  calibrated: shared anatomy rejects it for heads without any genotype signal.
- ``null_mean``, ``null_sd``, ``n_controls``: the control heads' ``t`` for this method and measure.
- ``p_calibrated``: H0 "the score's t comes from the distribution of heads without genotype signal":
  ``(t - null_mean) / (null_sd sqrt(1 + 1/K))`` against Student's t with K - 1 df (the predictive
  distribution of a new draw from a normal null estimated from K controls), two-sided. A control's own
  p_calibrated uses the other K - 1 controls (leave one out), so the controls' rate of p < alpha measures
  the calibration.
- ``p_bonferroni``, ``q_fdr``, ``significant``: p_calibrated corrected over the method's SNPs x measures
  (Bonferroni, Benjamini-Hochberg); ``significant`` = Bonferroni p < alpha. Controls are not counted.

The genotype-only baseline (method ``genotype``) runs the same test on each SNP's true dosage (against
the permuted dosages of the controls), without the genotype among the confounders: what the SNP itself
says about cognition, for comparison with its brain score.

``ASSOC.tsv``: method snp control measure n beta t p_ols delta_r2 null_mean null_sd n_controls p_calibrated
p_bonferroni q_fdr significant.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np
import pandas as pd
from scipy import stats

from ..errors import GinnError
from ..files import atomic_outputs, is_true, provenance_path, provenance_record, read_table, write_json, write_tsv
from ..prepare import read_sample_table
from ..permtest import bh_qvalues
from .images import parse_list
from .score import read_scores
from ..contract import stage_options

log = logging.getLogger(__name__)

ASSOC_COLUMNS = ["method", "snp", "control", "measure", "n", "beta", "t", "p_ols", "delta_r2", "null_mean", "null_sd",
                 "n_controls", "p_calibrated", "p_bonferroni", "q_fdr", "significant"]
GENOTYPE_METHOD = "genotype"
MIN_CONTROLS = 10  # below this the null's mean and SD are too uncertain to call anything


def _fit(y: np.ndarray, x: np.ndarray) -> tuple[float, int, np.ndarray]:
    """Residual sum of squares, rank and coefficients of the OLS fit of y on x."""
    beta, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ beta
    return float(residual @ residual), int(rank), beta


def _nested(y: np.ndarray, reduced: np.ndarray, extra: np.ndarray) -> tuple[dict, np.ndarray]:
    """The nested F-test of :func:`nested_f_test` and the full model's coefficients (one fit of each model)."""
    rss_r, rank_r, _ = _fit(y, reduced)
    rss_f, rank_f, beta_f = _fit(y, np.column_stack([reduced, extra]))
    tss = float(((y - y.mean()) ** 2).sum())
    df_num, df_den = rank_f - rank_r, len(y) - rank_f
    if df_num <= 0 or df_den <= 0 or rss_f <= 0:
        f_stat, p = np.nan, np.nan
    else:
        f_stat = ((rss_r - rss_f) / df_num) / (rss_f / df_den)
        p = float(stats.f.sf(f_stat, df_num, df_den))
    return ({"n": len(y), "df_num": df_num, "df_den": df_den, "f_stat": f_stat, "p": p,
             "r2_reduced": 1 - rss_r / tss, "r2_full": 1 - rss_f / tss, "delta_r2": (rss_r - rss_f) / tss}, beta_f)


def nested_f_test(y: np.ndarray, reduced: np.ndarray, extra: np.ndarray) -> dict:
    """F-test of adding ``extra`` columns to the OLS design ``reduced`` (which includes the intercept)."""
    return _nested(y, reduced, extra)[0]


def score_t_test(y: np.ndarray, reduced: np.ndarray, score: np.ndarray) -> dict:
    """OLS t-test of the standardised ``score`` added to the design ``reduced`` (t = sign(beta) sqrt(F))."""
    sd = score.std()
    if sd == 0 or not np.isfinite(sd):
        return {"n": len(y), "beta": np.nan, "t": np.nan, "p_ols": np.nan, "delta_r2": np.nan}
    z = (score - score.mean()) / sd
    nested, beta_full = _nested(y, reduced, z[:, None])
    beta = beta_full[-1]
    return {"n": len(y), "beta": float(beta), "t": float(np.sign(beta) * np.sqrt(max(nested["f_stat"], 0))),
            "p_ols": nested["p"], "delta_r2": nested["delta_r2"]}


def calibrated_p(t: float, null: np.ndarray) -> tuple[float, float, float]:
    """Two-sided p of ``t`` under a normal null estimated from control statistics ``null`` (mean, SD, p)."""
    null = null[np.isfinite(null)]
    if len(null) < MIN_CONTROLS or not np.isfinite(t):
        return np.nan, np.nan, np.nan
    mean, sd = float(null.mean()), float(null.std(ddof=1))
    scaled = (t - mean) / (sd * np.sqrt(1 + 1 / len(null)))
    return mean, sd, float(2 * stats.t.sf(abs(scaled), len(null) - 1))


def _head_tests(scores: pd.DataFrame, cognition: pd.DataFrame, confounders: pd.DataFrame | None,
                adjust_genotype: bool, score_column: str) -> pd.DataFrame:
    """score_t_test per head x measure of one method, each head adjusted for the other SNP heads' scores."""
    rows = []
    covariates = list(confounders.columns) if confounders is not None else []
    if adjust_genotype:
        covariates.append("genotype")
    snp_scores = scores[~scores["control"]].pivot_table(index=["FID", "IID"], columns="snp", values=score_column)
    snp_scores.columns = [f"_snp_score_{c}" for c in snp_scores.columns]
    for (snp, control), group in scores.groupby(["snp", "control"], sort=False):
        merged = group.set_index(["FID", "IID"]).join(cognition, how="inner").join(snp_scores, how="inner")
        if confounders is not None:
            merged = merged.join(confounders, how="inner")
        others = [c for c in snp_scores.columns if c != f"_snp_score_{snp}" or control]
        for measure in cognition.columns:
            used = merged[[measure, score_column] + covariates + others].dropna().astype(float)
            if len(used) < len(covariates) + len(others) + 4:
                continue
            reduced = np.column_stack([np.ones(len(used)), used[covariates + others].to_numpy()])
            rows.append({"snp": snp, "control": bool(control), "measure": measure,
                         **score_t_test(used[measure].to_numpy(), reduced, used[score_column].to_numpy())})
    return pd.DataFrame(rows)


def calibrate(tests: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Refer each head's t to the control heads' t of the same measure; correct over SNPs x measures."""
    parts = []
    for _, part in tests.groupby("measure", sort=False):
        part = part.copy()
        null = part.loc[part["control"], "t"].to_numpy()
        is_control = part["control"].to_numpy()
        results = []
        for k, (t, control) in enumerate(zip(part["t"], is_control)):
            # a control is referred to the other controls (leave one out), a SNP to all of them
            reference = np.delete(null, int(is_control[:k].sum())) if control else null
            results.append(calibrated_p(t, reference))
        part[["null_mean", "null_sd", "p_calibrated"]] = np.array(results, dtype=float).reshape(-1, 3)
        part["n_controls"] = int(np.isfinite(null).sum())
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    snp = ~table["control"]
    n_tests = table.loc[snp, "p_calibrated"].notna().sum()
    table["p_bonferroni"] = np.where(snp, (table["p_calibrated"] * n_tests).clip(upper=1), np.nan)
    table["q_fdr"] = np.nan
    table.loc[snp, "q_fdr"] = bh_qvalues(table.loc[snp, "p_calibrated"].to_numpy())
    table["significant"] = snp & (table["p_bonferroni"] < alpha)
    return table


def associate(scores: pd.DataFrame, cognition: pd.DataFrame, confounders: pd.DataFrame | None, *,
              adjust_genotype: bool = True, genotype_baseline: bool = True, alpha: float = 0.05) -> pd.DataFrame:
    """The association table for SCORES rows against cognition measures (both indexed by FID, IID)."""
    runs = [(method, group, adjust_genotype, "dosage") for method, group in scores.groupby("method", sort=False)]
    if genotype_baseline and len(runs):
        first = runs[0][1]  # every method scores the same held-out subjects and heads
        runs.append((GENOTYPE_METHOD, first.assign(method=GENOTYPE_METHOD), False, "genotype"))
    parts = []
    for method, group, adjust, column in runs:
        tests = _head_tests(group, cognition, confounders, adjust, column)
        if not tests.empty:
            parts.append(calibrate(tests, alpha).assign(method=method))
    if not parts:
        return pd.DataFrame(columns=ASSOC_COLUMNS)
    return pd.concat(parts, ignore_index=True)[ASSOC_COLUMNS]


def control_false_positive_rate(table: pd.DataFrame, alpha: float = 0.05) -> pd.Series:
    """Per method: fraction of control tests (heads x measures) with p_calibrated < alpha (ideal: alpha)."""
    controls = table[is_true(table["control"])]
    p = pd.to_numeric(controls["p_calibrated"])
    return (p < alpha).groupby(controls["method"]).mean()


def run_associate(scores_paths: list[str | Path], cognition_path: str | Path, out: str | Path, *,
                  measures: list[str] | None = None, confounders_path: str | Path | None = None,
                  covar_names: list[str] | None = None, adjust_genotype: bool = True, genotype_baseline: bool = True,
                  alpha: float = 0.05) -> pd.DataFrame:
    tables = [read_scores(p) for p in scores_paths]
    for path, table in zip(scores_paths, tables):
        if table.loc[table["control"], "snp"].nunique() < MIN_CONTROLS:
            raise GinnError(path, f"scores have fewer than {MIN_CONTROLS} negative-control heads to calibrate "
                                  "against; prepare with --n-controls")
    scores = pd.concat(tables, ignore_index=True)
    if measures is None:
        header = read_table(cognition_path, what="cognition").columns
        measures = [c for c in header if c not in ("FID", "IID", "#FID", "#IID")]
    cognition = read_sample_table(cognition_path, measures, what="phenotype")
    confounders = None
    if confounders_path:
        if covar_names is None:
            header = read_table(confounders_path, what="confounder").columns
            covar_names = [c for c in header if c not in ("FID", "IID", "#FID", "#IID")]
        confounders = read_sample_table(confounders_path, covar_names, what="confounder")
    table = associate(scores, cognition, confounders, adjust_genotype=adjust_genotype,
                      genotype_baseline=genotype_baseline, alpha=alpha)
    if table.empty:
        subjects = pd.MultiIndex.from_frame(scores[["FID", "IID"]].drop_duplicates())
        n = len(subjects.intersection(cognition.index if confounders is None else
                                      cognition.index.intersection(confounders.index)))
        n_covariates = (0 if confounders is None else confounders.shape[1]) + scores["snp"][~scores["control"]].nunique()
        raise GinnError(cognition_path, f"{n} scored subject(s) have cognition and confounder values, too few for "
                                        f"a model with about {n_covariates} covariates (check FID/IID, or score "
                                        "more subjects: --test-fraction of `bgs prepare`)")
    fpr = control_false_positive_rate(table, alpha)
    out = Path(out)
    with atomic_outputs() as outputs:
        write_tsv(outputs.file(out), table)
        params = dict(scores=[str(p) for p in scores_paths], cognition=str(cognition_path), measures=measures,
                      confounders=str(confounders_path) if confounders_path else None, covar_names=covar_names,
                      adjust_genotype=adjust_genotype, genotype_baseline=genotype_baseline, alpha=alpha, out=str(out))
        inputs = {f"scores{i}": p for i, p in enumerate(scores_paths)} | {"cognition": cognition_path}
        write_json(outputs.file(provenance_path(out)), provenance_record(
            "bgs associate", params, inputs=inputs, extra={"control_false_positive_rate": fpr.to_dict()}))
    log.info("bgs associate: %d SNP tests, %d significant beyond the controls; control false-positive rate at %g: %s",
             int((~table["control"]).sum()), int(table["significant"].sum()), alpha,
             ", ".join(f"{m} {v:.3f}" for m, v in fpr.items()))
    return table


@click.command("associate")
@stage_options("bgs associate")
def associate_command(scores_paths, cognition_path, measures, confounders_path, covar_names, out, **params):
    """Score-cognition OLS tests calibrated on negative-control heads; Bonferroni and FDR over SNPs x measures."""
    run_associate(list(scores_paths), cognition_path, out, measures=parse_list(measures, "--measures"),
                  confounders_path=confounders_path, covar_names=parse_list(covar_names, "--covar-name"), **params)
