"""``ginn replicate``: do the discovered gene-gene interactions hold in an independent cohort?

The paper's replication in FINRISK (Results, Eqs. 4-5, Table 1, Fig. 7), for a replication cohort
given as a PLINK fileset and a phenotype:

1. **Alignment.** Each discovery SNP is found in the cohort by ID, else by chromosome and position,
   with alleles compared on both strands: A1/A2 swapped -> dosage 2 - x; reported on the other
   strand -> complemented; strand-ambiguous (A/T, C/G) SNPs are oriented by allele frequency when
   both cohorts' minor allele frequencies are at most ``--ambiguous-maf`` (0.4, the usual
   harmonisation rule: further from 0.5 the minor allele tells the strand) and dropped otherwise.
   A SNP the cohort lacks, or that was dropped, is mean-imputed with the discovery mean (its centred
   value is 0, exactly how the discovery data treat a missing call). Every decision is written to
   ``REPL.alignment.tsv`` and the counts per gene to ``REPL.gene_alignment.tsv``.
2. **Phenotype** prepared like the discovery data (covariates and, by default, as many genotype PCs
   as the discovery data used, regressed out; rank-based inverse-normal transform).
3. **Gene values** of both cohorts from the gene layer of the discovery ensemble's ``observed``
   members. Each member learns gene i only up to sign and scale (its predictor absorbs both), so the
   members' values cannot be averaged raw; the ensemble convention of the paper (the average over
   members) is applied after standardising each member's value on the discovery cohort and orienting
   it by the sign of its loading on the members' leading principal component. The mean is then
   standardised again on the discovery cohort; the replication cohort goes through the same maps.
4. **Eq. 5.** Per candidate pair, on the discovery cohort: a pairwise MLP h(g_i, g_j) and an additive
   one h_i(g_i) + h_j(g_j) (one hidden layer of 32 ReLUs each; mini-batch Adam on the training rows,
   the held-out rows choose the stopping epoch); the learned interaction is their difference. The
   target is the discovery phenotype less the linear main effects of all genes (OLS): additive terms
   cancel in h - h_i - h_j, so this is the paper's pattern with less noise to fit through. In the
   replication cohort the residual of y on an intercept, g_i and g_j (OLS) is regressed on the
   predicted interaction and alpha > 0 is tested one-sided (t with n - 2 degrees of freedom).
5. **Eq. 4.** The top-SNP regression y ~ s_i + s_j + s_i s_j (top SNP: largest marginal |correlation|
   with the discovery target on the training rows) in both cohorts; two-sided p of the product term.

Outputs: ``REPL.tsv`` (one row per candidate pair), the alignment tables, ``REPL.points.tsv`` and
``REPL.surface.tsv`` (what Fig. 7a/b of ``ginn report`` draws) and ``REPL.provenance.json``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import pandas as pd
import torch
from scipy import stats
from torch import nn

from .adam import Adam
from .baselines import lr_interaction_tests, top_snp_columns
from .dataset import Dataset, center_dosages
from .errors import GinnError
from .files import atomic_outputs, numeric_column, provenance_path, provenance_record, read_table, write_json, write_tsv
from .genes import normalize_chrom
from .model import check_compatible, check_interaction_ensemble, load_ensemble, read_ensemble_json
from .genotypes import GenotypeInput, GenotypeSource
from .prepare import covariate_names, prepare_target, residualize
from .threads import use_threads
from .contract import stage_default, stage_options

log = logging.getLogger(__name__)

REPL_COLUMNS = ["gene_a", "gene_b", "score", "q_pair", "alpha", "se", "p_one_sided", "topsnp_p_discovery",
                "topsnp_p_replication", "n_snps_aligned", "n_flipped", "n_missing"]
AMBIGUOUS_MAF = stage_default("replicate", "ambiguous-maf")
_COMPLEMENT = {"A": "T", "T": "A", "C": "G", "G": "C"}
# Decisions that keep the replication dosage, and whether the dosage is flipped (2 - x).
KEPT_DECISIONS = {"same": False, "swapped": True, "strand_flipped": False, "strand_flipped_swapped": True,
                  "ambiguous_same": False, "ambiguous_swapped": True}
DROPPED_DECISIONS = ("dropped_ambiguous", "dropped_allele_mismatch", "missing")

# Eq. 5 networks: one hidden ReLU layer, mini-batch Adam, early stopping on the held-out rows.
PAIR_HIDDEN = 32
FIT_BATCH = 1024
FIT_MAX_EPOCHS = 40
FIT_PATIENCE = 5           # epochs without a better validation loss before the fit ends
FIT_LR = 1e-2
EVAL_BATCH = 8192
PAIR_CHUNK = 32            # pairs fitted together (bounds memory on large cohorts)
SURFACE_GRID = 41
POINTS_PER_PAIR = 5000
CONSENSUS_ROWS = 50_000    # discovery rows that fix the consensus maps (plenty for means, sds, signs)


# --------------------------------------------------------------------------------------------------
# Allele alignment
# --------------------------------------------------------------------------------------------------

def _complement(allele: str) -> str | None:
    return _COMPLEMENT.get(allele)


def is_ambiguous(a1: str, a2: str) -> bool:
    """A/T and C/G SNPs read the same on both strands, so their alleles cannot tell the strand."""
    return _complement(a1) == a2


def allele_orientation(a1: str, a2: str, b1: str, b2: str) -> str | None:
    """How replication alleles (b1 counted) relate to discovery ones (a1 counted), ignoring the
    strand ambiguity of A/T and C/G SNPs; None when they are different alleles."""
    if (b1, b2) == (a1, a2):
        return "same"
    if (b1, b2) == (a2, a1):
        return "swapped"
    c1, c2 = _complement(b1), _complement(b2)
    if (c1, c2) == (a1, a2):
        return "strand_flipped"
    if (c1, c2) == (a2, a1):
        return "strand_flipped_swapped"
    return None


def strand_agrees(freq_discovery: float, freq_literal: float, max_maf: float) -> bool | None:
    """Is an A/T or C/G SNP on the strand its alleles literally say? None when it cannot be told.

    ``freq_literal`` is the replication frequency of the discovery A1 if the alleles are read as
    written. When both minor allele frequencies are <= max_maf, the minor allele must be the same one
    in both cohorts; closer to 0.5 the frequencies cannot tell the strand.
    """
    if max(min(freq_discovery, 1 - freq_discovery), min(freq_literal, 1 - freq_literal)) > max_maf:
        return None
    return (freq_discovery < 0.5) == (freq_literal < 0.5)


def match_variants(discovery: pd.DataFrame, bim: pd.DataFrame) -> pd.DataFrame:
    """For each discovery SNP (snp chrom pos a1 a2), the replication variant it corresponds to.

    Candidates are the variant with the same ID, then those at the same chromosome and position;
    the first whose alleles match on either strand is taken. Returns repl_index (-1: none), match
    (id / position / none) and orientation (None when no candidate's alleles match).
    """
    by_id = pd.Series(np.arange(len(bim)), index=bim["snp"].to_numpy())
    bim_chrom = normalize_chrom(bim["chrom"]).fillna(bim["chrom"].astype(str)).to_numpy()
    by_position: dict[tuple[str, int], list[int]] = {}
    for index, key in enumerate(zip(bim_chrom, bim["pos"].to_numpy())):
        by_position.setdefault((key[0], int(key[1])), []).append(index)
    b1s = bim["a1"].str.upper().to_numpy()
    b2s = bim["a2"].str.upper().to_numpy()
    disc_chrom = normalize_chrom(discovery["chrom"]).fillna(discovery["chrom"].astype(str)).to_numpy()

    rows = []
    for snp, chrom, pos, a1, a2 in zip(discovery["snp"], disc_chrom, discovery["pos"],
                                       discovery["a1"].str.upper(), discovery["a2"].str.upper()):
        candidates = [("id", int(by_id[snp]))] if snp in by_id.index else []
        candidates += [("position", i) for i in by_position.get((chrom, int(pos)), []) if bim["snp"].iat[i] != snp]
        chosen = ("none", -1, None)
        for how, index in candidates:
            orientation = allele_orientation(a1, a2, b1s[index], b2s[index])
            if orientation is not None:
                chosen = (how, index, orientation)
                break
        if chosen[1] < 0 and candidates:  # found, but the alleles differ
            chosen = (candidates[0][0], candidates[0][1], None)
        rows.append(chosen)
    return pd.DataFrame(rows, columns=["match", "repl_index", "orientation"])


@dataclass
class Alignment:
    """Replication genotypes laid out like the discovery columns, and the per-SNP decisions."""

    genotypes: np.ndarray       # int8 or float32 (n, P) discovery A1 dosage, -1 where missing or imputed
    table: pd.DataFrame         # one row per discovery column: snp gene ... decision flipped imputed

    def centered(self, snp_mean: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Centred with the discovery means, so a missing call or an absent SNP is mean-imputed (0)."""
        return center_dosages(self.genotypes[rows], snp_mean)

    def gene_counts(self) -> pd.DataFrame:
        table = self.table
        counts = table.groupby("gene", sort=False).agg(
            n_snps=("snp", "size"), n_aligned=("imputed", lambda s: int((~s).sum())),
            n_flipped=("flipped", "sum"), n_missing=("imputed", "sum"))
        for decision in list(KEPT_DECISIONS) + list(DROPPED_DECISIONS):
            counts[f"n_{decision}"] = table.groupby("gene", sort=False)["decision"].apply(
                lambda s, d=decision: int((s == d).sum()))
        return counts.reset_index()


def align_cohort(data: Dataset, fileset: GenotypeSource, samples: np.ndarray, max_maf: float) -> Alignment:
    """Match, orient and read the replication genotypes of the discovery SNPs (see module doc)."""
    unique = data.snps.drop_duplicates("snp").reset_index(drop=True)
    first_column = data.snps.reset_index(drop=True).drop_duplicates("snp").index.to_numpy()
    freq_discovery = data.snp_mean[first_column].astype(float) / 2
    matched = match_variants(unique, fileset.bim)
    usable = (matched["repl_index"] >= 0) & matched["orientation"].notna()
    if not usable.any():
        raise GinnError(fileset.files["variants"], f"none of the {len(unique)} discovery SNPs is in it "
                               "(matched by ID and by chromosome + position with compatible alleles)")
    read = matched.loc[usable, "repl_index"].to_numpy()
    dosages = fileset.read_sample_major(read, samples)                         # (n, n_usable)
    called = dosages >= 0
    freq_repl = np.full(len(unique), np.nan)
    freq_repl[usable.to_numpy()] = np.where(called, dosages, 0).sum(0) / np.maximum(2 * called.sum(0), 1)

    decisions = []
    for i, row in matched.iterrows():
        if row.repl_index < 0:
            decisions.append("missing")
        elif pd.isna(row.orientation):
            decisions.append("dropped_allele_mismatch")
        elif is_ambiguous(unique["a1"].iat[i].upper(), unique["a2"].iat[i].upper()):
            literal_flip = KEPT_DECISIONS[row.orientation]
            freq_literal = 1 - freq_repl[i] if literal_flip else freq_repl[i]
            agrees = strand_agrees(freq_discovery[i], freq_literal, max_maf)
            if agrees is None:
                decisions.append("dropped_ambiguous")
            else:
                decisions.append("ambiguous_swapped" if literal_flip == agrees else "ambiguous_same")
        else:
            decisions.append(row.orientation)
    decisions = np.array(decisions, dtype=object)
    keep = np.isin(decisions, list(KEPT_DECISIONS))
    flip = np.array([KEPT_DECISIONS.get(d, False) for d in decisions])

    per_snp = np.full((len(samples), len(unique)), -1, dtype=dosages.dtype)
    columns_read = np.flatnonzero(usable.to_numpy())
    for position, column in enumerate(columns_read):
        if keep[column]:
            values = dosages[:, position]
            per_snp[:, column] = np.where(values >= 0, 2 - values, -1) if flip[column] else values
    column_of_snp = pd.Series(np.arange(len(unique)), index=unique["snp"].to_numpy())[data.snps["snp"]].to_numpy()

    bim = fileset.bim
    index = matched["repl_index"].to_numpy()
    found = index >= 0
    table = pd.DataFrame({
        "snp": unique["snp"], "chrom": unique["chrom"], "pos": unique["pos"], "a1": unique["a1"], "a2": unique["a2"],
        "match": matched["match"],
        "repl_snp": np.where(found, bim["snp"].to_numpy()[np.maximum(index, 0)], None),
        "repl_a1": np.where(found, bim["a1"].to_numpy()[np.maximum(index, 0)], None),
        "repl_a2": np.where(found, bim["a2"].to_numpy()[np.maximum(index, 0)], None),
        "freq_discovery": freq_discovery, "freq_replication": freq_repl,
        "decision": decisions, "flipped": flip & keep, "imputed": ~keep})
    table = table.iloc[column_of_snp].reset_index(drop=True)
    table.insert(1, "gene", data.snps["gene"].to_numpy())
    return Alignment(per_snp[:, column_of_snp], table)


# --------------------------------------------------------------------------------------------------
# Replication phenotype
# --------------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------------
# Gene values from the discovery ensemble
# --------------------------------------------------------------------------------------------------

@torch.no_grad()
def member_gene_values(model, centered, rows: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Gene values (K, n, M) of every network for ``rows``; ``centered(rows)`` gives their genotypes."""
    parts = [model.gene_layer(torch.from_numpy(centered(rows[start:start + batch_size]))).numpy()
             for start in range(0, len(rows), batch_size)]
    return np.concatenate(parts, axis=1).astype(np.float64)


@dataclass
class ConsensusGenes:
    """Affine maps from the members' gene values to one standardised value per gene (module doc)."""

    mean: np.ndarray        # (K, M) discovery mean of each member's value
    weight: np.ndarray      # (K, M) sign / (sd * n_usable), 0 for a member whose value is constant
    centre: np.ndarray      # (M,) discovery mean of the weighted sum
    scale: np.ndarray       # (M,) discovery sd of the weighted sum (0: no member uses the gene)

    @classmethod
    def fit(cls, values: np.ndarray) -> "ConsensusGenes":
        mean, sd = values.mean(axis=1), values.std(axis=1)
        usable = sd > 1e-8 * np.maximum(1.0, np.abs(mean))
        z = np.where(usable[:, None, :], (values - mean[:, None, :]) / np.where(usable, sd, 1.0)[:, None, :], 0.0)
        weight = np.zeros_like(mean)
        for gene in range(values.shape[2]):
            members = np.flatnonzero(usable[:, gene])
            if len(members) == 0:
                continue
            zg = z[members, :, gene]
            _, vectors = np.linalg.eigh(zg @ zg.T / zg.shape[1])
            loading = vectors[:, -1] * (1.0 if vectors[0, -1] >= 0 else -1.0)   # first member sets the sign
            weight[members, gene] = np.where(loading >= 0, 1.0, -1.0) / (sd[members, gene] * len(members))
        combined = np.einsum("knm,km->nm", values - mean[:, None, :], weight)
        return cls(mean, weight, combined.mean(axis=0), combined.std(axis=0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        combined = np.einsum("knm,km->nm", values - self.mean[:, None, :], self.weight)
        return np.divide(combined - self.centre, self.scale, out=np.zeros_like(combined), where=self.scale > 0)

    def gene_values(self, model, centered, n_rows: int, batch_size: int = 4096) -> np.ndarray:
        """Consensus gene values (n, M) of rows 0..n-1, batch by batch."""
        rows = np.arange(n_rows)
        return np.concatenate([self.transform(member_gene_values(model, centered, rows[start:start + batch_size]))
                               for start in range(0, n_rows, batch_size)])


# --------------------------------------------------------------------------------------------------
# Eq. 5: pairwise and additive MLPs on the discovery gene values
# --------------------------------------------------------------------------------------------------

class PairNetworks(nn.Module):
    """For each of P pairs, ``parts`` independent one-hidden-layer ReLU MLPs whose outputs add up.

    parts=1, inputs=2: the pairwise h(g_i, g_j); parts=2, inputs=1: the additive h_i(g_i) + h_j(g_j).
    Pair p's parameters come from ``np.random.default_rng(seeds[p])`` alone (torch.nn.Linear's
    uniform init), so a pair's fit does not depend on which other pairs are fitted with it.
    """

    def __init__(self, seeds: list[int], parts: int, inputs: int, hidden: int = PAIR_HIDDEN):
        super().__init__()
        self.parts, self.inputs = parts, inputs
        shapes = {"w1": ((parts, inputs, hidden), inputs), "b1": ((parts, 1, hidden), inputs),
                  "w2": ((parts, hidden), hidden), "b2": ((parts, 1), hidden)}
        draws = {name: [] for name in shapes}
        for seed in seeds:
            rng = np.random.default_rng(seed)
            for name, (shape, fan_in) in shapes.items():
                draws[name].append(rng.uniform(-1, 1, shape) / np.sqrt(fan_in))
        for name, values in draws.items():
            setattr(self, name, nn.Parameter(torch.tensor(np.stack(values), dtype=torch.float32)))

    def forward(self, pair_values: torch.Tensor) -> torch.Tensor:
        """(P, B, 2) gene values of each pair -> (P, B) predictions."""
        if self.parts == 1:
            x = pair_values.unsqueeze(1)                        # (P, 1, B, 2)
        else:
            x = pair_values.permute(0, 2, 1).unsqueeze(-1)      # (P, 2, B, 1)
        n_pairs, batch = pair_values.shape[0], pair_values.shape[1]
        x = x.reshape(n_pairs * self.parts, batch, self.inputs)
        hidden = torch.relu(torch.baddbmm(self.b1.flatten(0, 1), x, self.w1.flatten(0, 1)))
        out = torch.baddbmm(self.b2.flatten(0, 1).unsqueeze(-1), hidden, self.w2.flatten(0, 1).unsqueeze(-1))
        return out.view(n_pairs, self.parts, batch).sum(dim=1)


def _mse(network: PairNetworks, values: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pair mean squared error over rows, evaluated in row chunks, (P,)."""
    total = torch.zeros(values.shape[0])
    with torch.no_grad():
        for start in range(0, values.shape[1], EVAL_BATCH):
            part = slice(start, start + EVAL_BATCH)
            total += ((network(values[:, part]) - y[part]) ** 2).sum(dim=1)
    return total / values.shape[1]


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one CPU thread: the pair networks' steps are many tiny batched ops, for which
    thread start-up costs more than it saves (10x slower on an oversubscribed machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fit_pair_networks(network: PairNetworks, train: torch.Tensor, y_train: torch.Tensor, valid: torch.Tensor,
                      y_valid: torch.Tensor, seed: int) -> PairNetworks:
    """Mini-batch Adam (:class:`ginn.adam.Adam`) on the summed per-pair MSE; after each epoch every pair
    keeps the parameters of its best validation loss, and the fit ends when no pair improved for
    FIT_PATIENCE epochs.
    The batches are the same for every pair (drawn from ``seed``), so pairs stay independent."""
    optimizer = Adam(network.parameters(), lr=FIT_LR)
    rng = np.random.default_rng([seed, 0x5EED])
    best_loss = _mse(network, valid, y_valid)
    best = {name: p.detach().clone() for name, p in network.named_parameters()}
    stale = torch.zeros(len(best_loss), dtype=torch.long)
    for _ in range(FIT_MAX_EPOCHS):
        order = torch.from_numpy(rng.permutation(train.shape[1]))
        for start in range(0, len(order), FIT_BATCH):
            rows = order[start:start + FIT_BATCH]
            optimizer.zero_grad()
            ((network(train[:, rows]) - y_train[rows]) ** 2).mean(dim=1).sum().backward()
            optimizer.step()
        current = _mse(network, valid, y_valid)
        improved = current < best_loss
        best_loss = torch.where(improved, current, best_loss)
        stale = torch.where(improved, 0, stale + 1)
        with torch.no_grad():
            for name, p in network.named_parameters():
                best[name] = torch.where(improved.view(-1, *([1] * (p.dim() - 1))), p, best[name])
        if bool((stale >= FIT_PATIENCE).all()):
            break
    with torch.no_grad():
        for name, p in network.named_parameters():
            p.copy_(best[name])
    return network


@dataclass
class InteractionPatterns:
    """Fitted h and h_i + h_j for P pairs; ``__call__`` gives h - h_i - h_j."""

    pairwise: PairNetworks
    additive: PairNetworks

    @torch.no_grad()
    def __call__(self, pair_values: np.ndarray) -> np.ndarray:
        """(P, n, 2) -> learned interaction (P, n)."""
        x = torch.tensor(pair_values, dtype=torch.float32)
        out = []
        for start in range(0, x.shape[1], EVAL_BATCH):
            part = x[:, start:start + EVAL_BATCH]
            out.append((self.pairwise(part) - self.additive(part)).numpy())
        return np.concatenate(out, axis=1).astype(np.float64)


def pair_seed(seed: int, gene_a: str, gene_b: str, which: int) -> int:
    """Init seed of one pair's network from (seed, gene names, which network) only."""
    words = [int(seed), which] + [ord(c) for c in f"{gene_a}\t{gene_b}"]
    return int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0]) >> 1


def learn_interaction_patterns(pair_values: np.ndarray, y: np.ndarray, is_test: np.ndarray,
                               names: list[tuple[str, str]], seed: int) -> InteractionPatterns:
    """Fit Eq. 5's two networks for every pair on the discovery cohort ((P, N, 2) gene values)."""
    x = torch.tensor(pair_values, dtype=torch.float32)
    target = torch.tensor(np.asarray(y), dtype=torch.float32)
    train, valid = torch.from_numpy(np.flatnonzero(~is_test)), torch.from_numpy(np.flatnonzero(is_test))
    networks = []
    for which, (parts, inputs) in enumerate(((1, 2), (2, 1))):
        network = PairNetworks([pair_seed(seed, a, b, which) for a, b in names], parts, inputs)
        with single_threaded():
            networks.append(fit_pair_networks(network, x[:, train], target[train], x[:, valid], target[valid], seed))
    return InteractionPatterns(*networks)


# --------------------------------------------------------------------------------------------------
# Regressions (Eqs. 4 and 5)
# --------------------------------------------------------------------------------------------------

def ols(design: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Least squares with an intercept column prepended: coefficients, standard errors, residual dof."""
    x = np.column_stack([np.ones(len(y)), design])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    dof = len(y) - x.shape[1]
    sigma2 = float(((y - x @ beta) ** 2).sum()) / dof
    se = np.sqrt(np.diag(np.linalg.pinv(x.T @ x)) * sigma2)
    return beta, se, dof


def replication_regression(y: np.ndarray, gene_a: np.ndarray, gene_b: np.ndarray,
                           interaction: np.ndarray) -> dict[str, float]:
    """Eq. 5: residual of y after linear main effects, regressed on the predicted interaction."""
    main, _, _ = ols(np.column_stack([gene_a, gene_b]), y)
    residual = y - np.column_stack([np.ones(len(y)), gene_a, gene_b]) @ main
    if interaction.std() <= 1e-12 * max(1.0, np.abs(interaction).max()):
        return {"alpha": np.nan, "intercept": np.nan, "se": np.nan, "p_one_sided": np.nan, "residual": residual}
    beta, se, dof = ols(interaction[:, None], residual)
    return {"alpha": beta[1], "intercept": beta[0], "se": se[1],
            "p_one_sided": float(stats.t.sf(beta[1] / se[1], dof)), "residual": residual}


def topsnp_interaction_p(y: np.ndarray, snp_a: np.ndarray, snp_b: np.ndarray) -> float:
    """Eq. 4: two-sided p of the product term in y ~ s_i + s_j + s_i s_j (NA if a SNP is constant,
    e.g. absent from the replication cohort)."""
    if snp_a.std() == 0 or snp_b.std() == 0:
        return np.nan
    return float(lr_interaction_tests(np.column_stack([snp_a, snp_b]), y)[1][0])


# --------------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------------

def select_candidates(results: pd.DataFrame, path: str | Path, genes: list[str], fdr: float | None,
                      top: int | None) -> pd.DataFrame:
    """Candidate pairs: the top N by score, or those with q_pair <= fdr (the per-pair calls of `ginn
    test`); genes must be in DATA/."""
    for col in ("score", "q_pair"):   # NA stays allowed: a method without a per-pair test
        results[col] = numeric_column(results, col, path, missing_ok=True)
    results = results.sort_values("score", ascending=False, kind="stable")
    chosen = results.head(top) if top is not None else results[results["q_pair"] <= fdr]
    unknown = sorted(set(chosen["gene_a"]).union(chosen["gene_b"]) - set(genes))
    if unknown:
        raise GinnError(path, f"gene(s) not in the discovery dataset: {', '.join(unknown[:10])}")
    return chosen.reset_index(drop=True)


def _pair_counts(table: pd.DataFrame, gene_a: str, gene_b: str) -> dict[str, int]:
    rows = table[table["gene"].isin([gene_a, gene_b])]
    return {"n_snps_aligned": int((~rows["imputed"]).sum()), "n_flipped": int(rows["flipped"].sum()),
            "n_missing": int(rows["imputed"].sum())}


SURFACE_COLUMNS = ["gene_a", "gene_b", "value_a", "value_b", "interaction"]
POINT_COLUMNS = ["gene_a", "gene_b", "value_a", "value_b", "interaction", "residual"]


def _surface(patterns: InteractionPatterns, discovery_values: np.ndarray, pairs: list[tuple[int, int]],
             names: list[tuple[str, str]], shown: int) -> pd.DataFrame:
    """Learned interaction of the first ``shown`` of the fitted ``pairs`` over a grid spanning the
    central 99% of each gene's discovery values."""
    grids = []
    for a, b in pairs:
        axes = [np.linspace(*np.quantile(discovery_values[:, g], [0.005, 0.995]), SURFACE_GRID) for g in (a, b)]
        ga, gb = np.meshgrid(*axes, indexing="ij")
        grids.append(np.column_stack([ga.ravel(), gb.ravel()]))
    values = patterns(np.stack(grids))
    return pd.concat([pd.DataFrame({"gene_a": name_a, "gene_b": name_b, "value_a": grid[:, 0],
                                    "value_b": grid[:, 1], "interaction": surface})
                      for (name_a, name_b), grid, surface in list(zip(names, grids, values))[:shown]],
                     ignore_index=True)


def _concat(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def eq5_replication(g_disc: np.ndarray, g_repl: np.ndarray, y_fit: np.ndarray, is_test: np.ndarray,
                    y_repl: np.ndarray, pairs: list[tuple[int, int]], names: list[tuple[str, str]], seed: int,
                    plot_pairs: int) -> tuple[list[dict], pd.DataFrame, pd.DataFrame]:
    """Eq. 5 for every pair (alpha, se, one-sided p), and Fig. 7's data for the first ``plot_pairs``:
    replication individuals (gene values, predicted interaction, residual) and the learned surface."""
    stats, points, surfaces = [], [], []
    for start in range(0, len(pairs), PAIR_CHUNK):
        chunk, chunk_names = pairs[start:start + PAIR_CHUNK], names[start:start + PAIR_CHUNK]
        patterns = learn_interaction_patterns(np.stack([g_disc[:, [a, b]] for a, b in chunk]), y_fit, is_test,
                                              chunk_names, seed)
        predicted = patterns(np.stack([g_repl[:, [a, b]] for a, b in chunk]))
        for offset, ((a, b), (name_a, name_b)) in enumerate(zip(chunk, chunk_names)):
            fit = replication_regression(y_repl, g_repl[:, a], g_repl[:, b], predicted[offset])
            stats.append({key: fit[key] for key in ("alpha", "se", "p_one_sided")})
            if start + offset < plot_pairs:
                shown = np.random.default_rng([seed, start + offset]).permutation(len(y_repl))[:POINTS_PER_PAIR]
                points.append(pd.DataFrame({"gene_a": name_a, "gene_b": name_b, "value_a": g_repl[shown, a],
                                            "value_b": g_repl[shown, b], "interaction": predicted[offset, shown],
                                            "residual": fit["residual"][shown]}))
        if start < plot_pairs:
            surfaces.append(_surface(patterns, g_disc, chunk, chunk_names, plot_pairs - start))
    return stats, _concat(points, POINT_COLUMNS), _concat(surfaces, SURFACE_COLUMNS)


def run_replicate(data_path: str | Path, models_path: str | Path, results_path: str | Path, genotypes: GenotypeInput,
                  pheno: str | Path, pheno_name: str, out: str | Path, covar: str | Path | None = None,
                  covar_names: list[str] | None = None, pcs: int | None = None, pc_file: str | Path | None = None,
                  fdr: float = stage_default("replicate", "fdr"), top: int | None = None,
                  ambiguous_maf: float = AMBIGUOUS_MAF,
                  plot_pairs: int = 6, seed: int = 0) -> pd.DataFrame:
    """Replicate the candidate pairs of RESULTS.tsv in the cohort ``genotypes``; returns REPL.tsv's table."""
    if not 0 <= ambiguous_maf <= 0.5:
        raise GinnError(None, f"--ambiguous-maf must be in [0, 0.5], got {ambiguous_maf}")
    data = Dataset.load(data_path)
    check_interaction_ensemble(models_path, read_ensemble_json(models_path))
    model, networks = load_ensemble(models_path)
    check_compatible(model, data)
    observed = [k for k, net in enumerate(networks) if net["dataset"] == "observed"]
    if not observed:
        raise GinnError(models_path, "the ensemble has no network trained on the observed target")
    model = model.select(observed).eval()
    results = read_table(results_path, required=["gene_a", "gene_b", "score", "q_pair"], what="results")
    candidates = select_candidates(results, results_path, data.genes, fdr, top)
    fileset = genotypes.open()
    if pcs is None:
        pcs = int(data.meta.get("params", {}).get("pcs", 0) or 0)
    kept, y_repl, cohort = prepare_target(fileset, pheno, pheno_name, covar, covar_names, pcs, pc_file, seed)
    alignment = align_cohort(data, fileset, kept, ambiguous_maf)
    counts = alignment.gene_counts()
    log.info("replicate: %d samples; SNPs aligned %d, flipped %d, mean-imputed %d of %d",
             len(kept), int(counts["n_aligned"].sum()), int(counts["n_flipped"].sum()),
             int(counts["n_missing"].sum()), len(alignment.table))

    fit_rows = np.sort(np.random.default_rng([seed, 1]).permutation(data.n_samples)[:CONSENSUS_ROWS])
    consensus = ConsensusGenes.fit(member_gene_values(model, data.centered, fit_rows))
    g_disc = consensus.gene_values(model, data.centered, data.n_samples)
    g_repl = consensus.gene_values(model, lambda rows: alignment.centered(data.snp_mean, rows), len(kept))

    gene_index = {g: i for i, g in enumerate(data.genes)}
    pairs = [(gene_index[a], gene_index[b]) for a, b in zip(candidates["gene_a"], candidates["gene_b"])]
    names = list(zip(candidates["gene_a"], candidates["gene_b"]))
    top_columns = top_snp_columns(data, data.train_idx)
    y_disc = data.target.astype(np.float64)
    # h - h_i - h_j is unchanged by additive terms in the target, so the networks are fitted to y
    # without the linear main effects of all genes: same interaction, much less noise to fit through.
    y_fit = residualize(y_disc, g_disc)
    eq5, points_table, surface_table = eq5_replication(g_disc, g_repl, y_fit, data.is_test, y_repl, pairs, names,
                                                        seed, plot_pairs)
    x_top_disc = center_dosages(np.asarray(data.genotypes[:, top_columns]), data.snp_mean[top_columns])
    x_top_repl = center_dosages(alignment.genotypes[:, top_columns], data.snp_mean[top_columns])
    rows = []
    for i, ((a, b), fit) in enumerate(zip(pairs, eq5)):
        rows.append({**candidates.loc[i, ["gene_a", "gene_b", "score", "q_pair"]].to_dict(), **fit,
                     "topsnp_p_discovery": topsnp_interaction_p(y_disc, x_top_disc[:, a], x_top_disc[:, b]),
                     "topsnp_p_replication": topsnp_interaction_p(y_repl, x_top_repl[:, a], x_top_repl[:, b]),
                     **_pair_counts(alignment.table, *names[i])})
    table = pd.DataFrame(rows, columns=REPL_COLUMNS)
    if table.empty:
        log.warning("replicate: no candidate pair (none with q_pair <= %g in %s); writing an empty table",
                    fdr, results_path)

    out = Path(out)
    stem = out.with_name(out.name.removesuffix(".tsv"))
    params = {"data": str(data_path), "models": str(models_path), "results": str(results_path), **genotypes.as_params(),
              "pheno": str(pheno), "pheno_name": pheno_name, "covar": None if covar is None else str(covar),
              "covar_names": covar_names or [], "pcs": pcs, "pc_file": None if pc_file is None else str(pc_file),
              "fdr": None if top is not None else fdr, "top": top, "ambiguous_maf": ambiguous_maf,
              "plot_pairs": plot_pairs, "seed": seed}
    summary = {"cohort": cohort, "n_candidates": len(table), "n_members": len(observed),
               "n_replicated_p05": int((table["p_one_sided"] < 0.05).sum()),
               "alignment": {d: int((alignment.table.drop_duplicates("snp")["decision"] == d).sum())
                             for d in list(KEPT_DECISIONS) + list(DROPPED_DECISIONS)}}
    with atomic_outputs() as outputs:
        write_tsv(outputs.file(out), table)
        write_tsv(outputs.file(f"{stem}.alignment.tsv"), alignment.table)
        write_tsv(outputs.file(f"{stem}.gene_alignment.tsv"), counts)
        write_tsv(outputs.file(f"{stem}.points.tsv"), points_table)
        write_tsv(outputs.file(f"{stem}.surface.tsv"), surface_table)
        write_json(outputs.file(provenance_path(out)), provenance_record(
            "replicate", params, seed=seed,
            inputs={"data": data_path, "models": models_path, "results": results_path, "pheno": pheno,
                    "covar": covar, "pc_file": pc_file, **fileset.files},
            extra={"summary": summary}))
    log.info("replicate: %d of %d candidate pairs replicate at one-sided p < 0.05 -> %s",
             summary["n_replicated_p05"], len(table), out)
    return table


@click.command("replicate")
@stage_options("replicate")
def replicate_command(data_path, models_path, results_path, genotypes, pheno, pheno_name, covar, covar_name, pcs, pc_file,
                      fdr, top, ambiguous_maf, plot_pairs, seed, threads, out):
    """Test discovered gene-gene interactions in an independent cohort (the paper's Eqs. 4-5)."""
    use_threads(threads)
    run_replicate(data_path, models_path, results_path, genotypes, pheno, pheno_name, out, covar=covar,
                  covar_names=covariate_names(covar, covar_name), pcs=pcs, pc_file=pc_file, fdr=fdr, top=top, ambiguous_maf=ambiguous_maf,
                  plot_pairs=plot_pairs, seed=seed)
