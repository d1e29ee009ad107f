"""``ginn bgs score``: brain-genotype scores of held-out subjects and how well they predict the genotype.

The scores are each head's three class probabilities and the expected dosage ``p1 + 2 p2``; the negative
-control heads are scored too (``control`` true; their ``genotype`` is the permuted label). Per SNP we
report the balanced accuracy with a percentile-bootstrap 95% CI (chance is 1 / number of classes
present), macro F1, Matthews' correlation, the Pearson correlation of expected and true dosage with a
Fisher-z 95% CI and p-value, and calibration: top-label and per-class (one-vs-rest) expected calibration
error over 10 equal-width bins, the multi-class Brier score, and reliability plots per class. The same
tables are written for the IDP baselines (``bgs idp``), so methods compare row by row.

``SCORES.tsv``: method FID IID snp control genotype p0 p1 p2 dosage predicted (one row per subject and head).
``SCORES.metrics.tsv`` (SNPs only): method snp n chance balanced_accuracy bacc_lo bacc_hi macro_f1 mcc
dosage_r r_lo r_hi r_p ece ece_class0 ece_class1 ece_class2 brier. ``SCORES.reliability.png``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import f1_score, matthews_corrcoef

from ..errors import GinnError
from ..files import atomic_outputs, is_true, provenance_path, provenance_record, read_table, write_json, write_tsv
from .images import BgsData
from ..contract import stage_options
from ..device import resolve_device

log = logging.getLogger(__name__)

SCORE_COLUMNS = ["method", "FID", "IID", "snp", "control", "genotype", "p0", "p1", "p2", "dosage", "predicted"]
_BOOTSTRAPS = 2000
_ECE_BINS = 10
_CONSTANT = 1e-9  # a head predicting one constant distribution varies by float rounding alone


def bootstrap_balanced_accuracy(truth: np.ndarray, predicted: np.ndarray, rng: np.random.Generator,
                                n_boot: int = _BOOTSTRAPS) -> tuple[float, float]:
    """Percentile 95% CI of the balanced accuracy, resampling subjects with replacement."""
    weights = rng.multinomial(len(truth), np.full(len(truth), 1 / len(truth)), size=n_boot).astype(float)
    recalls = []
    for c in np.unique(truth):
        in_class = (truth == c).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            recalls.append((weights @ (in_class * (predicted == c))) / (weights @ in_class))
    boot = np.nanmean(np.stack(recalls), axis=0)
    return float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def reliability_bins(p: np.ndarray, hit: np.ndarray, n_bins: int = _ECE_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal-width bins of the predicted probabilities ``p`` (the used ones): each bin's share of the
    subjects, mean predicted probability and observed frequency of ``hit``."""
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    used = [bins == b for b in np.unique(bins)]
    return (np.array([members.mean() for members in used]), np.array([p[members].mean() for members in used]),
            np.array([hit[members].mean() for members in used]))


def _calibration_error(p: np.ndarray, hit: np.ndarray, n_bins: int) -> float:
    share, predicted, observed = reliability_bins(p, hit, n_bins)
    return float(sum(w * abs(o - q) for w, o, q in zip(share, observed, predicted)))


def expected_calibration_error(truth: np.ndarray, probabilities: np.ndarray, n_bins: int = _ECE_BINS) -> float:
    """Top-label ECE: |accuracy - confidence| averaged over equal-width confidence bins, weighted by size."""
    return _calibration_error(probabilities.max(axis=1), probabilities.argmax(axis=1) == truth, n_bins)


def classwise_calibration_error(truth: np.ndarray, probabilities: np.ndarray, n_bins: int = _ECE_BINS
                                ) -> np.ndarray:
    """Per-class ECE: for each class c, |frequency of c - mean p_c| over equal-width bins of p_c, size-weighted."""
    return np.array([_calibration_error(probabilities[:, c], truth == c, n_bins)
                     for c in range(probabilities.shape[1])])


