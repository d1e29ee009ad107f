"""Simulation studies of Perm I in memory: the whole permutation test of one dataset without files.

The calibration test (tests/test_calibration.py) and ``benchmarks/bench_calibration.py`` run many
small datasets; :func:`nn_permutation_test` does what ``ginn train`` (main, observed, perm-I) ->
``ginn score`` -> ``ginn test`` do, in one batched training call (tests/test_permtest.py pins the two
together), and :func:`calibration_summary` / :func:`decision_table` read its global-null columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .contract.stages import L1_DEFAULT
from .evaluate import decision_metrics
from .permtest import global_table

# the global test's p-value columns and the suffix of their metrics in decision_table
GLOBAL_P_COLUMNS = {"global_p_perm": "perm", "global_p_maxt": "maxt"}


@dataclass
class NNPermutationSettings:
    """Architecture, ensemble sizes and L1 strengths of one in-process NN permutation test."""
    members: int = 50               # interaction-NN ensemble members per dataset (observed or permuted)
    main_members: int = 10          # main-effect NN members; their mean prediction is the null model
    predictor_hidden: int = 100
    gene_layer: str = "mlp"
    main_gene_layer: str = "mlp"
    l1_gene: float = L1_DEFAULT  # the CLI's default (ginn train without --hparams)
    l1_predictor: float = L1_DEFAULT
    val_fraction: float = 0.2


def nn_permutation_test(data, kind: str, permutations: int, *, seed: int = 0,
                        settings: NNPermutationSettings | None = None, train_settings=None) -> pd.DataFrame:
    """The whole NN permutation test of one prepared dataset in memory, for simulation studies.

    The same steps as ``ginn train --model main`` (null model), ``ginn train`` (observed and permuted
    targets), ``ginn score`` and ``ginn test``, except that the observed ensemble and all B permuted
    ensembles are trained in ONE batched call of :func:`ginn.train.train_networks` (member m of every
    ensemble starts from the same seed and sees the same batches) and scored exactly (Eqs. 8-12, test
    rows, baseline = mean gene value over them). ``kind`` is ``perm-I``, ``perm-T`` or ``perm-R``.
    Returns the Perm I table of :func:`global_table`.
    """
    import torch

    from .model import make_config, network_seed, predict
    from .score import gene_values
    from .shapley import ExactInteractions, PredictorGame, all_pairs, ensemble_summary
    from .targets import NEEDS_NULL_MODEL, build_targets, dataset_name
    from .train import NetworkPlan, TrainSettings, train_networks, validation_split

    settings = settings or NNPermutationSettings()
    train_settings = train_settings or TrainSettings(seed=seed, progress=False)
    train_settings.seed = seed
    train = data.train_idx
    genotypes = np.asarray(data.genotypes[train])
    val = validation_split(len(train), settings.val_fraction, seed)

    def fit(predictor_hidden: int, gene_layer: str, targets: np.ndarray, members: int):
        """One batched run: ``members`` networks per target column, member m seeded by (seed, m)."""
        n_targets = targets.shape[1]
        plan = NetworkPlan(seeds=np.array([network_seed(seed, m) for _ in range(n_targets) for m in range(members)],
                                          dtype=np.int64),
                           target_column=np.repeat(np.arange(n_targets), members),
                           mask_column=np.zeros(n_targets * members, dtype=int),
                           l1_gene=np.full(n_targets * members, settings.l1_gene),
                           l1_predictor=np.full(n_targets * members, settings.l1_predictor))
        config = make_config(data.gene_sizes, 1, predictor_hidden=predictor_hidden, gene_layer=gene_layer)
        return train_networks(config, genotypes, data.snp_mean, targets[train], (~val)[None], val[None], plan,
                              train_settings).model

    y = data.target.astype(np.float64)
    null_prediction = None
    if kind in NEEDS_NULL_MODEL:
        null_model = fit(0, settings.main_gene_layer, y[:, None], settings.main_members)
        null_prediction = predict(null_model, data).mean(axis=0)
    permuted, names = build_targets(y, data.is_test, kind, seed, list(range(1, permutations + 1)), null_prediction)
    names = [dataset_name(None), *names]
    model = fit(settings.predictor_hidden, settings.gene_layer, np.column_stack([y, permuted]), settings.members)

    values = gene_values(model, data, data.test_idx)
    game = PredictorGame.from_weights(model.predictor_weights(), values.mean(dim=1), dtype=torch.float32)
    pairs = all_pairs(data.n_genes)
    result = ExactInteractions(data.n_genes, pairs).scores(game, values)
    rows = []
    for d, name in enumerate(names):
        summary = ensemble_summary(result, np.arange(d * settings.members, (d + 1) * settings.members))
        rows.append(pd.DataFrame({"dataset": name, "gene_a": [data.genes[i] for i, _ in pairs],
                                  "gene_b": [data.genes[j] for _, j in pairs], "score": summary.score}))
    return global_table(pd.concat(rows, ignore_index=True))


def simulation_study(folder: str | Path, *, model: str, kinds: list[str], datasets: int, n_samples: int,
                     snps_per_gene: int, snr: float, permutations: int, seed: int = 0,
                     settings: NNPermutationSettings | None = None, train_settings=None,
                     report=None) -> pd.DataFrame:
    """Simulate ``datasets`` datasets (10 genes, ``ginn.simulate``) and run the NN permutation test of
    every kind on each. Dataset d is simulated, split and permuted with seed ``seed + d``.

    Returns one row per kind, dataset and gene pair: the Perm I columns plus ``kind``, ``dataset``
    and the truth column ``interacting``. ``report(kind, d, table)`` is called after each test.
    """
    from .simulate import simulate_dataset
    from .dataset import Dataset

    tables = []
    for d in range(datasets):
        data_folder = Path(folder) / f"{model}-{seed + d}"
        truth = simulate_dataset(data_folder, n_samples=n_samples, n_genes=10, model=model, snr=snr,
                                 snps_per_gene=snps_per_gene, seed=seed + d)
        data = Dataset.load(data_folder)
        for kind in kinds:
            table = nn_permutation_test(data, kind, permutations, seed=seed + d, settings=settings,
                                        train_settings=train_settings)
            table = table.merge(truth, on=["gene_a", "gene_b"], validate="one_to_one")
            if report:
                report(kind, d, table)
            tables.append(table.assign(kind=kind, dataset=d))
    return pd.concat(tables, ignore_index=True)


def decision_table(results: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Power and specificity of ``p <= alpha`` per kind, for p_perm and p_maxt, pooled over datasets
    (:func:`ginn.evaluate.decision_metrics`, which says why ``<=``)."""
    rows = []
    for kind, table in results.groupby("kind", sort=False):
        table = table.assign(interacting=table["interacting"].astype(bool))
        truth = table["interacting"].to_numpy()
        rows.append({"kind": kind, "n_true": int(truth.sum()), "n_false": int((~truth).sum()),
                     **decision_metrics(table, alpha, GLOBAL_P_COLUMNS)})
    return pd.DataFrame(rows)


