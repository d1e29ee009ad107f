"""Shapley interaction scores between gene nodes (Methods › Gene–gene interaction score, Eqs. 8–12).

The game. For network k, individual x and coalition S ⊆ F of the M genes, f(x; S) is the predictor
evaluated on the gene values g(x) with absent genes set to a baseline c (Eq. 9). The baseline is the
mean gene value over the scored individuals by default (the paper's "empirical mean"); callers may
pass any other, e.g. the training-set mean.

Why it is cheap. The predictor's first layer is linear in the gene values, so the hidden
pre-activation of coalition S is

    a(S) = b1 + W1 c + Σ_{i∈S} W1[:, i] (g_i − c_i) = base + Σ_{i∈S} offset_i(x),

and masking a gene only adds or removes one fixed H-vector. No estimator here ever calls the network:
they add offsets, apply ReLU and take the dot product with w2 (the output bias b2 cancels in every
index). A main-effect predictor (H = 0, f = w·g + b) is written exactly as the two-unit MLP
relu(w·g) − relu(−w·g) + b, whose interactions are zero up to rounding.

The indices. For a gene subset U of order q = |U| (1: Shapley value, 2: SII of a pair, 3: third-order
SII of a triple) the Shapley interaction index is

    SII_U(x) = Σ_{S ⊆ F∖U} w_q(|S|) Σ_{L ⊆ U} (−1)^{q−|L|} f(x; S ∪ L),
    w_q(s) = s!(M−s−q)!/(M−q+1)!   (pairs: s!(M−s−2)!/(M−1)!; triples: s!(M−s−3)!/(M−2)!).

w_q(s) = 1/((M−q+1)·C(M−q, s)): the size of S is uniform on 0..M−q and S is uniform given its size.

* :class:`ExactInteractions` enumerates all 2^M coalitions once per individual and gets every index
  at once as f(all coalitions) @ coefficient matrix (2^M × indices), in memory-bounded blocks.
* :class:`MonteCarloInteractions` estimates all pairs (and Shapley values, and chosen triples)
  without bias from random coalitions shared by all of them (see its docstring for why not the
  authors' estimator).
* :class:`ShapleyValues` gives the first-order values, exact or by sampling.

Every estimator returns :class:`InteractionScores`: the local index per individual, the global score
E_x|SII(x)| (Eq. 11) per network, and the Monte-Carlo standard errors; :func:`ensemble_summary`
averages members (Eq. 12).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from .memory import keep_freed_memory

try:  # the C kernel of exact enumeration on the CPU (src/ginn/_coalitions.c, built by setup.py)
    from . import _coalitions
except ImportError:  # a source tree whose extensions were not built: the torch path, several times slower
    _coalitions = None

# Largest intermediate tensor an estimator builds, in elements (4 MiB in float32: cache-sized blocks
# avoid the page faults of fresh large allocations).
DEFAULT_BUDGET = 1 << 20
# Exact enumeration handles 2^block_bits coalitions per block (genes 0..block_bits-1 vary inside).
BLOCK_BITS = 12
# Pre-activations built per slab of rows, in elements: 512 KiB of float32 stays in a core's L2 for the
# ReLU and the product that follow (one row of M = 10, H = 100 is 400 KiB; larger slabs ran 2.5x slower).
CACHE_ELEMENTS = 1 << 17
MAX_EXACT_GENES = 20


def all_pairs(n_genes: int) -> list[tuple[int, int]]:
    """Gene pairs (i, j), i < j, in the order every estimator reports them."""
    return list(itertools.combinations(range(n_genes), 2))


def singletons(n_genes: int) -> list[tuple[int]]:
    return [(i,) for i in range(n_genes)]


class PredictorGame:
    """The predictors of K networks as games over gene values, absent genes at ``baseline`` (K, M)."""

    def __init__(self, W1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor,
                 baseline: torch.Tensor, dtype: torch.dtype = torch.float64):
        self.W1 = W1.detach().to(dtype)        # (K, H, M)
        self.b1 = b1.detach().to(dtype)        # (K, H)
        self.w2 = w2.detach().to(dtype)        # (K, H)
        self.b2 = b2.detach().to(dtype)        # (K,)
        self.baseline = torch.as_tensor(baseline).detach().to(dtype)  # (K, M)
        self.n_networks, self.hidden, self.n_genes = self.W1.shape
        if self.baseline.shape != (self.n_networks, self.n_genes):
            raise ValueError(f"baseline must be {(self.n_networks, self.n_genes)}, got {tuple(self.baseline.shape)}")
        # Pre-activation of the empty coalition (every gene at its baseline), (K, H).
        self.base = self.b1 + torch.einsum("khm,km->kh", self.W1, self.baseline)

    @classmethod
    def from_weights(cls, weights: dict[str, torch.Tensor], baseline, dtype: torch.dtype = torch.float64):
        """From ``GeneNetworkEnsemble.predictor_weights()``; H = 0 becomes relu(w·g) − relu(−w·g)."""
        if "W1" in weights:
            return cls(weights["W1"], weights["b1"], weights["w2"], weights["b2"], baseline, dtype)
        w, b = weights["w"].detach(), weights["b"].detach()
        k = w.shape[0]
        W1 = torch.stack([w, -w], dim=1)
        w2 = torch.tensor([1.0, -1.0], dtype=w.dtype).expand(k, 2)
        return cls(W1, torch.zeros(k, 2, dtype=w.dtype), w2, b, baseline, dtype)

    def offsets(self, k: int, gene_values: torch.Tensor) -> torch.Tensor:
        """offset_i(x) = W1[:, i] (g_i(x) − c_i) of network k for gene values (N, M): (N, M, H)."""
        centred = gene_values.to(self.W1.dtype) - self.baseline[k]
        return centred[:, :, None] * self.W1[k].T[None]

    def head(self, k: int, preactivation: torch.Tensor) -> torch.Tensor:
        """relu(a) · w2 over the last axis (in place on ``preactivation``): f without b2.

        One matrix-vector product over the flattened rows: ``@`` on a 3-D tensor goes through a
        batched product that copies its input (a third of the Monte-Carlo time)."""
        flat = torch.relu_(preactivation).reshape(-1, self.hidden)
        return flat.mv(self.w2[k]).reshape(preactivation.shape[:-1])

    def value(self, gene_values: torch.Tensor, coalitions: torch.Tensor) -> torch.Tensor:
        """f(x; S) including b2, for gene values (K, N, M) and boolean coalitions (C, M): (K, N, C).

        Direct evaluation on masked inputs (Eq. 9); for checks, not for scoring.
        """
        g = gene_values.to(self.W1.dtype)
        masked = torch.where(coalitions[None, None], g[:, :, None], self.baseline[:, None, None])
        hidden = torch.relu(torch.einsum("kncm,khm->knch", masked, self.W1) + self.b1[:, None, None])
        return torch.einsum("knch,kh->knc", hidden, self.w2) + self.b2[:, None, None]


def index_weights(n_genes: int, order: int) -> np.ndarray:
    """w_q(s) = s!(M−s−q)!/(M−q+1)! for s = 0..M−q (sums to 1 over all S ⊆ F∖U)."""
    n = n_genes - order
    return np.array([1.0 / ((n + 1) * math.comb(n, s)) for s in range(n + 1)])


@dataclass
class InteractionScores:
    """Indices of K networks over N individuals for the gene subsets ``subsets`` (Q of them).

    ``score`` is Eq. 11 per network, the mean over individuals of |local index|. ``se_mc`` is the
    Monte-Carlo standard error from coalition sampling alone (0 when exact) of ``mean``, and by the
    delta method (|·| has slope ±1) of ``score``: the local estimates are independent across
    individuals, so se_mc = sqrt(Σ_n local_se_n²) / N. |·| of a noisy estimate is biased upwards:
    0 <= E|Ŝ| − |S| <= E|Ŝ − S| <= local_se, so ``bias_bound`` = mean_n local_se_n bounds the bias of
    ``score``; it shrinks as 1/sqrt(samples). ``mean`` (signed mean over individuals) and ``local``
    are unbiased.
    """

    subsets: list[tuple[int, ...]]
    score: np.ndarray               # (K, Q) E_x |SII(x)|
    mean: np.ndarray                # (K, Q) E_x SII(x)
    se_mc: np.ndarray               # (K, Q) Monte-Carlo s.e. of mean and (delta method) of score
    bias_bound: np.ndarray          # (K, Q) upper bound of E[score] − exact score
    n_samples: int | None           # None: exact
    local: np.ndarray | None = None      # (K, N, Q) SII(x), if kept
    local_se: np.ndarray | None = None   # (K, N, Q) its Monte-Carlo s.e., if kept

    def columns(self, subsets: Sequence[tuple[int, ...]]) -> np.ndarray:
        """Positions of ``subsets`` among this result's columns."""
        lookup = {u: q for q, u in enumerate(self.subsets)}
        return np.array([lookup[tuple(u)] for u in subsets], dtype=np.int64)


