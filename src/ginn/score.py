"""``ginn score``: Shapley interaction scores of every gene pair for every trained ensemble (Eqs. 8–12).

Networks in MODELS/ are grouped by their ``dataset`` field (``observed`` or ``perm-<k>``); each
group's members are averaged (Eq. 12). Per group and gene pair the score is E_x|SII_ij(x)| over the
scored individuals (Eq. 11, the test rows by default, as in the paper), the SII taken over the
predictor's gene-node inputs with absent genes at the baseline (the mean gene value over the scored
rows, or over the training rows with ``--baseline train``). See :mod:`ginn.shapley` for the
estimators: exact enumeration by default up to 16 genes, unbiased random coalitions beyond.

Columns: ``score``; ``se`` = s.d. over members / sqrt(members), the uncertainty of Eq. 12's ensemble
mean, which contains the members' independent coalition-sampling noise too (NA for one member);
``se_mc`` = the coalition-sampling part alone (0 when exact). With sampling, |·| makes ``score``
biased upwards by at most the mean local standard error (``max_bias_bound`` in the provenance);
observed and permuted ensembles are scored with the same number of samples, so they share it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import click
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .dataset import Dataset
from .errors import GinnError
from .files import atomic_outputs, provenance_path, provenance_record, read_table, write_json, write_tsv
from .model import check_compatible, check_interaction_ensemble, load_ensemble, model_device, read_ensemble_json
from .shapley import (MAX_EXACT_GENES, ExactInteractions, MonteCarloInteractions, PredictorGame, all_pairs,
                      ensemble_summary, singletons)
from .threads import use_threads
from .contract import stage_options
from .device import cuda_tf32, resolve_device

log = logging.getLogger(__name__)

DEFAULT_EXACT_MAX_GENES = 16
DEFAULT_SAMPLES = 64
ROW_CHOICES = ("test", "train", "all")
# Indices are sums of f over coalitions with coefficients whose |.| adds up to at most 2^q, so float32
# keeps them to ~1e-6 of the predictions' scale, at half the cost of float64.
SCORE_DTYPE = torch.float32
_PERM_NAME = re.compile(r"perm-(\d+)")


def side_path(out: str | Path, kind: str) -> Path:
    """``SCORES.tsv`` -> ``SCORES.<kind>.tsv`` (main effects, triples)."""
    out = Path(out)
    stem = out.name[: -len(".tsv")] if out.name.endswith(".tsv") else out.name
    return out.with_name(f"{stem}.{kind}.tsv")


def scored_rows(dataset: Dataset, rows: str) -> np.ndarray:
    chosen = {"test": dataset.test_idx, "train": dataset.train_idx, "all": np.arange(dataset.n_samples)}[rows]
    if len(chosen) == 0:
        raise GinnError(dataset.path, f"dataset has no {rows} rows to score")
    return chosen


@torch.no_grad()
def gene_values(model, dataset: Dataset, rows: np.ndarray, batch_size: int = 4096) -> torch.Tensor:
    """Gene-layer values (K, N, M) of the chosen rows, in float32, on the model's device."""
    device = model_device(model)
    parts = [model.gene_layer(torch.from_numpy(dataset.centered(rows[s: s + batch_size])).to(device))
             for s in range(0, len(rows), batch_size)]
    return torch.cat(parts, dim=1)


