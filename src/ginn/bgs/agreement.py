"""``ginn bgs agreement``: do brain-genotype scores of models trained with different seeds agree?

The method's cross-seed check: the same held-out subjects scored by models that differ only in their
training seed (``bgs train --seed``). Per method x SNP: the mean and SD over seeds of the balanced
accuracy, the mean and smallest pairwise Pearson correlation of the expected dosage, and the mean
pairwise Cohen's kappa of the predicted class (1 identical, 0 chance agreement). Controls are left out.

``AGREE.tsv``: method snp n_seeds n bacc_mean bacc_sd dosage_r_mean dosage_r_min kappa_mean.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import click
import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score

from ..errors import GinnError
from ..files import atomic_outputs, provenance_path, provenance_record, write_json, write_tsv
from .score import read_scores

log = logging.getLogger(__name__)


def _pairwise(values: list[np.ndarray], measure) -> list[float]:
    return [measure(a, b) for a, b in itertools.combinations(values, 2)]


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else np.nan


def agreement_table(runs: list[pd.DataFrame]) -> pd.DataFrame:
    """Agreement of SNP scores across runs (SCORES tables of one method each, same subjects)."""
    rows = []
    by_method: dict[str, list[pd.DataFrame]] = {}
    for run in runs:
        by_method.setdefault(run["method"].iloc[0], []).append(run[~run["control"]])
    for method, tables in by_method.items():
        if len(tables) < 2:
            continue
        for snp in tables[0]["snp"].unique():
            wide = [t[t["snp"] == snp].set_index(["FID", "IID"]) for t in tables]
            common = wide[0].index
            for w in wide[1:]:
                common = common.intersection(w.index)
            wide = [w.loc[common] for w in wide]
            called = wide[0]["genotype"].notna().to_numpy()
            truth = wide[0]["genotype"].to_numpy()[called].astype(int)
            bacc = [balanced_accuracy_score(truth, w["predicted"].to_numpy()[called].astype(int)) for w in wide]
            dosage_r = _pairwise([w["dosage"].to_numpy() for w in wide], _correlation)
            kappa = _pairwise([w["predicted"].to_numpy().astype(int) for w in wide],
                              lambda a, b: float(cohen_kappa_score(a, b)) if len(set(a) | set(b)) > 1 else 1.0)
            rows.append({"method": method, "snp": snp, "n_seeds": len(wide), "n": len(common),
                         "bacc_mean": float(np.mean(bacc)), "bacc_sd": float(np.std(bacc, ddof=1)),
                         "dosage_r_mean": float(np.nanmean(dosage_r)), "dosage_r_min": float(np.nanmin(dosage_r)),
                         "kappa_mean": float(np.mean(kappa))})
    return pd.DataFrame(rows)


def run_agreement(scores_paths: list[str | Path], out: str | Path) -> pd.DataFrame:
    table = agreement_table([read_scores(p) for p in scores_paths])
    if table.empty:
        raise GinnError(scores_paths[0], "needs at least two SCORES tables of the same method (one per seed)")
    out = Path(out)
    with atomic_outputs() as outputs:
        write_tsv(outputs.file(out), table)
        write_json(outputs.file(provenance_path(out)), provenance_record(
            "bgs agreement", {"scores": [str(p) for p in scores_paths], "out": str(out)},
            inputs={f"scores{i}": p for i, p in enumerate(scores_paths)}))
    log.info("bgs agreement: mean pairwise dosage r %.3f, kappa %.3f", table["dosage_r_mean"].mean(),
             table["kappa_mean"].mean())
    return table


@click.command("agreement")
@click.option("--scores", "scores_paths", required=True, multiple=True, type=click.Path(dir_okay=False),
              help="SCORES.tsv of one model per training seed (repeat; at least two per method).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output AGREE.tsv.")
def agreement_command(scores_paths, out):
    """Cross-seed agreement of brain-genotype scores: balanced accuracy spread, dosage r and kappa."""
    run_agreement(list(scores_paths), out)
