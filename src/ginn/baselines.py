"""``ginn baselines``: the paper's six baseline detectors of gene-gene interactions.

A baseline = a gene representation x an interaction model (Results › Simulation with complex
interactions). Representations are learnt on the training split only:

* ``topsnp``: the gene's SNP with the strongest marginal association with y (largest |correlation|);
* ``pca``: the first principal component of the gene's centred SNPs.

Both are standardised with training-split statistics. Interaction models:

* ``lr``: per pair, OLS ``y ~ 1 + g_i + g_j + g_i*g_j`` (the paper's Eq. 4), score = |t| of the product
  term and its analytic two-sided t-test p-value. Fitted on ALL samples: the null distribution is
  analytic, so nothing needs holding out and the test keeps the paper's full sample size ("with 80k
  samples"); choosing the top SNP by its marginal association does not bias the product-term test.
* ``lasso``: one Lasso on all main terms and all pairwise products (standardised), alpha chosen by
  5-fold CV on the training split; score = |coefficient| of the product term.
* ``xgb``: gradient-boosted trees on the gene representations (training split); score = mean over
  test samples of |SHAP interaction value| of the pair (phi_ij + phi_ji, TreeSHAP).

Lasso and XGB get permutation p-values (Perm T: permuted y; Perm R: permuted residual of the linear
main-effect model ``y ~ g_1 + ... + g_M``), permutation k built from (seed, k) as for the NN
(:func:`ginn.targets.build_targets`), with the model hyper-parameters chosen on the observed data.
Results use the columns of ``ginn test``. LR has a per-pair test: ``p_pair`` is the analytic p-value,
``q_pair`` its Benjamini-Hochberg q-value, ``p_pair_fwer`` its Holm adjustment and ``called`` is
``q_pair <= fdr``. Lasso and XGB have no per-pair test (those columns are empty, nothing is called);
their permutation p-values go to the ``global_*`` columns, which like Perm I are calibrated only
under the null that no pair interacts.
"""

from __future__ import annotations

import logging
from itertools import combinations
from pathlib import Path

import click
import numpy as np
import pandas as pd
from scipy import stats

from .dataset import Dataset, center_dosages
from .errors import GinnError
from .files import atomic_outputs, provenance_path, provenance_record, write_json, write_tsv
from .permtest import DEFAULT_FDR, RESULT_COLUMNS, check_fdr, maxt_pvalues, pair_calls, perm_pvalues, permutation_fdr
from .targets import build_targets
from .threads import use_threads
from .contract import stage_options

log = logging.getLogger(__name__)

REPRESENTATIONS = ("topsnp", "pca")
MODELS = ("lr", "lasso", "xgb")
METHODS = tuple(f"{r}-{m}" for r in REPRESENTATIONS for m in MODELS)


def _gene_block(data: Dataset, gene: int) -> np.ndarray:
    """Centred float64 genotypes of one gene (missing -> mean), all samples."""
    a, b = data.gene_offsets[gene], data.gene_offsets[gene + 1]
    return center_dosages(np.asarray(data.genotypes[:, a:b]), data.snp_mean[a:b], np.float64)


def top_snp_columns(data: Dataset, rows: np.ndarray, batch_size: int = 16384) -> np.ndarray:
    """Per gene, the genotype column with the largest marginal |correlation| with the target."""
    y = data.target[rows].astype(np.float64)
    y = y - y.mean()
    cross, sums, squares = np.zeros(data.n_snps), np.zeros(data.n_snps), np.zeros(data.n_snps)
    for start in range(0, len(rows), batch_size):
        x = data.centered(rows[start:start + batch_size]).astype(np.float64)
        cross += x.T @ y[start:start + batch_size]
        sums += x.sum(axis=0)
        squares += (x ** 2).sum(axis=0)
    sd = np.sqrt(np.maximum(squares / len(rows) - (sums / len(rows)) ** 2, 0))
    corr = np.abs(np.divide(cross, sd * len(rows), out=np.zeros(data.n_snps), where=sd > 1e-12))
    return np.array([data.gene_offsets[g] + int(np.argmax(corr[data.gene_offsets[g]:data.gene_offsets[g + 1]]))
                     for g in range(data.n_genes)])


