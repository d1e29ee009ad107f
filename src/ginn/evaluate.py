"""``ginn evaluate``: how well a results table recovers the simulated truth (the paper's Figs. 2-5).

* ranking: average precision (area under the precision-recall curve, step-wise as in the paper's PRC)
  and AUROC of the pairs ranked by score against the true interactions;
* calls: per dataset the false discovery proportion (FDP) and power of the ``called`` pairs (FDR
  control: mean FDP <= the target), and whether any non-interacting pair has ``p_pair_fwer <= alpha``
  (family-wise error) with the power of those calls;
* decisions: power (true positive rate) and specificity (true negative rate) of p <= alpha, per
  p-value column (``p_pair``: the per-pair test, ``global_p_maxt``: Perm I's global maxT);
* calibration: the fraction of non-interacting pairs with p <= t for nominal levels t. On null
  simulations (Eq. 3) every pair is non-interacting and a calibrated test gives the diagonal.

Several results/truth pairs (e.g. 20 simulated datasets) can be given at once: AP and AUROC are
computed per dataset and averaged, decisions and calibration are pooled over all pairs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np
import pandas as pd

from .errors import GinnError
from .files import atomic_outputs, is_true, provenance_path, provenance_record, read_table, write_json, write_tsv
from .permtest import pair_key, pair_label

log = logging.getLogger(__name__)

# p-value column -> the name its power/specificity/calibration columns carry
P_COLUMNS = {"p_pair": "pair", "global_p_maxt": "global_maxt"}
CALIBRATION_LEVELS = np.round(np.concatenate([np.arange(0.01, 0.1, 0.01), np.arange(0.1, 1.0001, 0.05)]), 4)
_TRUE_WORDS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


# --------------------------------------------------------------------------------------------------
# Ranking metrics (numpy; checked against scikit-learn in the tests)
# --------------------------------------------------------------------------------------------------

def _cumulative_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives when calling every pair with score >= t, for each distinct t (high first)."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tps = np.cumsum(labels)[last_of_tie]
    fps = last_of_tie + 1 - tps
    return tps, fps


def precision_recall_curve(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    tps, fps = _cumulative_counts(labels, scores)
    return tps / (tps + fps), tps / max(tps[-1], 1)


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate), starting at (0, 0)."""
    tps, fps = _cumulative_counts(labels, scores)
    return np.r_[0.0, fps / max(fps[-1], 1)], np.r_[0.0, tps / max(tps[-1], 1)]


def average_precision(labels, scores) -> float:
    """sum_k (R_k - R_{k-1}) P_k over distinct thresholds; NaN without a positive."""
    precision, recall = precision_recall_curve(labels, scores)
    if not np.asarray(labels, dtype=bool).any():
        return float("nan")
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(labels, scores) -> float:
    """Trapezoidal area under the ROC curve (ties count half); NaN without both classes."""
    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return float("nan")
    fpr, tpr = roc_curve(labels, scores)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


# --------------------------------------------------------------------------------------------------
# Reading and joining
# --------------------------------------------------------------------------------------------------

def read_truth(path: str | Path) -> pd.DataFrame:
    truth = read_table(path, required=["gene_a", "gene_b", "interacting"], what="truth")
    words = truth["interacting"].astype(str).str.lower().map(_TRUE_WORDS)
    if words.isna().any():
        raise GinnError(path, f"interacting must be 1/0 or true/false, not {truth['interacting'][words.isna()].iloc[0]!r}")
    return pd.DataFrame({"pair": pair_key(truth), "interacting": words.astype(bool)})


def join_results(results_path: str | Path, truth: pd.DataFrame) -> pd.DataFrame:
    """Results rows with their truth label; every truth pair must be scored exactly once."""
    results = read_table(results_path, required=["gene_a", "gene_b", "score"], what="results")
    table = pd.DataFrame({"pair": pair_key(results)})
    for column in ("score", "p_pair_fwer", *P_COLUMNS):
        if column in results.columns:
            table[column] = pd.to_numeric(results[column], errors="coerce")
    if "called" in results.columns:
        table["called"] = is_true(results["called"])
    if table["score"].isna().any():
        raise GinnError(results_path, "score is missing or not a number on some rows")
    repeated = table["pair"][table["pair"].duplicated()]
    if len(repeated):
        raise GinnError(results_path, f"pair {pair_label(repeated.iloc[0])} appears twice")
    joined = table.merge(truth, on="pair", how="outer", indicator=True)
    unscored = joined["_merge"] == "right_only"
    if unscored.any():
        raise GinnError(results_path, f"{int(unscored.sum())} truth pair(s) have no score, e.g. "
                                      f"{pair_label(joined['pair'][unscored].iloc[0])}")
    unknown = joined["_merge"] == "left_only"
    if unknown.any():
        raise GinnError(results_path, f"{int(unknown.sum())} scored pair(s) are not in the truth table, e.g. "
                                      f"{pair_label(joined['pair'][unknown].iloc[0])}")
    return joined.drop(columns="_merge")


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------

