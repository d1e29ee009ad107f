"""``ginn pairtest``: does gene pair (a, b) interact, given the main effects and the other pairs?

Perm I answers a global question (permuting the main-effect residual removes every interaction at
once), so its per-pair p-values call false pairs whenever true ones exist. This stage answers the
per-pair question with the paper's own replication idea (Eq. 5) used inside the discovery cohort:

1. **Cross-fitting.** All samples are split into ``folds`` seeded folds. For each fold, ``members``
   interaction networks are trained on the other folds (a seeded share of those rows stops them early).
   Every sample's gene values come only from networks that never saw its phenotype, so no sample is
   wasted and none is scored by a model fitted to it.
2. **One gene value per gene and sample.** The members' gene-layer outputs are put on one sign and
   scale (:class:`ConsensusGenes`, fitted on a fixed reference set of genotypes: no phenotype enters),
   averaged over the fold's members, and standardised within the fold.
3. **One joint regression.** Over all samples, y ~ fold intercepts + per gene (z, z^2 - 1, z^3) + the
   products z_a z_b of all P pairs. Each product coefficient gets a heteroscedasticity-robust (HC3)
   Wald z and a two-sided normal p-value.

Hypothesis of ``p_pair``: H0(a, b): the product coefficient of genes a and b is zero, i.e. the
phenotype holds no linear-by-linear interaction of the two learned gene values beyond the main effects
(cubic in each gene value) and the products of all other pairs. Why it holds while other pairs
interact: the gene values of a sample do not depend on its phenotype, and for genes that are
independent of each other, z_a z_b is uncorrelated with any function of a single gene and with any
term that does not involve both a and b, so whatever the model leaves out (other main-effect shapes,
non-product shapes of true pairs) only adds residual variance, which the robust variance accounts
for. Genes that share SNPs or are in LD with each other weaken that argument; the cubic main effects
absorb most of what leaks then. The max, squared-difference and product interactions of the paper's
simulations are all mostly a product of the two gene values once main effects are removed, which is
why a one-degree-of-freedom test is also the powerful one there.
"""

from __future__ import annotations

import logging
from itertools import combinations
from typing import Any

import click
import numpy as np
import pandas as pd
import torch
from scipy import stats

from .dataset import Dataset
from .errors import GinnError
from .files import atomic_outputs, provenance_record, write_json, write_tsv
from .model import PREDICTOR_HIDDEN, network_seed
from .replicate import ConsensusGenes, member_gene_values
from .threads import use_threads
from .train import NetworkPlan, TrainSettings, model_config, train_in_chunks, validation_split
from .contract import stage_default, stage_options
from .device import resolve_device

log = logging.getLogger(__name__)

# Chosen by measurement on the paper's complex model (benchmarks/sweep.py; README "Interaction calls").
DEFAULT_FOLDS = stage_default("pairtest", "folds")
DEFAULT_MEMBERS = stage_default("pairtest", "members")
_FOLD_STREAM = 0xCF
REFERENCE_ROWS = 4096      # genotypes on which the members' gene values are put on one sign and scale
BLOCK_ROWS = 32768         # rows of the regression design built at once (memory stays flat)
MIN_FOLD_SAMPLES = 30


def crossfit_folds(n_samples: int, folds: int, seed: int) -> np.ndarray:
    """Seeded fold (0..folds-1) of every sample, folds as equal as possible."""
    return np.random.default_rng([int(seed), _FOLD_STREAM]).permutation(n_samples) % folds


