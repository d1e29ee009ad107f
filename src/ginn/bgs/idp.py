"""``ginn bgs idp``: the imaging-derived-phenotype baseline predicting the same SNPs.

Features are regional IDPs: a table of e.g. FreeSurfer regional volumes and global measures with ``--idp``
(``bgs simulate`` writes one: ``idp.tsv``), or by default the prepared folder's ``idp.tsv`` (mean z-scored
intensity per Desikan-Killiany region, a grey-matter-density proxy). Features are standardised on the
training subjects; one classifier per SNP and per negative control of the prepared folder is fitted on
the training subjects with a called label and scores the same held-out subjects as the CNN into the same
SCORES and metrics tables, so ``bgs associate`` tests both alike against their own controls. Methods:
``svm`` (RBF SVC with Platt probabilities, fitted by cross-validation), ``logistic`` (multinomial L2
logistic regression), ``lightgbm`` (gradient boosting).
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np
import pandas as pd
from tqdm import tqdm

from ..errors import GinnError
from ..files import provenance_record, read_table
from ..prepare import read_sample_table
from .images import BgsData
from .score import write_scores
from ..contract import stage_options

log = logging.getLogger(__name__)

METHODS = ("svm", "logistic", "lightgbm")


def make_classifier(method: str, seed: int):
    """An unfitted scikit-learn style classifier with ``predict_proba``."""
    if method == "svm":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC

        return CalibratedClassifierCV(SVC(kernel="rbf", C=1.0, random_state=seed), method="sigmoid", ensemble=False)
    if method == "logistic":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=1.0, max_iter=2000)
    if method == "lightgbm":
        from lightgbm import LGBMClassifier

        return LGBMClassifier(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=10,
                              subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=seed,
                              deterministic=True, force_row_wise=True, n_jobs=1, verbose=-1)
    raise ValueError(f"unknown IDP method {method!r}")


def idp_features(data: BgsData, idp_path: str | Path | None) -> tuple[np.ndarray, list[str]]:
    """IDP matrix (N, F) in the prepared subjects' order; every subject needs every IDP."""
    path = Path(idp_path) if idp_path else data.path / "idp.tsv"
    columns = [c for c in read_table(path, what="IDP").columns if c not in ("FID", "IID", "#FID", "#IID")]
    table = read_sample_table(path, columns, what="IDP")
    index = pd.MultiIndex.from_frame(data.samples[["FID", "IID"]])
    features = table.reindex(index)
    if features.isna().all(axis=1).any():
        first = index[features.isna().all(axis=1).to_numpy()][0]
        raise GinnError(path, f"has no IDPs for subject {first[0]} {first[1]}")
    usable = features.columns[features.notna().all()]
    return features[usable].to_numpy(float), list(usable)


def predict_snp(method: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
    """(n_test, 3) class probabilities; classes absent from training get probability 0."""
    probabilities = np.zeros((len(x_test), 3))
    classes = np.unique(y_train)
    if len(classes) == 1:
        probabilities[:, classes[0]] = 1.0
        return probabilities
    model = make_classifier(method, seed).fit(x_train, y_train)
    probabilities[:, model.classes_.astype(int)] = model.predict_proba(x_test)
    return probabilities


def run_idp(data_path: str | Path, out: str | Path, *, method: str = "svm", idp_path: str | Path | None = None,
            seed: int = 1) -> pd.DataFrame:
    data = BgsData.load(data_path)
    features, names = idp_features(data, idp_path)
    fit_rows, test_rows = data.rows("train"), data.rows("test")
    mean, sd = features[fit_rows].mean(axis=0), features[fit_rows].std(axis=0)
    features = (features - mean) / np.where(sd > 0, sd, 1)
    labels = data.labels
    probabilities = np.zeros((len(test_rows), labels.shape[1], 3))
    for j in tqdm(range(labels.shape[1]), desc=f"idp {method}", unit="head", disable=None):
        called = fit_rows[labels[fit_rows, j] >= 0]
        probabilities[:, j] = predict_snp(method, features[called], labels[called, j].astype(int),
                                          features[test_rows], seed)
    metrics = write_scores(out, f"idp-{method}", data, test_rows, probabilities, provenance_record(
        "bgs idp", {"data": str(data_path), "method": method, "idp": str(idp_path) if idp_path else None,
                    "n_features": len(names), "out": str(out)},
        inputs={"data": data_path} | ({"idp": idp_path} if idp_path else {}), seed=seed), seed)
    log.info("bgs idp: %s on %d IDPs; mean balanced accuracy %.3f", method, len(names),
             metrics["balanced_accuracy"].mean())
    return metrics


@click.command("idp")
@stage_options("bgs idp")
def idp_command(data_path, method, idp_path, seed, out):
    """Predict the SNPs from regional IDPs with SVM, logistic regression or LightGBM (baseline scores)."""
    run_idp(data_path, out, method=method, idp_path=idp_path, seed=seed)
