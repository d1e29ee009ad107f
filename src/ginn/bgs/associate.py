"""``ginn bgs associate``: do brain-genotype scores explain cognition beyond the confounders?

For every method x SNP x cognition measure, two nested OLS models on the scored subjects: the reduced
model has an intercept and the confounders, the full model adds the score probabilities p0 and p2
(p1 = 1 - p0 - p2 is implied). The F-test of the extra columns gives the p-value; ΔR² is the
difference of the two R². Bonferroni and Benjamini-Hochberg FDR correct across all SNPs x measures of
one method, so CNN scores and each IDP baseline are judged on the same footing. ``--adjust-genotype``
adds the true genotype to both models (the authors' variant: information beyond the SNP itself).

``ASSOC.tsv``: method snp measure n df_num df_den f_stat p r2_reduced r2_full delta_r2 p_bonferroni
q_fdr significant.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np
import pandas as pd
from scipy import stats

from ..errors import GinnError
from ..files import atomic_outputs, provenance_path, provenance_record, read_table, write_json, write_tsv
from ..prepare import read_sample_table
from .images import parse_list
from .score import read_scores
from ..contract import stage_options

log = logging.getLogger(__name__)

ASSOC_COLUMNS = ["method", "snp", "measure", "n", "df_num", "df_den", "f_stat", "p", "r2_reduced", "r2_full",
                 "delta_r2", "p_bonferroni", "q_fdr", "significant"]


def _rss_and_rank(y: np.ndarray, x: np.ndarray) -> tuple[float, int]:
    beta, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ beta
    return float(residual @ residual), int(rank)


def nested_f_test(y: np.ndarray, reduced: np.ndarray, extra: np.ndarray) -> dict:
    """F-test of adding ``extra`` columns to the OLS design ``reduced`` (which includes the intercept)."""
    full = np.column_stack([reduced, extra])
    rss_r, rank_r = _rss_and_rank(y, reduced)
    rss_f, rank_f = _rss_and_rank(y, full)
    tss = float(((y - y.mean()) ** 2).sum())
    df_num, df_den = rank_f - rank_r, len(y) - rank_f
    if df_num <= 0 or df_den <= 0 or rss_f <= 0:
        f_stat, p = np.nan, np.nan
    else:
        f_stat = ((rss_r - rss_f) / df_num) / (rss_f / df_den)
        p = float(stats.f.sf(f_stat, df_num, df_den))
    return {"n": len(y), "df_num": df_num, "df_den": df_den, "f_stat": f_stat, "p": p,
            "r2_reduced": 1 - rss_r / tss, "r2_full": 1 - rss_f / tss, "delta_r2": (rss_r - rss_f) / tss}


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH q-values (NaN p-values stay NaN and do not count as tests)."""
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if ok.size:
        order = ok[np.argsort(p[ok])]
        ranked = p[order] * ok.size / np.arange(1, ok.size + 1)
        q[order] = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1)
    return q


def associate(scores: pd.DataFrame, cognition: pd.DataFrame, confounders: pd.DataFrame | None, *,
              adjust_genotype: bool = False, alpha: float = 0.05) -> pd.DataFrame:
    """The association table for SCORES rows against cognition measures (both indexed by FID, IID)."""
    rows = []
    for (method, snp), group in scores.groupby(["method", "snp"], sort=False):
        merged = group.set_index(["FID", "IID"]).join(cognition, how="inner")
        if confounders is not None:
            merged = merged.join(confounders, how="inner")
        covariates = list(confounders.columns) if confounders is not None else []
        if adjust_genotype:
            covariates.append("genotype")
        for measure in cognition.columns:
            used = merged[[measure, "p0", "p2"] + covariates].dropna().astype(float)
            if len(used) < len(covariates) + 4:
                continue
            reduced = np.column_stack([np.ones(len(used)), used[covariates].to_numpy()])
            result = nested_f_test(used[measure].to_numpy(), reduced, used[["p0", "p2"]].to_numpy())
            rows.append({"method": method, "snp": snp, "measure": measure, **result})
    table = pd.DataFrame(rows, columns=ASSOC_COLUMNS[:11])
    parts = []
    for _, part in table.groupby("method", sort=False):
        n_tests = part["p"].notna().sum()
        part = part.assign(p_bonferroni=(part["p"] * n_tests).clip(upper=1), q_fdr=benjamini_hochberg(part["p"].to_numpy()))
        parts.append(part.assign(significant=part["p_bonferroni"] < alpha))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=ASSOC_COLUMNS)


def run_associate(scores_paths: list[str | Path], cognition_path: str | Path, out: str | Path, *,
                  measures: list[str] | None = None, confounders_path: str | Path | None = None,
                  covar_names: list[str] | None = None, adjust_genotype: bool = False, alpha: float = 0.05
                  ) -> pd.DataFrame:
    scores = pd.concat([read_scores(p) for p in scores_paths], ignore_index=True)
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
    table = associate(scores, cognition, confounders, adjust_genotype=adjust_genotype, alpha=alpha)
    if table.empty:
        raise GinnError(cognition_path, "no scored subject has cognition (and confounder) values; check FID/IID")
    out = Path(out)
    with atomic_outputs() as outputs:
        write_tsv(outputs.file(out), table)
        params = dict(scores=[str(p) for p in scores_paths], cognition=str(cognition_path), measures=measures,
                      confounders=str(confounders_path) if confounders_path else None, covar_names=covar_names,
                      adjust_genotype=adjust_genotype, alpha=alpha, out=str(out))
        inputs = {f"scores{i}": p for i, p in enumerate(scores_paths)} | {"cognition": cognition_path}
        write_json(outputs.file(provenance_path(out)), provenance_record("bgs associate", params, inputs=inputs))
    log.info("bgs associate: %d tests, %d Bonferroni-significant", len(table), int(table["significant"].sum()))
    return table


@click.command("associate")
@stage_options("bgs associate")
def associate_command(scores_paths, cognition_path, measures, confounders_path, covar_names, adjust_genotype,
                      alpha, out):
    """Nested OLS F-tests of score probabilities on cognition beyond confounders, Bonferroni and FDR."""
    run_associate(list(scores_paths), cognition_path, out, measures=parse_list(measures),
                  confounders_path=confounders_path, covar_names=parse_list(covar_names),
                  adjust_genotype=adjust_genotype, alpha=alpha)