class _Accumulator:
    """Per-network running sums over row batches (so no (K, N, Q) array is needed unless asked)."""

    def __init__(self, n_networks: int, n_rows: int, n_subsets: int, keep_local: bool, dtype: torch.dtype):
        shape = (n_networks, n_subsets)
        self.abs_sum, self.sum, self.var_sum, self.se_sum = (np.zeros(shape) for _ in range(4))
        self.n_rows = n_rows
        local_dtype = np.float64 if dtype == torch.float64 else np.float32
        self.local = np.zeros((n_networks, n_rows, n_subsets), local_dtype) if keep_local else None
        self.local_se = np.zeros_like(self.local) if keep_local else None

    def add(self, k: int, rows: slice, values: torch.Tensor, variance: torch.Tensor | None) -> None:
        values = values.double().cpu().numpy()
        self.abs_sum[k] += np.abs(values).sum(axis=0)
        self.sum[k] += values.sum(axis=0)
        if variance is not None:
            variance = variance.double().cpu().numpy()
            self.var_sum[k] += variance.sum(axis=0)
            self.se_sum[k] += np.sqrt(variance).sum(axis=0)
        if self.local is not None:
            self.local[k, rows] = values
            if variance is not None:
                self.local_se[k, rows] = np.sqrt(variance)

    def result(self, subsets, n_samples) -> InteractionScores:
        n = self.n_rows
        return InteractionScores(list(subsets), self.abs_sum / n, self.sum / n, np.sqrt(self.var_sum) / n,
                                 self.se_sum / n, n_samples, self.local, self.local_se)