def dataset_groups(networks: list[dict]) -> dict[str, list[int]]:
    """Network indices per dataset name, in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for index, record in enumerate(networks):
        groups.setdefault(str(record["dataset"]), []).append(index)
    return groups


def dataset_stream(name: str) -> int:
    """Random stream of a dataset: 0 for observed, k for perm-k, so a permutation gets the same
    coalitions whether it is scored alone or with others."""
    match = _PERM_NAME.fullmatch(name)
    return int(match.group(1)) if match else 0


def read_triples(path: str | Path, genes: list[str]) -> list[tuple[int, int, int]]:
    """Gene triples (columns gene_a gene_b gene_c) as sorted gene indices."""
    table = read_table(path, required=["gene_a", "gene_b", "gene_c"], what="gene triples")
    index = {g: i for i, g in enumerate(genes)}
    triples = []
    for line, row in enumerate(table[["gene_a", "gene_b", "gene_c"]].itertuples(index=False), start=2):
        unknown = [g for g in row if g not in index]
        if unknown:
            raise GinnError(path, f"line {line}: gene {unknown[0]!r} is not in the dataset")
        triple = tuple(sorted(index[g] for g in row))
        if len(set(triple)) != 3:
            raise GinnError(path, f"line {line}: a triple needs three different genes")
        triples.append(triple)
    if not triples:
        raise GinnError(path, "no gene triples listed")
    return list(dict.fromkeys(triples))


def choose_estimator(n_genes: int, exact: bool, samples: int | None, triples: list, seed: int):
    """Exact enumeration (default up to 16 genes) or random coalitions, with any chosen triples."""
    if exact and samples is not None:
        raise GinnError("--exact/--samples", "choose one: exact enumeration or a number of samples")
    if samples is not None and samples < 2:
        raise GinnError("--samples", "needs at least 2 samples (for standard errors)")
    use_exact = exact or (samples is None and n_genes <= DEFAULT_EXACT_MAX_GENES)
    if use_exact and n_genes > MAX_EXACT_GENES:
        raise GinnError("--exact", f"{n_genes} genes are too many to enumerate 2^M coalitions "
                                   f"(at most {MAX_EXACT_GENES}); use --samples")
    if use_exact:
        return ExactInteractions(n_genes, singletons(n_genes) + all_pairs(n_genes) + triples)
    return MonteCarloInteractions(n_genes, samples or DEFAULT_SAMPLES, seed=seed, triples=triples)


def _summary_frame(name: str, labels: dict[str, list], summary, columns: np.ndarray, value: str) -> pd.DataFrame:
    return pd.DataFrame({"dataset": name, **labels, value: summary.score[columns], "se": summary.se[columns],
                         "se_mc": summary.se_mc[columns]})


# full float32 products on CUDA: scores are compared across permutations at 10 digits, and no test
# bounds what TF32's 10-bit mantissa would do to them
@cuda_tf32(False)
def run_score(data, models, out, *, exact: bool = False, samples: int | None = None, rows: str = "test",
              baseline: str = "scored", local: str | Path | None = None, triples_file: str | Path | None = None,
              seed: int = 0, batch_size: int = 4096, device: str = "cpu") -> pd.DataFrame:
    """Score every ensemble in MODELS/ on DATA/ and write SCORES.tsv (+ .main.tsv, triples, local)."""
    device = resolve_device(device)
    dataset = Dataset.load(data)
    info = read_ensemble_json(models)
    check_interaction_ensemble(models, info)
    if "crossfit" in info:   # each fold's networks trained on the other folds, test rows among them
        raise GinnError(models, "holds the cross-fitted networks of `ginn pairtest`, trained on the rows scored "
                                "here; give an ensemble of `ginn train`")
    if info.get("genes") is not None and list(info["genes"]) != list(dataset.genes):
        raise GinnError(models, "models were trained on other genes than the dataset's")
    model, networks = load_ensemble(models, device)
    check_compatible(model, dataset)
    genes, m = list(dataset.genes), dataset.n_genes
    if m < 2:
        raise GinnError(dataset.path, "interactions need at least two genes")
    triples = read_triples(triples_file, genes) if triples_file else []
    estimator = choose_estimator(m, exact, samples, triples, seed)
    groups = dataset_groups(networks)
    if local and "observed" not in groups:
        raise GinnError(models, "--local keeps the observed ensemble's local scores, but there is none")
    row_index = scored_rows(dataset, rows)
    pairs, single = all_pairs(m), singletons(m)
    method = "exact" if isinstance(estimator, ExactInteractions) else "monte-carlo"
    detail = "" if method == "exact" else f" ({estimator.n_samples} coalitions per individual)"
    log.info("score: %d networks in %d ensembles, %d genes, %d %s rows, %s%s", len(networks), len(groups), m,
             len(row_index), rows, method, detail)

    pair_tables, main_tables, triple_tables, bias = [], [], [], 0.0
    local_scores = None
    for name, members in tqdm(groups.items(), desc="score", unit="ensemble", disable=None):
        ensemble = model.select(members)
        values = gene_values(ensemble, dataset, row_index, batch_size)
        centre = (values.mean(dim=1) if baseline == "scored"
                  else gene_values(ensemble, dataset, dataset.train_idx, batch_size).mean(dim=1))
        game = PredictorGame.from_weights(ensemble.predictor_weights(), centre, dtype=SCORE_DTYPE)
        streams = [(dataset_stream(name), int(networks[i]["member"])) for i in members]
        result = estimator.scores(game, values.to(SCORE_DTYPE), keep_local=bool(local) and name == "observed",
                                  streams=streams)
        summary = ensemble_summary(result, np.arange(len(members)))
        pair_cols = result.columns(pairs)
        bias = max(bias, float(summary.bias_bound[pair_cols].max()))
        pair_tables.append(_summary_frame(name, {"gene_a": [genes[i] for i, _ in pairs],
                                                 "gene_b": [genes[j] for _, j in pairs]}, summary, pair_cols, "score"))
        main_tables.append(_summary_frame(name, {"gene": genes}, summary, result.columns(single), "value"))
        if triples:
            triple_tables.append(_summary_frame(name, {f"gene_{c}": [genes[t[p]] for t in triples]
                                                       for p, c in enumerate("abc")},
                                                summary, result.columns(triples), "score"))
        if summary.local is not None:
            local_scores = summary.local[:, pair_cols].astype(np.float32)

    scores = pd.concat(pair_tables, ignore_index=True)
    params = {"data": str(data), "models": str(models), "out": str(out), "exact": exact, "samples": samples,
              "rows": rows, "baseline": baseline, "local": None if local is None else str(local),
              "triples": None if triples_file is None else str(triples_file), "batch_size": batch_size,
              "device": device}
    extra = {"method": method, "n_samples": None if method == "exact" else estimator.n_samples,
             "n_rows": int(len(row_index)), "datasets": list(groups), "max_bias_bound": bias,
             "local_layout": "float32 (scored rows in dataset order, gene pairs in SCORES.tsv order), "
                             "member mean of the observed ensemble's local SII"}
    inputs = {"data": data, "models": models, **({"triples": triples_file} if triples_file else {})}
    with atomic_outputs() as outputs:
        # 10 significant digits: permutation p-values compare scores, and 6 digits would create false ties
        write_tsv(outputs.file(out), scores, float_format="%.10g")
        write_tsv(outputs.file(side_path(out, "main")), pd.concat(main_tables, ignore_index=True), float_format="%.10g")
        if triples:
            write_tsv(outputs.file(side_path(out, "triples")), pd.concat(triple_tables, ignore_index=True))
        if local:
            with open(outputs.file(local), "wb") as handle:
                np.save(handle, local_scores)
        write_json(outputs.file(provenance_path(out)),
                   provenance_record("score", params, inputs=inputs, seed=seed, extra=extra))
    return scores


@click.command("score")
@stage_options("score")
def score_command(data, models, exact, samples, rows, baseline, local, triples_file, seed, batch_size, device,
                  threads, out):
    """Shapley interaction scores between gene nodes for every ensemble (observed and permuted).

    One row per gene pair and dataset: the member mean (Eq. 12) of E_x|SII_ij(x)| (Eq. 11) over the
    chosen rows. SCORES.main.tsv holds each gene's first-order Shapley value, E_x|phi_i(x)|.
    """
    use_threads(threads)
    run_score(data, models, out, exact=exact, samples=samples, rows=rows, baseline=baseline, local=local,
              triples_file=triples_file, seed=seed, batch_size=batch_size, device=device)