def decision_metrics(joined: pd.DataFrame, alpha: float, columns: dict[str, str] = P_COLUMNS) -> dict[str, float]:
    """Power and specificity of p <= alpha for each p-value column of ``columns`` (name -> suffix of
    the metric), NaN where the column is absent or the truth has no such pairs.

    <= because permutation p-values are (b+1)/(B+1): P(p <= alpha) = floor(alpha (B+1))/(B+1) <= alpha
    under the null, while p < alpha could never reject with B = 19 and alpha = 0.05."""
    out = {}
    for column, suffix in columns.items():
        p = joined[column] if column in joined.columns else pd.Series(np.nan, index=joined.index)
        called = p.to_numpy() <= alpha
        known = p.notna().to_numpy()
        positives, negatives = joined["interacting"].to_numpy() & known, ~joined["interacting"].to_numpy() & known
        out[f"power_{suffix}"] = called[positives].mean() if positives.any() else np.nan
        out[f"specificity_{suffix}"] = 1 - called[negatives].mean() if negatives.any() else np.nan
    return out


def call_metrics(joined: pd.DataFrame, alpha: float) -> dict[str, float]:
    """One dataset's calls: number called, false discovery proportion (0 when nothing is called) and
    power of ``called``; family-wise error (any non-interacting pair with p_pair_fwer <= alpha) and
    the power of those calls. NaN where the method has no per-pair test."""
    truth = joined["interacting"].to_numpy(dtype=bool)
    out = {"n_called": np.nan, "fdp": np.nan, "power_called": np.nan, "fwer_error": np.nan, "power_fwer": np.nan}
    if "p_pair" not in joined.columns or joined["p_pair"].isna().all():
        return out
    if "called" in joined.columns:
        called = joined["called"].to_numpy(dtype=bool)
        out["n_called"] = int(called.sum())
        out["fdp"] = float((called & ~truth).sum() / max(1, called.sum()))
        out["power_called"] = float((called & truth).sum() / truth.sum()) if truth.any() else np.nan
    if "p_pair_fwer" in joined.columns:
        family = joined["p_pair_fwer"].to_numpy() <= alpha
        out["fwer_error"] = float((family & ~truth).any())
        out["power_fwer"] = float((family & truth).sum() / truth.sum()) if truth.any() else np.nan
    return out


def evaluate(results_paths: list[str | Path], truth_paths: list[str | Path], alpha: float = 0.05
             ) -> tuple[pd.DataFrame, pd.DataFrame, list[pd.DataFrame]]:
    """(metrics per dataset plus the summary rows, calibration table, joined tables)."""
    if len(truth_paths) not in (1, len(results_paths)):
        raise GinnError("--truth", f"give one truth table or one per results table ({len(results_paths)})")
    truths = [read_truth(p) for p in truth_paths]
    joined = [join_results(r, truths[0] if len(truths) == 1 else truths[i]) for i, r in enumerate(results_paths)]
    rows = []
    for path, table in zip(results_paths, joined):
        labels, scores = table["interacting"].to_numpy(), table["score"].to_numpy()
        rows.append({"results": str(path), "n_pairs": len(table), "n_true": int(labels.sum()),
                     "ap": average_precision(labels, scores), "auroc": roc_auc(labels, scores),
                     **call_metrics(table, alpha), **decision_metrics(table, alpha)})
    per_dataset = pd.DataFrame(rows)
    pooled = pd.concat(joined, ignore_index=True)
    summary = {"results": "mean", "n_pairs": int(per_dataset["n_pairs"].sum()),
               "n_true": int(per_dataset["n_true"].sum()), "ap": per_dataset["ap"].mean(),
               "auroc": per_dataset["auroc"].mean(),
               **{key: per_dataset[key].mean() for key in ("n_called", "fdp", "power_called", "fwer_error", "power_fwer")},
               **decision_metrics(pooled, alpha)}
    metrics = pd.concat([per_dataset, pd.DataFrame([summary])], ignore_index=True)
    null_pairs = pooled[~pooled["interacting"]]
    calibration = pd.DataFrame({"nominal": CALIBRATION_LEVELS})
    for column, suffix in P_COLUMNS.items():
        p = null_pairs[column].dropna().to_numpy() if column in null_pairs.columns else np.array([])
        calibration[f"fpr_{suffix}"] = (
            [(p <= t).mean() for t in CALIBRATION_LEVELS] if p.size else np.nan)
    calibration["n_null_pairs"] = len(null_pairs)
    return metrics, calibration, joined


