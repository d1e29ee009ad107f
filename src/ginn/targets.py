"""Training targets: the observed phenotype or permuted datasets for the permutation test.

Perm I (the paper's proposal, Methods › Permutation test of interaction) keeps the main effects a
main-effect NN predicts and permutes only what it leaves over: y_k = y_hat + pi_k(y - y_hat).
Perm T permutes the phenotype, y_k = pi_k(y); Perm R permutes the residual, y_k = pi_k(y - y_hat).
Permutation k is ``np.random.default_rng([seed, k])`` applied within the training rows and then
within the test rows, so that the split keeps its own values and permutation k can be rebuilt from
(seed, k) alone, e.g. by a later job that trains only permutations 21-40.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from .contract.stages import MAX_PERMUTATIONS
from .errors import GinnError

log = logging.getLogger(__name__)

TARGET_KINDS = ("observed", "perm-I", "perm-T", "perm-R")
NEEDS_NULL_MODEL = ("perm-I", "perm-R")


def parse_permutations(text: str | None) -> list[int]:
    """``A-B`` (inclusive) or ``A`` -> permutation indices; indices are >= 1."""
    if text is None:
        raise GinnError("--permutations", "permuted targets need --permutations A-B (e.g. 1-50)")
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(text))
    if not match:
        raise GinnError("--permutations", f"expected A-B with integers A <= B (e.g. 1-50), not {text!r}")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    if first < 1 or last < first:
        raise GinnError("--permutations", f"range {text!r} is empty or starts below 1 (use A-B with 1 <= A <= B)")
    if last > MAX_PERMUTATIONS:
        raise GinnError("--permutations", f"range {text!r} goes beyond permutation {MAX_PERMUTATIONS:,}, the most ginn runs")
    return list(range(first, last + 1))


def permutation(is_test: np.ndarray, seed: int, k: int) -> np.ndarray:
    """Row order of permutation k: ``out[i]`` is the row whose value row i receives; training rows
    only receive training rows' values and test rows test rows' values."""
    rng = np.random.default_rng([int(seed), int(k)])
    order = np.arange(len(is_test))
    for rows in (np.flatnonzero(~is_test), np.flatnonzero(is_test)):
        order[rows] = rows[rng.permutation(len(rows))]
    return order


def dataset_name(k: int | None) -> str:
    """Name of a target in SCORES.tsv / ensemble.json: ``observed`` or ``perm-<k>``."""
    return "observed" if k is None else f"perm-{k}"


def build_targets(y: np.ndarray, is_test: np.ndarray, kind: str, seed: int,
                  permutations: list[int] | None = None,
                  null_prediction: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """The (N, D) float32 target matrix and the D dataset names for one ``ginn train`` run."""
    y = np.asarray(y, dtype=np.float64)
    if kind not in TARGET_KINDS:
        raise GinnError("--target", f"unknown target {kind!r} (choose from {', '.join(TARGET_KINDS)})")
    if kind == "observed":
        return y.astype(np.float32)[:, None], [dataset_name(None)]
    if not permutations:
        raise GinnError("--permutations", f"--target {kind} needs --permutations A-B")
    if kind in NEEDS_NULL_MODEL and null_prediction is None:
        raise GinnError("--null-model", f"--target {kind} needs --null-model DIR (a `ginn train --model main` ensemble)")
    if kind == "perm-T":
        kept, permuted = np.zeros_like(y), y
    else:
        residual = y - np.asarray(null_prediction, dtype=np.float64)
        kept = np.asarray(null_prediction, dtype=np.float64) if kind == "perm-I" else np.zeros_like(y)
        permuted = residual
    columns = [kept + permuted[permutation(is_test, seed, k)] for k in permutations]
    return np.stack(columns, axis=1).astype(np.float32), [dataset_name(k) for k in permutations]


def null_model_prediction(null_model: str | Path, dataset) -> np.ndarray:
    """Ensemble-mean prediction y_hat of a trained main-effect NN on every row of ``dataset``."""
    from .model import load_ensemble, predict, read_ensemble_json

    info = read_ensemble_json(null_model)
    if info["config"]["predictor_hidden"] != 0:
        raise GinnError(null_model, "the null model must be a main-effect NN (`ginn train --model main`)")
    if any(net["dataset"] != "observed" for net in info["networks"]):
        raise GinnError(null_model, "the null model must be trained on the observed target (--target observed)")
    model, networks = load_ensemble(null_model)
    log.info("null model: mean of %d main-effect networks from %s", len(networks), null_model)
    return predict(model, dataset).mean(axis=0)