def gene_representations(data: Dataset, representation: str) -> np.ndarray:
    """(N, M) gene values, learnt on the training rows and standardised with their statistics."""
    if representation not in REPRESENTATIONS:
        raise GinnError(None, f"unknown gene representation {representation!r} ({', '.join(REPRESENTATIONS)})")
    train = data.train_idx
    values = np.empty((data.n_samples, data.n_genes))
    top = top_snp_columns(data, train) if representation == "topsnp" else None
    for gene in range(data.n_genes):
        x = _gene_block(data, gene)
        x -= x[train].mean(axis=0)
        if representation == "topsnp":
            value = x[:, top[gene] - data.gene_offsets[gene]]
        else:
            _, vectors = np.linalg.eigh(x[train].T @ x[train])   # p x p: cheaper than an SVD of n x p
            value = x @ vectors[:, -1]
        sd = value[train].std()
        if sd == 0:
            raise GinnError(data.path, f"gene {data.genes[gene]} does not vary in the training samples")
        values[:, gene] = value / sd
    return values


def gene_pairs(n_genes: int) -> list[tuple[int, int]]:
    return list(combinations(range(n_genes), 2))


def lr_interaction_tests(g: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair (i<j): t statistic and two-sided p of the product term in y ~ 1 + g_i + g_j + g_i g_j."""
    n = len(y)
    t_values, p_values = [], []
    for i, j in gene_pairs(g.shape[1]):
        design = np.column_stack([np.ones(n), g[:, i], g[:, j], g[:, i] * g[:, j]])
        coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
        if rank < 4:
            t_values.append(0.0)
            p_values.append(1.0)
            continue
        residual = y - design @ coef
        # (X'X)^-1[3, 3] = 1 / R[3, 3]^2 for X = QR: inverting a nearly singular X'X (two almost equal SNPs)
        # gave a negative variance or failed as singular
        variance = residual @ residual / (n - 4) / np.linalg.qr(design, mode="r")[3, 3] ** 2
        t = coef[3] / np.sqrt(variance)
        t_values.append(t)
        p_values.append(2 * stats.t.sf(abs(t), df=n - 4))
    return np.array(t_values), np.array(p_values)


def _pairwise_design(g: np.ndarray) -> np.ndarray:
    """Main terms then all pairwise products, in :func:`gene_pairs` order."""
    pairs = gene_pairs(g.shape[1])
    return np.column_stack([g] + [g[:, i] * g[:, j] for i, j in pairs])


class LassoScorer:
    """Lasso on main + product terms; alpha chosen once by CV on the observed training target."""

    def __init__(self, g: np.ndarray, train: np.ndarray, seed: int, folds: int = 5):
        from sklearn.preprocessing import StandardScaler

        design = _pairwise_design(g)
        self.scaler = StandardScaler().fit(design[train])
        self.x_train = self.scaler.transform(design[train])
        self.n_genes, self.train, self.seed, self.folds = g.shape[1], train, seed, folds
        self.alpha: float | None = None

    def __call__(self, y: np.ndarray) -> np.ndarray:
        from sklearn.linear_model import Lasso, LassoCV
        from sklearn.model_selection import KFold

        target = y[self.train]
        if self.alpha is None:
            folds = KFold(self.folds, shuffle=True, random_state=self.seed)
            cv = LassoCV(cv=folds, alphas=30, max_iter=5000)
            self.alpha = float(cv.fit(self.x_train, target).alpha_)
            log.info("lasso: alpha %.3g chosen by %d-fold CV", self.alpha, self.folds)
        model = Lasso(alpha=self.alpha, max_iter=5000).fit(self.x_train, target)
        return np.abs(model.coef_[self.n_genes:])


class XGBScorer:
    """Boosted trees on gene values (training rows); mean |SHAP interaction| on (a sample of) test rows."""

    def __init__(self, g: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int, trees: int = 100,
                 depth: int = 3, learning_rate: float = 0.1, shap_rows: int = 500, threads: int = 2):
        rng = np.random.default_rng([seed, 0x58])
        rows = test if len(test) <= shap_rows else np.sort(rng.choice(test, shap_rows, replace=False))
        self.g, self.train, self.shap_rows, self.seed = g, train, rows, seed
        self.params = {"n_estimators": trees, "max_depth": depth, "learning_rate": learning_rate,
                       "subsample": 0.8, "tree_method": "hist", "n_jobs": threads, "random_state": seed}
        self.pairs = gene_pairs(g.shape[1])

    def __call__(self, y: np.ndarray) -> np.ndarray:
        import xgboost

        model = xgboost.XGBRegressor(**self.params).fit(self.g[self.train], y[self.train])
        phi = model.get_booster().predict(xgboost.DMatrix(self.g[self.shap_rows]), pred_interactions=True)
        i, j = np.array(self.pairs).T
        return np.abs(phi[:, i, j] + phi[:, j, i]).mean(axis=0)


def _linear_main_prediction(g: np.ndarray, y: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Prediction of y ~ 1 + g_1 + ... + g_M fitted on the training rows (the Perm R null model)."""
    design = np.column_stack([np.ones(len(g)), g])
    coef, *_ = np.linalg.lstsq(design[train], y[train], rcond=None)
    return design @ coef


def run_baseline(data: Dataset, method: str, *, perm: str | None = None, permutations: int = 0, seed: int = 0,
                 xgb_trees: int = 100, xgb_depth: int = 3, shap_rows: int = 500, threads: int = 2,
                 progress: bool = False, fdr: float = DEFAULT_FDR) -> pd.DataFrame:
    """The results table of one method (the columns of `ginn test`, best score first)."""
    if method not in METHODS:
        raise GinnError(None, f"unknown baseline method {method!r} (choose from {', '.join(METHODS)})")
    representation, model = method.split("-")
    if model == "lr" and (perm or permutations):
        raise GinnError(None, "LR p-values are analytic; --perm/--permutations apply to lasso and xgb")
    if (perm is None) != (permutations == 0):
        raise GinnError(None, "permutation tests need both --perm {T,R} and --permutations N (N >= 1)")
    if data.n_genes < 2:
        raise GinnError(data.path, "interactions need at least two genes")
    check_fdr(fdr)
    g = gene_representations(data, representation)
    y = data.target.astype(np.float64)
    pairs = gene_pairs(data.n_genes)
    table = pd.DataFrame({"gene_a": [data.genes[i] for i, _ in pairs], "gene_b": [data.genes[j] for _, j in pairs]})
    if model == "lr":
        t, p = lr_interaction_tests(g, y)
        table["score"] = np.abs(t)
        for column, values in pair_calls(p, fdr).items():
            table[column] = values
        for column in ("global_p_perm", "global_p_maxt", "global_q_fdr"):
            table[column] = np.nan
        table["n_permutations"] = 0
    else:
        if model == "lasso":
            scorer = LassoScorer(g, data.train_idx, seed)
        else:
            scorer = XGBScorer(g, data.train_idx, data.test_idx, seed, trees=xgb_trees, depth=xgb_depth,
                               shap_rows=shap_rows, threads=threads)
        table["score"] = observed = scorer(y)
        for column in ("p_pair", "q_pair", "p_pair_fwer", "global_p_perm", "global_p_maxt", "global_q_fdr"):
            table[column] = np.nan
        table["called"] = False
        table["n_permutations"] = permutations
        if perm:
            null_prediction = _linear_main_prediction(g, y, data.train_idx) if perm == "R" else None
            targets, _ = build_targets(y, data.is_test, f"perm-{perm}", seed, list(range(1, permutations + 1)),
                                       null_prediction=null_prediction)
            iterator = range(permutations)
            if progress:
                from tqdm import tqdm
                iterator = tqdm(iterator, desc=f"{method} perm-{perm}", unit="perm", disable=None)  # a terminal only
            null = np.stack([scorer(targets[:, k].astype(np.float64)) for k in iterator])
            table["global_p_perm"] = perm_pvalues(observed, null)
            table["global_p_maxt"] = maxt_pvalues(observed, null)
            table["global_q_fdr"] = permutation_fdr(observed, null)
    return table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)[RESULT_COLUMNS]