def plot_evaluation(path: Path, joined: list[pd.DataFrame], metrics: pd.DataFrame, calibration: pd.DataFrame,
                    title: str) -> None:
    """PR curves, ROC curves and the calibration curve of p-values on non-interacting pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    summary = metrics.iloc[-1]
    for table in joined:
        labels, scores = table["interacting"].to_numpy(), table["score"].to_numpy()
        if labels.any():
            precision, recall = precision_recall_curve(labels, scores)
            axes[0].step(np.r_[0, recall], np.r_[precision[0], precision], where="pre", alpha=0.5, color="C0")
        if labels.any() and not labels.all():
            fpr, tpr = roc_curve(labels, scores)
            axes[1].plot(fpr, tpr, alpha=0.5, color="C1")
    axes[0].set(xlabel="recall", ylabel="precision", title=f"PRC (mean AP {summary['ap']:.3f})", xlim=(0, 1),
                ylim=(0, 1.02))
    axes[1].plot([0, 1], [0, 1], ls="--", color="grey")
    axes[1].set(xlabel="false positive rate", ylabel="true positive rate",
                title=f"ROC (mean AUROC {summary['auroc']:.3f})", xlim=(0, 1), ylim=(0, 1.02))
    axes[2].plot([0, 1], [0, 1], ls="--", color="tab:blue", label="ideal")
    for (column, suffix), colour in zip(P_COLUMNS.items(), ("tab:red", "tab:purple")):
        fpr = calibration[f"fpr_{suffix}"]
        if fpr.notna().any():
            axes[2].plot(calibration["nominal"], fpr, marker=".", color=colour, label=column)
    axes[2].set(xlabel="p-value threshold", ylabel="false positive rate",
                title=f"calibration ({int(calibration['n_null_pairs'].iloc[0])} null pairs)", xlim=(0, 1), ylim=(0, 1))
    axes[2].legend(loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


@click.command("evaluate")
@click.option("--results", "results_paths", required=True, multiple=True, type=click.Path(dir_okay=False),
              help="RESULTS.tsv (gene_a gene_b score [p_pair p_pair_fwer called global_p_maxt]) from `ginn test` "
                   "or `ginn baselines`; "
                   "repeat for several simulated datasets.")
@click.option("--truth", "truth_paths", required=True, multiple=True, type=click.Path(dir_okay=False),
              help="TRUTH.tsv (gene_a gene_b interacting) from `ginn simulate`: one, or one per --results.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True), default=0.05, show_default=True,
              help="Level of the family-wise calls (p_pair_fwer <= alpha) and of p <= alpha for power and specificity.")
@click.option("--title", default=None, help="Figure title [default: the first results file name].")
@click.option("--out", required=True, type=click.Path(),
              help="Output prefix: EVAL.tsv (AP, AUROC, power, specificity per dataset and their mean), "
                   "EVAL.calibration.tsv, EVAL.png, EVAL.provenance.json.")
def evaluate_command(results_paths, truth_paths, alpha, title, out):
    """Score a gene-pair ranking against the simulated truth: AP, AUROC, power, specificity, calibration.

    AP and AUROC rank pairs by score (per dataset, then averaged over datasets). FDP and power of the
    called pairs, and the family-wise error of p_pair_fwer <= alpha, per dataset and averaged. Power
    and specificity count p <= alpha with p_pair and global_p_maxt (pooled). The calibration curve is the
    fraction of non-interacting pairs with p <= t; on null simulations it should follow the diagonal.
    """
    metrics, calibration, joined = evaluate(list(results_paths), list(truth_paths), alpha)
    prefix = Path(out)
    inputs = {f"results_{i + 1}": p for i, p in enumerate(results_paths)}
    inputs.update({f"truth_{i + 1}": p for i, p in enumerate(truth_paths)})
    with atomic_outputs() as outputs:
        write_tsv(outputs.file(f"{prefix}.tsv"), metrics)
        write_tsv(outputs.file(f"{prefix}.calibration.tsv"), calibration)
        plot_evaluation(outputs.file(f"{prefix}.png"), joined, metrics, calibration,
                        title or Path(results_paths[0]).name)
        write_json(outputs.file(provenance_path(prefix)),
                   provenance_record("evaluate", {"results": list(results_paths), "truth": list(truth_paths),
                                                  "alpha": alpha, "out": out}, inputs=inputs,
                                     extra={"summary": metrics.iloc[-1].to_dict()}))
    summary = metrics.iloc[-1]
    log.info("evaluate: %d dataset(s): AP %.3f, AUROC %.3f, mean FDP of the calls %.3f, power %.3f -> %s.*",
             len(results_paths), summary["ap"], summary["auroc"], summary["fdp"], summary["power_called"], prefix)