def _row_batches(n_rows: int, per_row: int, budget: int) -> list[slice]:
    step = max(1, budget // max(per_row, 1))
    return [slice(s, min(s + step, n_rows)) for s in range(0, n_rows, step)]


def over_networks(work, n_networks: int, device: torch.device) -> None:
    """Run ``work(k)`` for every network; on the CPU one network per thread on torch's threads.

    The cache-sized operations of the exact estimator are too small to split across threads: with
    torch's intra-op threads they ran 20x slower when another process kept a core busy (load 4 on
    this 2-core machine). Networks are independent, so each thread takes whole networks with
    single-threaded operations (torch and ginn._coalitions release the GIL inside them), also when
    there is one network: BLAS splits a product differently with more threads, so the results would
    otherwise depend on the thread count. A GPU runs them one after the other.
    """
    if device.type != "cpu":
        for k in range(n_networks):
            work(k)
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(min(threads, n_networks)) as pool:
            list(pool.map(work, range(n_networks)))
    finally:
        torch.set_num_threads(threads)


def _check_inputs(game: PredictorGame, gene_values: torch.Tensor, n_genes: int) -> torch.Tensor:
    """Gene values as a (K, N, M) tensor for an estimator built for ``n_genes`` genes.

    Every estimator calls this first, so it also asks malloc to keep freed blocks: the estimators
    allocate and free the same cache-sized blocks over and over (see :mod:`ginn.memory`)."""
    keep_freed_memory()
    if game.n_genes != n_genes:
        raise ValueError(f"estimator built for {n_genes} genes, game has {game.n_genes}")
    gene_values = torch.as_tensor(gene_values)
    if gene_values.ndim != 3 or gene_values.shape[0] != game.n_networks or gene_values.shape[2] != game.n_genes:
        raise ValueError(f"gene values must be (K={game.n_networks}, N, M={game.n_genes}), "
                         f"got {tuple(gene_values.shape)}")
    if gene_values.shape[1] == 0:
        raise ValueError("no individuals to score")
    return gene_values


class ExactInteractions:
    """Exact SII of any gene subsets of order 1–3 (default: all pairs) by enumerating 2^M coalitions.

    Coalition T (bit i = gene i present) enters the index of U with coefficient
    (−1)^{q−|T∩U|} w_q(|T| − |T∩U|), so for one individual all indices are f(all T) @ C. Coalitions
    are taken in blocks of 2^b sharing their high bits: the block's pre-activations are the broadcast
    sum of two small tables, over the coalitions of each half of the low genes (built once per row
    batch, the block's shift vector added to one of them), formed a cache-sized slab of rows at a
    time so that the ReLU and the product with w2 read them from cache; C itself takes 2^M·Q elements (36 MB in float32 for
    M = 16 with all genes and pairs). Cost per individual and network: 2^M (3H + Q) operations.

    On the CPU the block's values come from ``ginn._coalitions`` instead: the same tables, but the
    sum, ReLU and product with w2 in one pass in registers (2^M·2H operations, ~10x faster than the
    three memory passes of torch, which remain for a GPU and for a source tree without the kernel).
    """

    def __init__(self, n_genes: int, subsets: Sequence[Sequence[int]] | None = None,
                 block_bits: int = BLOCK_BITS, budget: int = DEFAULT_BUDGET):
        if n_genes > MAX_EXACT_GENES:
            raise ValueError(f"exact enumeration is limited to {MAX_EXACT_GENES} genes (2^M coalitions); "
                             f"{n_genes} genes need Monte-Carlo sampling")
        self.n_genes = n_genes
        self.subsets = [tuple(int(i) for i in u) for u in (all_pairs(n_genes) if subsets is None else subsets)]
        for u in self.subsets:
            if not 1 <= len(u) <= 3 or len(set(u)) != len(u) or min(u) < 0 or max(u) >= n_genes:
                raise ValueError(f"gene subset {u} must hold 1-3 distinct genes among {n_genes}")
        self.low_bits = min(n_genes, block_bits)
        self.budget = budget
        masks = torch.tensor([sum(1 << i for i in u) for u in self.subsets], dtype=torch.int64)
        self._mask_low = masks & ((1 << self.low_bits) - 1)
        self._mask_high = masks >> self.low_bits
        self._order = torch.tensor([len(u) for u in self.subsets])
        # Weight table: row q, column s -> w_q(s) (zero where s > M − q).
        self._weights = torch.zeros(4, n_genes + 1, dtype=torch.float64)
        for q in range(1, 4):
            if n_genes >= q:
                self._weights[q, : n_genes - q + 1] = torch.from_numpy(index_weights(n_genes, q))
        low = torch.arange(1 << self.low_bits)
        self._low_members = ((low[:, None] >> torch.arange(self.low_bits)) & 1)   # (2^b, b)
        self._popcount = self._low_members.sum(1)

    def _popcount_of(self, values: torch.Tensor) -> torch.Tensor:
        bits = torch.arange(max(self.n_genes - self.low_bits, 1))
        return ((values[..., None] >> bits) & 1).sum(-1)

    def coefficients(self, block: int, dtype: torch.dtype) -> torch.Tensor:
        """C rows for the coalitions block·2^b + (0..2^b−1): (2^b, Q)."""
        high_size = self._popcount_of(torch.tensor(block))
        size = self._popcount[:, None] + high_size                                     # |T|
        inside = (self._popcount[torch.arange(1 << self.low_bits)[:, None] & self._mask_low[None]]
                  + self._popcount_of(block & self._mask_high)[None])                  # |T ∩ U|
        outside = size - inside
        weight = self._weights[self._order[None].expand_as(inside), outside]
        sign = 1 - 2 * ((self._order[None] - inside) % 2)
        return (sign * weight).to(dtype)

    def scores(self, game: PredictorGame, gene_values: torch.Tensor, keep_local: bool = False,
               streams: Sequence | None = None) -> InteractionScores:
        """Exact indices for gene values (K, N, M) (``streams`` unused: nothing is random)."""
        gene_values = _check_inputs(game, gene_values, self.n_genes)
        n_rows, low, dtype = gene_values.shape[1], self.low_bits, game.W1.dtype
        n_blocks = 1 << (self.n_genes - low)
        device = game.W1.device
        coefficients = [self.coefficients(b, dtype).to(device) for b in range(n_blocks)]
        split = low // 2                   # block = (coalitions of genes split..low-1) ⊕ (of genes 0..split-1)
        inner = self._low_members[: 1 << split, :split].to(device, dtype)              # (2^a, a)
        outer = self._low_members[:: 1 << split, split:].to(device, dtype)             # (2^(b-a), b-a)
        high_members = ((torch.arange(n_blocks)[:, None] >> torch.arange(self.n_genes - low)) & 1).to(device, dtype)
        acc = _Accumulator(game.n_networks, n_rows, len(self.subsets), keep_local, game.W1.dtype)
        hidden, n_inner, n_outer = game.hidden, inner.shape[0], outer.shape[0]
        # a GPU wants few large launches: there a slab is the whole row batch
        slab = max(1, CACHE_ELEMENTS // ((1 << low) * hidden)) if device.type == "cpu" else n_rows
        per_row = (n_inner + n_outer + n_blocks) * hidden + (1 << low) + len(self.subsets)

        def network_in_c(k: int) -> None:
            centred = (gene_values[k].to(dtype) - game.baseline[k]).contiguous().numpy()     # (N, M)
            weights = game.W1[k].T.contiguous().numpy()                                     # (M, H)
            base, w2 = game.base[k].contiguous().numpy(), game.w2[k].contiguous().numpy()
            batches = _row_batches(n_rows, (1 << low) + len(self.subsets), self.budget)
            f = torch.empty(batches[0].stop, 1 << low, dtype=dtype)
            for rows in batches:
                n = rows.stop - rows.start
                out = torch.zeros(n, len(self.subsets), dtype=dtype)
                for block in range(n_blocks):
                    _coalitions.values(centred[rows], weights, base, w2, f[:n].numpy(), block, low)
                    out.addmm_(f[:n], coefficients[block])
                acc.add(k, rows, out, None)

        def network(k: int) -> None:
            buffer = torch.empty(min(slab, n_rows, max(1, self.budget // per_row)), n_outer, n_inner, hidden, dtype=dtype, device=device)
            offsets = game.offsets(k, gene_values[k])                                  # (N, M, H)
            for rows in _row_batches(n_rows, per_row, self.budget):
                d = offsets[rows]
                n = d.shape[0]
                inner_sums = (inner @ d[:, :split])[:, None]                           # (n, 1, 2^a, H)
                outer_sums = game.base[k] + outer @ d[:, split:low]                    # (n, 2^(b-a), H)
                shifts = high_members @ d[:, low:]                                     # (n, blocks, H)
                out = torch.zeros(n, len(self.subsets), dtype=dtype, device=device)
                f = torch.empty(n, 1 << low, dtype=dtype, device=device)
                for block in range(n_blocks):
                    block_sums = (outer_sums + shifts[:, block, None, :] if n_blocks > 1 else outer_sums)[:, :, None]
                    # pre-activations of the block's coalitions, a broadcast sum of two small tables,
                    # slab by slab so they stay in cache for the ReLU and the product with w2
                    for start in range(0, n, slab):
                        stop = min(start + slab, n)
                        z = torch.add(block_sums[start:stop], inner_sums[start:stop], out=buffer[: stop - start])
                        torch.mv(z.relu_().view(-1, hidden), game.w2[k], out=f[start:stop].view(-1))
                    out.addmm_(f, coefficients[block])
                acc.add(k, rows, out, None)

        in_c = device.type == "cpu" and _coalitions is not None
        if device.type == "cpu" and not in_c:
            warnings.warn("ginn._coalitions is not built (pip install the package, or python setup.py build_ext "
                          "--inplace): exact scores use the slower torch path", RuntimeWarning, stacklevel=2)
        over_networks(network_in_c if in_c else network, game.n_networks, device)
        return acc.result(self.subsets, None)


class MonteCarloInteractions:
    """Unbiased Monte-Carlo SII of all gene pairs (and Shapley values, and chosen triples) from
    random coalitions.

    Sampling. For a pair (i, j) the SII weight of S ⊆ F∖{i, j}, |S| = s, is
    s!(M−2−s)!/(M−1)! = ∫_0^1 p^s (1−p)^(M−2−s) dp: drawing p ~ U(0, 1) and then keeping every gene
    with probability p gives exactly the SII distribution (|S| uniform on 0..M−2, S uniform given its
    size) on F∖{i, j}, whatever happens to i and j. So one coalition C serves every pair: for (i, j)
    take S = C∖{i, j} and toggle i and j. With P = base + Σ_{u∈C} offset_u,

        δ_ij(S) = (−1)^{[i∈C]+[j∈C]} (f(P) − f(P⊕i) − f(P⊕j) + f(P⊕i⊕j)),

    where ⊕u adds offset_u if u ∉ C and removes it if u ∈ C. f(P) and f(P⊕u) are shared by all
    pairs; only f(P⊕i⊕j) is pair-specific (one add, ReLU and dot product of H values). The same
    coalition gives every gene's Shapley-value sample, (−1)^{[i∈C]} (f(P⊕i) − f(P)), because
    ∫ p^s (1−p)^(M−1−s) dp = s!(M−1−s)!/M! is the Shapley weight, and for chosen ``triples`` the
    third-order sample −(−1)^{[i∈C]+[j∈C]+[l∈C]} Σ_{A ⊆ {i,j,l}} (−1)^{|A|} f(P⊕A) (weight
    s!(M−3−s)!/(M−2)! = ∫ p^s (1−p)^(M−3−s) dp; 8 evaluations per triple and sample).

    Not the authors' estimator: their public code takes T = the genes before i in a random order of
    all M genes. T = S ⊆ F∖{i, j} with probability s!(M−1−s)!/M! (and when j precedes i, δ = 0),
    i.e. (M−1−s)/M times the SII weight: in expectation about half the SII, with large coalitions
    down-weighted, a bias that differs between pairs and so can reorder them.
    Nor the M−1 prefixes of one random order (also unbiased, one coalition of each size): nested
    coalitions are so correlated that they were worth only ~5 (M = 10) to ~7 (M = 65) independent
    draws on random networks, at M+1 times the cost of one draw.

    Errors. Each individual and network gets its own ``n_samples`` independent coalitions; the local
    estimate's standard error is the sample s.d. / sqrt(n_samples). Draws come from
    ``np.random.default_rng([seed, *stream])`` per network, in row order, so results do not depend on
    batching. Cost per individual, network and sample: about M(M−1)/2 · 3H operations.
    """

    def __init__(self, n_genes: int, n_samples: int, seed: int = 0, pairs: bool = True,
                 triples: Sequence[Sequence[int]] = (), budget: int = DEFAULT_BUDGET):
        if n_genes < 2:
            raise ValueError("interactions need at least two genes")
        if n_samples < 2:
            raise ValueError("Monte-Carlo standard errors need at least 2 samples")
        self.n_genes, self.n_samples, self.seed = n_genes, int(n_samples), int(seed)
        self.pairs = pairs
        self.triples = [tuple(int(i) for i in u) for u in triples]
        if any(len(set(u)) != 3 or min(u) < 0 or max(u) >= n_genes for u in self.triples):
            raise ValueError(f"a triple must hold 3 distinct genes among {n_genes}")
        self.budget = budget
        self.subsets = singletons(n_genes) + (all_pairs(n_genes) if pairs else []) + self.triples

    def _per_sample(self, game: PredictorGame, k: int, offsets: torch.Tensor, draws: np.ndarray) -> torch.Tensor:
        """Index samples (n, T, Q) of one network; ``draws`` (n, T, 1+M) hold p and the gene keys.

        The n·T coalitions are flattened gene-major, so the inner loop adds contiguous (n·T, H)
        blocks into a reused buffer (fresh large tensors cost page faults).
        """
        m, h = self.n_genes, game.hidden
        draws = torch.from_numpy(draws).to(offsets.device)
        n, t = draws.shape[:2]
        inside = draws[..., 1:] < draws[..., :1]                                       # (n, T, M): u ∈ C
        prefix = game.base[k] + inside.to(offsets.dtype) @ offsets                     # (n, T, H): P
        f0 = game.head(k, prefix.clone()).reshape(-1)                                 # (n·T,)
        sign = (1.0 - 2.0 * inside.to(offsets.dtype)).permute(2, 0, 1).reshape(m, -1)  # (M, n·T)
        # explicit contiguous outputs: a broadcast product would inherit the permuted layout of
        # ``offsets`` and every later reshape would copy
        shift = offsets.new_empty(m, n * t, h)
        torch.mul(sign.reshape(m, n, t, 1), offsets.permute(1, 0, 2)[:, :, None, :], out=shift.view(m, n, t, h))
        prefix = prefix.reshape(-1, h)
        buffer = offsets.new_empty(m, n * t, h)       # scratch reused by every head evaluation below
        f1 = game.head(k, torch.add(prefix, shift, out=buffer))                       # (M, n·T): f(P⊕u)
        out = [(sign * (f1 - f0)).T]
        if self.pairs:
            toggled = torch.empty_like(prefix)
            for i in range(m - 1):
                torch.add(prefix, shift[i], out=toggled)                                # P⊕i
                both = torch.add(toggled, shift[i + 1:], out=buffer[: m - 1 - i])      # P⊕i⊕j, j > i
                f2 = game.head(k, both)                                                # (J, n·T)
                out.append(((sign[i] * sign[i + 1:]) * (f0 - f1[i] - f1[i + 1:] + f2)).T)
        if self.triples:
            out.append(self._triple_samples(game, k, prefix, shift, sign, f0))
        return torch.cat(out, dim=1).reshape(n, t, -1)

    def _triple_samples(self, game, k, prefix, shift, sign, f0) -> torch.Tensor:
        """Third-order samples (n·T, R) from the 8 toggles of each triple, in chunks of triples."""
        chunk = max(1, self.budget // max(prefix.numel(), 1))
        out = []
        for start in range(0, len(self.triples), chunk):
            members = torch.tensor(self.triples[start: start + chunk])                # (R, 3)
            total = torch.zeros(len(members), prefix.shape[0], dtype=prefix.dtype, device=prefix.device)
            for toggles in itertools.product((0, 1), repeat=3):
                if not any(toggles):
                    total += f0
                    continue
                pre = prefix + sum(shift[members[:, c]] for c in range(3) if toggles[c])  # (R, n·T, H)
                total += (-1) ** sum(toggles) * game.head(k, pre)
            out.append((-sign[members].prod(dim=1) * total).T)
        return torch.cat(out, dim=1)

    def scores(self, game: PredictorGame, gene_values: torch.Tensor, keep_local: bool = False,
               streams: Sequence | None = None) -> InteractionScores:
        """Estimates for gene values (K, N, M); ``streams[k]`` (ints) seeds network k's coalitions."""
        gene_values = _check_inputs(game, gene_values, self.n_genes)
        n_rows, m, t = gene_values.shape[1], self.n_genes, self.n_samples
        streams = [(k,) for k in range(game.n_networks)] if streams is None else streams
        per_row = t * m * game.hidden                       # (M, rows·T, H) tensors
        acc = _Accumulator(game.n_networks, n_rows, len(self.subsets), keep_local, game.W1.dtype)

        def network(k: int) -> None:
            rng = np.random.default_rng([self.seed, *map(int, np.atleast_1d(streams[k]))])
            offsets = game.offsets(k, gene_values[k])
            for rows in _row_batches(n_rows, per_row, self.budget):
                draws = rng.random((rows.stop - rows.start, t, 1 + m))
                samples = self._per_sample(game, k, offsets[rows], draws)               # (n, T, Q)
                acc.add(k, rows, samples.mean(dim=1), samples.var(dim=1) / t)

        over_networks(network, game.n_networks, game.W1.device)
        return acc.result(self.subsets, t)


class ShapleyValues:
    """First-order Shapley values of every gene: exact enumeration or random coalitions.

    Exact uses :class:`ExactInteractions` with singletons (w_1(s) = s!(M−s−1)!/M!); sampling uses the
    coalitions of :class:`MonteCarloInteractions` without its pair stage (about 2M·H per sample).
    """

    def __init__(self, n_genes: int, n_samples: int | None = None, seed: int = 0, budget: int = DEFAULT_BUDGET):
        self.subsets = singletons(n_genes)
        self._estimator = (ExactInteractions(n_genes, self.subsets, budget=budget) if n_samples is None
                           else MonteCarloInteractions(n_genes, n_samples, seed, pairs=False, budget=budget))

    def scores(self, game: PredictorGame, gene_values: torch.Tensor, keep_local: bool = False,
               streams: Sequence | None = None) -> InteractionScores:
        return self._estimator.scores(game, gene_values, keep_local, streams)


@dataclass
class EnsembleSummary:
    """Eq. 12 for one ensemble: the member mean of per-network results, columns as the estimator's."""

    score: np.ndarray      # (Q,) mean over members of E_x|SII(x)|
    se: np.ndarray         # (Q,) s.d. over members / sqrt(members) (NaN for one member)
    se_mc: np.ndarray      # (Q,) coalition-sampling part: sqrt(Σ_k se_mc,k²) / members
    bias_bound: np.ndarray  # (Q,) mean over members of the |·| bias bound
    local: np.ndarray | None  # (N, Q) member mean of the local indices, if kept


def ensemble_summary(scores: InteractionScores, members: Sequence[int] | np.ndarray) -> EnsembleSummary:
    """Average the networks ``members`` (Eq. 12). The s.d. over members already contains each
    member's independent sampling noise, so ``se`` covers both the ensemble and the coalitions."""
    members = np.asarray(members)
    per_member = scores.score[members]
    n = len(members)
    se = per_member.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(per_member.shape[1], np.nan)
    se_mc = np.sqrt((scores.se_mc[members] ** 2).sum(axis=0)) / n
    local = None if scores.local is None else scores.local[members].mean(axis=0)
    return EnsembleSummary(per_member.mean(axis=0), se, se_mc, scores.bias_bound[members].mean(axis=0), local)