@click.command("baselines")
@stage_options("baselines")
def baselines_command(data, method, perm, permutations, xgb_trees, xgb_depth, shap_rows, threads, seed, fdr, out):
    """Score every gene pair with a baseline method; same results table as `ginn test`.

    Gene representations are learnt on the training split. For lr, p_pair is the ANALYTIC t-test
    p-value of the product term (fitted on all samples), q_pair its Benjamini-Hochberg q-value,
    p_pair_fwer its Holm adjustment, called = q_pair <= --fdr. lasso and xgb have no per-pair test;
    with --perm T|R and --permutations N they get the global_* permutation columns (calibrated only
    under "no pair interacts").
    """
    threads = use_threads(threads)
    dataset = Dataset.load(data)
    params = {"data": data, "method": method, "perm": perm, "permutations": permutations, "xgb_trees": xgb_trees,
              "xgb_depth": xgb_depth, "shap_samples": shap_rows, "threads": threads, "seed": seed, "fdr": fdr}
    try:
        table = run_baseline(dataset, method, perm=perm, permutations=permutations, seed=seed, xgb_trees=xgb_trees,
                             xgb_depth=xgb_depth, shap_rows=shap_rows, threads=threads, progress=True, fdr=fdr)
    except GinnError as exc:
        raise GinnError(exc.path or "--method", exc.problem) from None
    with atomic_outputs() as outputs:
        write_tsv(outputs.file(out), table)
        write_json(outputs.file(provenance_path(out)),
                   provenance_record("baselines", params, inputs={"data": Path(data)}, seed=seed))
    log.info("baselines: %s scored %d pairs -> %s", method, len(table), out)