def crossfit_masks(fold: np.ndarray, folds: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(folds, N) training and validation masks: fold f's networks train on the other folds, minus a
    seeded validation share of them used for early stopping."""
    train = np.zeros((folds, len(fold)), dtype=bool)
    val = np.zeros_like(train)
    for f in range(folds):
        rows = np.flatnonzero(fold != f)
        held = validation_split(len(rows), val_fraction, seed, (_FOLD_STREAM, f))
        train[f, rows[~held]] = True
        val[f, rows[held]] = True
    return train, val


def crossfit_gene_values(model, dataset: Dataset, fold: np.ndarray, members: int) -> np.ndarray:
    """(N, M) gene values, sample i's from the ``members`` networks of its own fold (network
    f * members + e is member e of fold f), on one sign and scale, standardised within the fold."""
    n, folds = dataset.n_samples, int(fold.max()) + 1
    reference = np.unique(np.linspace(0, n - 1, min(n, REFERENCE_ROWS)).astype(np.int64))
    consensus = ConsensusGenes.fit(member_gene_values(model, dataset.centered, reference))
    values = np.zeros((n, dataset.n_genes))
    for f in range(folds):
        rows = np.flatnonzero(fold == f)
        nets = np.arange(f * members, (f + 1) * members)
        raw = member_gene_values(model.select(torch.from_numpy(nets)), dataset.centered, rows)
        combined = np.einsum("knm,km->nm", raw - consensus.mean[nets][:, None, :], consensus.weight[nets])
        sd = combined.std(axis=0)
        values[rows] = np.divide(combined - combined.mean(axis=0), sd, out=np.zeros_like(combined), where=sd > 1e-12)
    return values


def _design_block(values: np.ndarray, fold: np.ndarray, folds: int, pairs: np.ndarray) -> np.ndarray:
    """Fold intercepts, cubic main effects of every gene, then one product column per pair."""
    onehot = (fold[:, None] == np.arange(folds)[None, :]).astype(np.float64)
    return np.column_stack([onehot, values, values ** 2 - 1.0, values ** 3,
                            values[:, pairs[:, 0]] * values[:, pairs[:, 1]]])


def interaction_wald(values: np.ndarray, y: np.ndarray, fold: np.ndarray,
                     pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Robust (HC3) Wald z and two-sided p of every pair's product term in the joint regression.

    HC3 divides each residual by 1 - leverage: learned gene values can be skewed, so a few samples with
    extreme products would otherwise pull the plain sandwich (HC0/HC1) below the true variance.

    Built block by block (X'X, X'y, then the sandwich's meat), so memory does not grow with the
    number of samples. A pair with a gene whose value never varies gets z = 0, p = 1; p is never 0.
    """
    y = np.asarray(y, dtype=np.float64)
    folds = int(fold.max()) + 1
    pair_array = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    n, width = len(y), folds + 3 * values.shape[1] + len(pair_array)
    if n <= 2 * width:
        raise GinnError(None, f"{n} samples are too few for the joint interaction regression "
                              f"({width} columns: fold intercepts, cubic main effects, {len(pair_array)} pair products)")
    blocks = [slice(s, min(s + BLOCK_ROWS, n)) for s in range(0, n, BLOCK_ROWS)]
    gram, xty = np.zeros((width, width)), np.zeros(width)
    for rows in blocks:
        x = _design_block(values[rows], fold[rows], folds, pair_array)
        gram += x.T @ x
        xty += x.T @ y[rows]
    usable = np.diag(gram) > 1e-9 * n            # a gene whose value is constant gives zero columns
    inverse = np.zeros_like(gram)
    inverse[np.ix_(usable, usable)] = np.linalg.pinv(gram[np.ix_(usable, usable)], hermitian=True)
    beta = inverse @ xty
    meat = np.zeros_like(gram)
    for rows in blocks:
        x = _design_block(values[rows], fold[rows], folds, pair_array)
        residual = y[rows] - x @ beta
        leverage = np.einsum("ij,jk,ik->i", x, inverse, x)
        meat += (x * (residual / (1.0 - np.minimum(leverage, 0.99)))[:, None] ** 2).T @ x
    covariance = inverse @ meat @ inverse
    product = slice(width - len(pair_array), width)
    se = np.sqrt(np.clip(np.diag(covariance)[product], 0.0, None))
    z = np.divide(beta[product], se, out=np.zeros(len(pair_array)), where=se > 0)
    # |z| > 38 underflows to p = 0 in float64; the smallest positive double stands for "p < 1e-307"
    return z, np.maximum(2.0 * stats.norm.sf(np.abs(z)), np.finfo(np.float64).tiny)


def pair_table(dataset: Dataset, values: np.ndarray, fold: np.ndarray) -> pd.DataFrame:
    """PAIRS table (gene_a gene_b z p_pair), one row per unordered gene pair in gene order."""
    pairs = list(combinations(range(dataset.n_genes), 2))
    z, p = interaction_wald(values, dataset.target, fold, pairs)
    return pd.DataFrame({"gene_a": [dataset.genes[i] for i, _ in pairs], "gene_b": [dataset.genes[j] for _, j in pairs],
                         "z": z, "p_pair": p})


def crossfit_pair_test(dataset: Dataset, *, folds: int = DEFAULT_FOLDS, members: int = DEFAULT_MEMBERS, seed: int = 0,
                       predictor_hidden: int = PREDICTOR_HIDDEN, gene_layer: str = "mlp", val_fraction: float = 0.2,
                       l1_gene: float = 0.0, l1_predictor: float = 0.0, chunk_networks: int | None = None,
                       settings: TrainSettings | None = None) -> tuple[pd.DataFrame, Any, np.ndarray]:
    """The whole per-pair test of one dataset in memory: (PAIRS table, trained result, folds)."""
    if dataset.n_genes < 2:
        raise GinnError(dataset.path, "interactions need at least two genes")
    settings = settings or TrainSettings(seed=seed, progress=False)
    settings.seed = seed
    fold = crossfit_folds(dataset.n_samples, folds, seed)
    train_masks, val_masks = crossfit_masks(fold, folds, val_fraction, seed)
    k = folds * members
    plan = NetworkPlan(seeds=np.array([network_seed(seed, m) for m in range(k)], dtype=np.int64),
                       target_column=np.zeros(k, dtype=int), mask_column=np.repeat(np.arange(folds), members),
                       l1_gene=np.full(k, l1_gene), l1_predictor=np.full(k, l1_predictor))
    config = model_config(dataset, "interaction", predictor_hidden, gene_layer)
    log.info("pairtest: %d networks (%d folds x %d members) on %d samples, %d SNPs, %d genes",
             k, folds, members, dataset.n_samples, dataset.n_snps, dataset.n_genes)
    result = train_in_chunks(config, np.asarray(dataset.genotypes), dataset.snp_mean,
                             dataset.target[:, None].astype(np.float32), train_masks, val_masks, plan, settings,
                             chunk_networks)
    values = crossfit_gene_values(result.model, dataset, fold, members)
    return pair_table(dataset, values, fold), result, fold