def brier_score(truth: np.ndarray, probabilities: np.ndarray) -> float:
    """Multi-class Brier score: mean over subjects of the squared distance to the one-hot truth."""
    onehot = np.eye(probabilities.shape[1])[truth]
    return float(((probabilities - onehot) ** 2).sum(axis=1).mean())


def genotype_metrics(truth: np.ndarray, probabilities: np.ndarray, rng: np.random.Generator) -> dict:
    """All per-SNP metrics for called genotypes ``truth`` (0/1/2) and probabilities (n, 3)."""
    predicted = probabilities.argmax(axis=1)
    dosage = probabilities[:, 1] + 2 * probabilities[:, 2]
    n_classes = len(np.unique(truth))
    recalls = [(predicted[truth == c] == c).mean() for c in np.unique(truth)]
    lo, hi = bootstrap_balanced_accuracy(truth, predicted, rng)
    if np.ptp(dosage) > _CONSTANT and np.ptp(truth) > 0 and len(truth) > 3:
        r, p = stats.pearsonr(dosage, truth)
        half = 1.959964 / np.sqrt(len(truth) - 3)
        r_lo, r_hi = np.tanh(np.arctanh(r) - half), np.tanh(np.arctanh(r) + half)
    else:
        r = p = r_lo = r_hi = np.nan
    return {"n": len(truth), "chance": 1 / n_classes, "balanced_accuracy": float(np.mean(recalls)),
            "bacc_lo": lo, "bacc_hi": hi, "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
            "mcc": float(matthews_corrcoef(truth, predicted)), "dosage_r": r, "r_lo": r_lo, "r_hi": r_hi, "r_p": p,
            "ece": expected_calibration_error(truth, probabilities),
            **{f"ece_class{c}": e for c, e in enumerate(classwise_calibration_error(truth, probabilities))},
            "brier": brier_score(truth, probabilities)}


def score_table(method: str, samples: pd.DataFrame, heads: list[str], n_snps: int, labels: np.ndarray,
                probabilities: np.ndarray) -> pd.DataFrame:
    """Long SCORES table from (n, H) labels and (n, H, 3) probabilities of the same subjects; heads past
    the first ``n_snps`` are negative controls."""
    n, s = labels.shape
    return pd.DataFrame({
        "method": method, "FID": np.repeat(samples["FID"].to_numpy(), s), "IID": np.repeat(samples["IID"].to_numpy(), s),
        "snp": np.tile(heads, n), "control": np.tile(np.arange(s) >= n_snps, n),
        "genotype": np.where(labels < 0, np.nan, labels).ravel(),
        "p0": probabilities[..., 0].ravel(), "p1": probabilities[..., 1].ravel(), "p2": probabilities[..., 2].ravel(),
        "dosage": (probabilities[..., 1] + 2 * probabilities[..., 2]).ravel(),
        "predicted": probabilities.argmax(axis=2).ravel()})


def metrics_table(method: str, snps: list[str], genotypes: np.ndarray, probabilities: np.ndarray,
                  seed: int) -> pd.DataFrame:
    rows = []
    for j, snp in enumerate(snps):
        called = genotypes[:, j] >= 0
        if called.sum() < 2:
            continue
        rng = np.random.default_rng([seed, j])
        rows.append({"method": method, "snp": snp,
                     **genotype_metrics(genotypes[called, j].astype(int), probabilities[called, j], rng)})
    return pd.DataFrame(rows)


def metrics_path(scores_path: str | Path) -> Path:
    """``X.metrics.tsv`` beside ``X.tsv``."""
    scores_path = Path(scores_path)
    return scores_path.with_name(scores_path.name.removesuffix(".tsv") + ".metrics.tsv")


