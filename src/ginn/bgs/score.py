"""``ginn bgs score``: brain-genotype scores of held-out subjects and how well they predict the genotype.

The scores are each SNP's three class probabilities and the expected dosage ``p1 + 2 p2``. Per SNP we
report the balanced accuracy with a percentile-bootstrap 95% CI (chance is 1 / number of classes
present), Matthews' correlation, the Pearson correlation of expected and true dosage with a Fisher-z 95%
CI and p-value, and calibration: top-label expected calibration error over 10 equal-width confidence
bins and the multi-class Brier score. The same table is written for the IDP baselines (``bgs idp``),
so methods compare row by row.

``SCORES.tsv``: method FID IID snp genotype p0 p1 p2 dosage predicted (one row per subject and SNP).
``SCORES.metrics.tsv``: method snp n chance balanced_accuracy bacc_lo bacc_hi mcc dosage_r r_lo r_hi r_p
ece brier.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import matthews_corrcoef

from ..errors import GinnError
from ..files import atomic_outputs, provenance_path, provenance_record, read_table, write_json, write_tsv
from .images import BgsData
from ..contract import stage_options
from ..device import resolve_device

log = logging.getLogger(__name__)

SCORE_COLUMNS = ["method", "FID", "IID", "snp", "genotype", "p0", "p1", "p2", "dosage", "predicted"]
_BOOTSTRAPS = 2000
_ECE_BINS = 10
_CONSTANT = 1e-9  # a prior-only (gated) head's expected dosage varies by float rounding alone


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


def expected_calibration_error(truth: np.ndarray, probabilities: np.ndarray, n_bins: int = _ECE_BINS) -> float:
    """Top-label ECE: |accuracy - confidence| averaged over equal-width confidence bins, weighted by size."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == truth
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        members = bins == b
        ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


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
            "bacc_lo": lo, "bacc_hi": hi, "mcc": float(matthews_corrcoef(truth, predicted)),
            "dosage_r": r, "r_lo": r_lo, "r_hi": r_hi, "r_p": p,
            "ece": expected_calibration_error(truth, probabilities), "brier": brier_score(truth, probabilities)}


def informative_heads(genotypes: np.ndarray, probabilities: np.ndarray, alpha: float = 0.05) -> pd.DataFrame:
    """Which SNPs' scores carry genotype information, judged on validation subjects.

    A score is kept when its expected dosage correlates positively with the called genotype at one-sided
    p < alpha / S (Bonferroni over the S SNPs). Scores of the other SNPs are replaced by the class prior
    (a constant): a head that does not predict its SNP still reads the shared image features, and would
    otherwise "associate" with anything those features carry (e.g. cognition through other SNPs' regions).
    """
    rows = []
    for j in range(genotypes.shape[1]):
        called = genotypes[:, j] >= 0
        truth = genotypes[called, j]
        dosage = probabilities[called, j, 1] + 2 * probabilities[called, j, 2]
        if called.sum() > 3 and np.ptp(truth) > 0 and np.ptp(dosage) > _CONSTANT:
            r, p_two = stats.pearsonr(dosage, truth)
            p = p_two / 2 if r > 0 else 1 - p_two / 2
        else:
            r, p = np.nan, 1.0
        rows.append({"val_dosage_r": r, "val_p": p, "informative": p < alpha / genotypes.shape[1]})
    return pd.DataFrame(rows)


def class_prior(genotypes: np.ndarray) -> np.ndarray:
    """(S, 3) genotype class frequencies among called genotypes, add-one smoothed (never 0 or 1)."""
    return np.stack([(np.bincount(g[g >= 0], minlength=3) + 1) / ((g >= 0).sum() + 3) for g in genotypes.T])


def score_table(method: str, samples: pd.DataFrame, snps: list[str], genotypes: np.ndarray,
                probabilities: np.ndarray) -> pd.DataFrame:
    """Long SCORES table from (n, S) genotypes and (n, S, 3) probabilities of the same subjects."""
    n, s = genotypes.shape
    return pd.DataFrame({
        "method": method, "FID": np.repeat(samples["FID"].to_numpy(), s), "IID": np.repeat(samples["IID"].to_numpy(), s),
        "snp": np.tile(snps, n), "genotype": np.where(genotypes < 0, np.nan, genotypes).ravel(),
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


def write_scores(outputs, out: Path, scores: pd.DataFrame, metrics: pd.DataFrame, provenance: dict) -> None:
    write_tsv(outputs.file(out), scores)
    write_tsv(outputs.file(metrics_path(out)), metrics)
    write_json(outputs.file(provenance_path(out)), provenance)


def read_scores(path: str | Path) -> pd.DataFrame:
    """A SCORES table with numeric probability columns."""
    table = read_table(path, required=SCORE_COLUMNS, what="scores")
    for col in ("genotype", "p0", "p1", "p2", "dosage", "predicted"):
        table[col] = pd.to_numeric(table[col], errors="coerce")
    if table[["p0", "p1", "p2"]].isna().any().any():
        raise GinnError(path, "scores has missing or non-numeric probabilities")
    return table


def run_score(data_path: str | Path, model_path: str | Path, out: str | Path, *, split: str = "test",
              batch_size: int = 16, device: str = "auto", seed: int = 1) -> pd.DataFrame:
    # torch comes in here only: `bgs associate` and `bgs idp` import this module for its tables
    from .model import load_trained, predict_proba

    data = BgsData.load(data_path)
    device = resolve_device(device)
    model, config = load_trained(model_path, device)
    if config["snps"] != data.snps or list(config["shape"]) != list(data.grid.shape):
        raise GinnError(model_path, "model was trained on other SNPs or another image grid than this data folder")
    rows = data.rows(split)
    if not len(rows):
        raise GinnError(data_path, f"no subject in split {split!r}")
    probabilities = predict_proba(model, data, rows, batch_size, device)
    method = f"cnn-{config['arch']}"
    genotypes = data.genotypes[rows]
    scores = score_table(method, data.samples.iloc[rows], data.snps, genotypes, probabilities)
    metrics = metrics_table(method, data.snps, genotypes, probabilities, seed)
    informative = config.get("informative", {})
    metrics["informative"] = [bool(informative.get(snp, True)) for snp in metrics["snp"]]
    out = Path(out)
    with atomic_outputs() as outputs:
        write_scores(outputs, out, scores, metrics, provenance_record(
            "bgs score", {"data": str(data_path), "model": str(model_path), "split": split, "out": str(out)},
            inputs={"data": data_path, "model": model_path}, seed=seed))
    log.info("bgs score: %d subjects x %d SNPs; mean balanced accuracy %.3f", len(rows), len(data.snps),
             metrics["balanced_accuracy"].mean())
    return metrics


@click.command("score")
@stage_options("bgs score")
def score_command(data_path, model_path, out, **params):
    """Brain-genotype scores (class probabilities, expected dosage) of held-out subjects, with metrics."""
    run_score(data_path, model_path, out, **params)