def check_settings(folds: int, members: int, val_fraction: float, n_samples: int) -> None:
    """GinnError for a cross-fitting setting that cannot work, before any training."""
    if folds < 2:
        raise GinnError("--folds", f"cross-fitting needs at least 2 folds, not {folds}")
    if members < 1:
        raise GinnError("--members", f"needs at least 1 network per fold, not {members}")
    if not 0 < val_fraction < 1:
        raise GinnError("--val-fraction", f"must be between 0 and 1, not {val_fraction}")
    if n_samples < MIN_FOLD_SAMPLES * folds:
        raise GinnError("--folds", f"{folds} folds of {n_samples} samples leave too few samples per fold "
                                   f"(at least {MIN_FOLD_SAMPLES}: each fold's gene values are standardised over it)")


def run_pairtest(data, out, *, folds: int = DEFAULT_FOLDS, members: int = DEFAULT_MEMBERS, seed: int = 0,
                 predictor_hidden: int = PREDICTOR_HIDDEN, gene_layer: str = "mlp", val_fraction: float = 0.2,
                 l1_gene: float = 0.0, l1_predictor: float = 0.0, chunk_networks: int | None = None,
                 settings: TrainSettings | None = None) -> pd.DataFrame:
    """Run the cross-fitted per-pair test and write PAIRS/ (pairs.tsv, the fold ensembles, metrics)."""
    from .model import save_ensemble

    dataset = Dataset.load(data)
    check_settings(folds, members, val_fraction, dataset.n_samples)
    settings = settings or TrainSettings(seed=seed)
    table, result, fold = crossfit_pair_test(
        dataset, folds=folds, members=members, seed=seed, predictor_hidden=predictor_hidden, gene_layer=gene_layer,
        val_fraction=val_fraction, l1_gene=l1_gene, l1_predictor=l1_predictor, chunk_networks=chunk_networks,
        settings=settings)
    networks = [{"dataset": "observed", "member": m, "fold": m // members, "seed": network_seed(seed, m),
                 "l1_gene": l1_gene, "l1_predictor": l1_predictor, "epochs": int(result.epochs[m]),
                 "best_epoch": int(result.best_epoch[m]), "best_val_mse": float(result.best_val_mse[m])}
                for m in range(folds * members)]
    params = {"data": str(data), "out": str(out), "folds": folds, "members": members,
              "predictor_hidden": predictor_hidden, "gene_layer": gene_layer, "val_fraction": val_fraction,
              "l1_gene": l1_gene, "l1_predictor": l1_predictor, "chunk_networks": chunk_networks, "lr": settings.lr,
              "batch_size": settings.batch_size, "max_epochs": settings.max_epochs, "patience": settings.patience,
              "device": settings.device}
    with atomic_outputs() as outputs:
        folder = outputs.folder(out)
        write_tsv(folder / "pairs.tsv", table)
        save_ensemble(folder, result.model, networks, extra={
            "model": "interaction", "target": "observed", "datasets": ["observed"], "seed": seed,
            "genes": dataset.genes, "crossfit": {"folds": folds, "members": members}})
        write_json(folder / "metrics.json", {"model": f"cross-fitted interaction, {folds} folds x {members}",
                                             "networks": networks, "fold_sizes": np.bincount(fold).tolist()})
        write_json(folder / "provenance.json", provenance_record("pairtest", params, inputs={"data": data}, seed=seed))
    log.info("pairtest: %d pairs, %d with p_pair <= 0.05 -> %s", len(table), int((table["p_pair"] <= 0.05).sum()), out)
    return table


@click.command("pairtest")
@stage_options("pairtest")
def pairtest_command(data, folds, members, predictor_hidden, gene_layer, lr, batch_size, max_epochs, patience,
                     val_fraction, device, threads, seed, out):
    """Cross-fitted per-pair interaction test (valid while other pairs interact).

    p_pair tests H0: no product interaction between the learned values of genes a and b, given cubic
    main effects of every gene and the products of all other pairs (robust Wald test on samples the
    networks never saw). `ginn test --pairs PAIRS/pairs.tsv` turns them into FDR-controlled calls.
    """
    use_threads(threads)
    settings = TrainSettings(lr=lr, batch_size=batch_size, max_epochs=max_epochs, patience=patience, seed=seed,
                             device=resolve_device(device))
    run_pairtest(data, out, folds=folds, members=members, seed=seed, predictor_hidden=predictor_hidden,
                 gene_layer=gene_layer, val_fraction=val_fraction, settings=settings)