def plot_reliability(method: str, snps: list[str], genotypes: np.ndarray, probabilities: np.ndarray, path: Path,
                     n_bins: int = _ECE_BINS) -> None:
    """Reliability diagram per genotype class: observed frequency against mean predicted probability per bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), sharey=True)
    for c, ax in enumerate(axes):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
        for j, snp in enumerate(snps):
            called = genotypes[:, j] >= 0
            _, predicted, observed = reliability_bins(probabilities[called, j, c], genotypes[called, j] == c, n_bins)
            ax.plot(predicted, observed, marker="o", ms=3, label=snp)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=f"predicted P(genotype {c})", title=f"class {c}")
    axes[0].set_ylabel("observed frequency")
    axes[-1].legend(fontsize=7)
    fig.suptitle(f"Reliability, {method} (held-out subjects, {n_bins} equal-width bins)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def reliability_path(scores_path: str | Path) -> Path:
    """``X.reliability.png`` beside ``X.tsv``."""
    scores_path = Path(scores_path)
    return scores_path.with_name(scores_path.name.removesuffix(".tsv") + ".reliability.png")


def write_scores(out: str | Path, method: str, data: BgsData, rows: np.ndarray, probabilities: np.ndarray,
                 provenance: dict, seed: int) -> pd.DataFrame:
    """One method's scores of ``rows`` (class probabilities of every head): SCORES.tsv, its metrics, the
    reliability plot of the SNP heads and the provenance record, written atomically; returns the metrics."""
    n_snps = len(data.snps)
    scores = score_table(method, data.samples.iloc[rows], data.heads, n_snps, data.labels[rows], probabilities)
    genotypes = data.genotypes[rows]
    metrics = metrics_table(method, data.snps, genotypes, probabilities[:, :n_snps], seed)
    out = Path(out)
    with atomic_outputs() as outputs:
        write_tsv(outputs.file(out), scores)
        write_tsv(outputs.file(metrics_path(out)), metrics)
        plot_reliability(method, data.snps, genotypes, probabilities[:, :n_snps], outputs.file(reliability_path(out)))
        write_json(outputs.file(provenance_path(out)), provenance)
    return metrics


def read_scores(path: str | Path) -> pd.DataFrame:
    """A SCORES table with numeric probability columns."""
    table = read_table(path, required=SCORE_COLUMNS, what="scores")
    for col in ("genotype", "p0", "p1", "p2", "dosage", "predicted"):
        table[col] = pd.to_numeric(table[col], errors="coerce")
    table["control"] = is_true(table["control"])
    if table[["p0", "p1", "p2"]].isna().any().any():
        raise GinnError(path, "scores has missing or non-numeric probabilities")
    return table


def check_model_matches(config: dict, data: BgsData, model_path: str | Path) -> None:
    """The model must predict this folder's SNPs and controls on its grid."""
    if (config["snps"] != data.snps or config.get("controls", []) != data.control_names
            or list(config["shape"]) != list(data.grid.shape)):
        raise GinnError(model_path, "model was trained on other SNPs, controls or another image grid than this "
                                    "data folder")


def run_score(data_path: str | Path, model_path: str | Path, out: str | Path, *, split: str = "test",
              batch_size: int = 16, device: str = "auto", seed: int = 1) -> pd.DataFrame:
    # torch comes in here only: `bgs associate` and `bgs idp` import this module for its tables
    from .model import load_trained, predict_proba

    data = BgsData.load(data_path)
    device = resolve_device(device)
    model, config = load_trained(model_path, device)
    check_model_matches(config, data, model_path)
    rows = data.rows(split)
    if not len(rows):
        raise GinnError(data_path, f"no subject in split {split!r}")
    probabilities = predict_proba(model, data, rows, batch_size, device)
    metrics = write_scores(out, f"cnn-{config['arch']}", data, rows, probabilities, provenance_record(
        "bgs score", {"data": str(data_path), "model": str(model_path), "split": split, "out": str(out)},
        inputs={"data": data_path, "model": model_path}, seed=seed), seed)
    log.info("bgs score: %d subjects x %d SNPs; mean balanced accuracy %.3f", len(rows), len(data.snps),
             metrics["balanced_accuracy"].mean())
    return metrics


@click.command("score")
@stage_options("bgs score")
def score_command(data_path, model_path, out, **params):
    """Brain-genotype scores (class probabilities, expected dosage) of held-out subjects, with metrics."""
    from ..threads import use_threads  # imports torch, which `bgs associate` and `bgs idp` do not need

    use_threads(params.pop("threads"))
    run_score(data_path, model_path, out, **params)