def calibration_summary(results: pd.DataFrame, permutations: int, alpha: float = 0.05, seed: int = 0) -> dict:
    """How uniform the p_perm of null simulations are, allowing for their dependence within a dataset.

    ``results`` holds the pairs of several independent null datasets (column ``dataset``), all tested
    with B = ``permutations``. Randomised p-values p - U/(B+1), U ~ U(0,1), are exactly U(0,1) under
    exchangeability, so the continuous KS test applies despite the 1/(B+1) grid. The p-values of one
    dataset share its observed target and permutations and are positively dependent, so the KS
    distance D is also referred to the KS distribution of the effective sample size n / design effect,
    design effect = 1 + (m - 1) ICC (one-way ANOVA estimate, m pairs per dataset). Independent of that
    approximation: a t-test of the per-dataset mean p against its null mean (B + 2) / (2 (B + 1)), and
    the maxT family-wise error (datasets with any p_maxt <= alpha) with its Clopper-Pearson interval.
    """
    from scipy import stats

    p = results["global_p_perm"].to_numpy(dtype=np.float64)
    jittered = p - np.random.default_rng(seed).random(len(p)) / (permutations + 1)
    ks = stats.kstest(jittered, "uniform")
    per_dataset = pd.Series(jittered).groupby(results["dataset"].to_numpy())
    m = per_dataset.size().mean()
    between, within = m * per_dataset.mean().var(ddof=1), per_dataset.var(ddof=1).mean()
    icc = max(0.0, (between - within) / (between + (m - 1) * within))
    design_effect = 1 + (m - 1) * icc
    n_effective = max(1, int(round(len(p) / design_effect)))
    means = results.groupby("dataset")["global_p_perm"].mean()
    centre = stats.ttest_1samp(means, (permutations + 2) / (2 * (permutations + 1)))
    family_errors = int((results.groupby("dataset")["global_p_maxt"].min() <= alpha).sum())
    interval = stats.binomtest(family_errors, len(means)).proportion_ci(0.95)
    return {"n_pvalues": len(p), "n_datasets": len(means), "fraction_below_alpha": float((p <= alpha).mean()),
            "ks_statistic": float(ks.statistic), "ks_pvalue_independent": float(ks.pvalue), "icc": float(icc),
            "design_effect": float(design_effect), "n_effective": n_effective,
            "ks_pvalue": float(stats.kstwo.sf(ks.statistic, n_effective)),
            "dataset_mean_p": means.to_numpy(), "mean_p_ttest_pvalue": float(centre.pvalue),
            "family_errors": family_errors, "family_error_rate": family_errors / len(means),
            "family_error_ci": (float(interval.low), float(interval.high))}
