"""The gene interaction network (Methods, Eq. 6-7) and the main-effect network (Eq. 13), K at once.

One :class:`GeneNetworkEnsemble` holds K independent networks whose parameters all carry a leading
K dimension, so a deep ensemble, its permuted-target copies and the folds of a cross-validation run
are one module and every layer is one batched matrix product over all networks:

* gene layer: each gene i has an MLP m_i-10-1 over its own SNPs (ReLU), or a linear m_i-1 map
  (``gene_layer="linear"``, the authors' public code). Genes are grouped into a few buckets of
  similar SNP counts and padded to the bucket's largest gene, so a bucket of G genes is one
  ``bmm`` of (G, K*10, s + 1) weights (bias included) with (G, s + 1, B) centred genotypes: no loop
  over networks, and a loop over buckets (a handful) instead of over genes. Padded weights start at
  zero, see no data and get no L1 subgradient (d|w|/dw = 0 at 0 in torch), so Adam never moves them.
* predictor: an M-H-1 MLP (ReLU) per network as one ``bmm`` over K, or for the main-effect NN
  (H = 0) one linear layer.

Both MLP kinds are :func:`hidden_layer` (linear, ReLU, weighted sum) with a hand-written backward,
and :class:`AccumulatedStep` sums a large batch's gradient over cache-sized micro-batches. That is
the path for GPUs, float64 and large networks; on the CPU the paper's architecture with up to
:data:`ginn.fused.MAX_FUSED_SNPS` SNPs trains and predicts through one fused C kernel
(:mod:`ginn.fused`), which this module's products are the oracle for.

Initialisation follows ``torch.nn.Linear`` (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and
biases) but draws each network's values from its own seed in a canonical, padding- and
K-independent order, so network k starts identically whether it is trained alone or among others.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import _hidden_layer
from .errors import GinnError
from .files import load_weights, write_json

GENE_HIDDEN = 10
PREDICTOR_HIDDEN = 100
# A bucket pads its genes to its largest one; this bounds the wasted columns per gene to 25%.
MAX_BUCKET_PADDING = 0.25
NETWORK_KEYS = ("dataset", "member", "seed", "l1_gene", "l1_predictor")


def make_config(gene_sizes: Sequence[int], n_networks: int, predictor_hidden: int = PREDICTOR_HIDDEN,
                gene_hidden: int = GENE_HIDDEN, gene_layer: str = "mlp") -> dict[str, Any]:
    """The JSON-able architecture description stored in ``ensemble.json``."""
    sizes = [int(m) for m in gene_sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError("every gene needs at least one SNP")
    if gene_layer not in ("mlp", "linear"):
        raise ValueError(f"gene_layer must be 'mlp' or 'linear', not {gene_layer!r}")
    if n_networks < 1 or predictor_hidden < 0 or gene_hidden < 1:
        raise ValueError("n_networks and gene_hidden must be >= 1, predictor_hidden >= 0")
    return {"gene_sizes": sizes, "gene_hidden": int(gene_hidden), "predictor_hidden": int(predictor_hidden),
            "gene_layer": gene_layer, "n_networks": int(n_networks)}


def padded_columns(gene_sizes: Sequence[int]) -> np.ndarray:
    """Genotype column feeding each row of the padded feature-major input: bucket after bucket,
    gene after gene, each gene padded to its bucket's width and followed by one constant row.
    Value P (one past the last column) marks padding, read as 0; P + 1 marks the constant 1 that
    carries the gene MLP's bias inside the matrix product (saving a pass over its output)."""
    sizes = np.asarray(gene_sizes)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    parts = []
    for genes in size_buckets(sizes):
        cols = np.full((len(genes), bucket_width(sizes[genes].max()) + 1), offsets[-1], dtype=np.int64)
        cols[:, -1] = offsets[-1] + 1
        for row, gene in enumerate(genes):
            cols[row, : sizes[gene]] = np.arange(offsets[gene], offsets[gene + 1])
        parts.append(cols.ravel())
    return np.concatenate(parts)


def bucket_width(largest_gene: int) -> int:
    """SNP slots per gene in a bucket: its largest gene, padded so that slots plus the constant
    row are a multiple of 8 (float32 GEMMs with an aligned inner dimension run ~15-30% faster)."""
    return -(-(int(largest_gene) + 1) // 8) * 8 - 1


def size_buckets(gene_sizes: Sequence[int], max_padding: float = MAX_BUCKET_PADDING) -> list[np.ndarray]:
    """Gene indices grouped so that padding every gene to its bucket's largest costs <= max_padding."""
    sizes = np.asarray(gene_sizes)
    order = np.argsort(-sizes, kind="stable")
    buckets: list[list[int]] = []
    for gene in order:
        if buckets and sizes[gene] * (1 + max_padding) >= sizes[buckets[-1][0]]:
            buckets[-1].append(int(gene))
        else:
            buckets.append([int(gene)])
    return [np.array(sorted(b)) for b in buckets]


class GeneNetworkEnsemble(nn.Module):
    """K structured-sparse gene networks evaluated as one batched model (see module docstring)."""

    def __init__(self, config: dict[str, Any], seeds: Sequence[int] | None = None):
        super().__init__()
        self.config = make_config(**config)
        sizes = np.asarray(self.config["gene_sizes"])
        self.n_networks = k = self.config["n_networks"]
        self.n_genes = m = len(sizes)
        self.n_snps = p = int(sizes.sum())
        self.gene_hidden = hg = self.config["gene_hidden"] if self.config["gene_layer"] == "mlp" else 1
        self.hidden = h = self.config["predictor_hidden"]
        self.mlp_genes = self.config["gene_layer"] == "mlp"

        self.bucket_genes = size_buckets(sizes)
        self.bucket_shapes: list[tuple[int, int]] = []
        self.gene_w1, self.gene_b1 = nn.ParameterList(), nn.ParameterList()
        self.gene_w2, self.gene_b2 = nn.ParameterList(), nn.ParameterList()
        for genes in self.bucket_genes:
            width = bucket_width(sizes[genes].max())
            self.bucket_shapes.append((len(genes), width))
            self.gene_w1.append(nn.Parameter(torch.zeros(k, len(genes), hg, width)))
            self.gene_b1.append(nn.Parameter(torch.zeros(k, len(genes), hg)))
            if self.mlp_genes:
                self.gene_w2.append(nn.Parameter(torch.zeros(k, len(genes), hg)))
                self.gene_b2.append(nn.Parameter(torch.zeros(k, len(genes))))
        self.register_buffer("input_columns", torch.from_numpy(padded_columns(sizes)), persistent=False)
        bucket_order = np.concatenate(self.bucket_genes)
        self.register_buffer("gene_restore", torch.from_numpy(np.argsort(bucket_order)), persistent=False)
        self.genes_permuted = bool(np.any(bucket_order != np.arange(m)))
        if h > 0:
            self.predictor_W1 = nn.Parameter(torch.zeros(k, h, m))
            self.predictor_b1 = nn.Parameter(torch.zeros(k, h))
            self.predictor_w2 = nn.Parameter(torch.zeros(k, h))
            self.predictor_b2 = nn.Parameter(torch.zeros(k))
        else:
            self.predictor_w = nn.Parameter(torch.zeros(k, m))
            self.predictor_b = nn.Parameter(torch.zeros(k))
        if seeds is not None:
            self.initialize(seeds)

    # ---- initialisation -------------------------------------------------------------------------
    def canonical_layout(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """For every parameter, the position of each element in one network's canonical flat vector
        (-1 for padding), and the init bound of each flat position.

        Canonical order: gene by gene (w1 [snp, hidden], b1, w2, b2), then the predictor. It does
        not depend on K or on the bucketing, which is what makes a network's init seed-only.
        """
        sizes = self.config["gene_sizes"]
        hg, h, m = self.gene_hidden, self.hidden, self.n_genes
        bounds: list[np.ndarray] = []
        gene_slots: list[dict[str, np.ndarray]] = []
        position = 0

        def take(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
            nonlocal position
            n = int(np.prod(shape))
            bounds.append(np.full(n, 1.0 / np.sqrt(fan_in)))
            idx = np.arange(position, position + n).reshape(shape)
            position += n
            return idx

        for size in sizes:
            slots = {"w1": take((size, hg), size), "b1": take((hg,), size)}
            if self.mlp_genes:
                slots["w2"] = take((hg,), hg)
                slots["b2"] = take((), hg)
            gene_slots.append(slots)
        layout: dict[str, np.ndarray] = {}
        if h > 0:
            layout["predictor_W1"] = take((h, m), m)
            layout["predictor_b1"] = take((h,), m)
            layout["predictor_w2"] = take((h,), h)
            layout["predictor_b2"] = take((), h)
        else:
            layout["predictor_w"] = take((m,), m)
            layout["predictor_b"] = take((), m)
        for b, genes in enumerate(self.bucket_genes):
            w1 = np.full(tuple(self.gene_w1[b].shape[1:]), -1, dtype=np.int64)
            for row, gene in enumerate(genes):
                w1[row, :, : sizes[gene]] = gene_slots[gene]["w1"].T
            layout[f"gene_w1.{b}"] = w1
            layout[f"gene_b1.{b}"] = np.stack([gene_slots[g]["b1"] for g in genes])
            if self.mlp_genes:
                layout[f"gene_w2.{b}"] = np.stack([gene_slots[g]["w2"] for g in genes])
                layout[f"gene_b2.{b}"] = np.array([gene_slots[g]["b2"] for g in genes])
        return layout, np.concatenate(bounds)

    @torch.no_grad()
    def initialize(self, seeds: Sequence[int]) -> None:
        """Draw network k's parameters from ``np.random.default_rng(seeds[k])`` alone."""
        if len(seeds) != self.n_networks:
            raise ValueError(f"{len(seeds)} seeds for {self.n_networks} networks")
        layout, bound = self.canonical_layout()
        flat = np.stack([np.random.default_rng(int(s)).uniform(-1.0, 1.0, bound.size) * bound for s in seeds])
        flat = torch.from_numpy(np.concatenate([flat, np.zeros((len(seeds), 1))], axis=1).astype(np.float32))
        params = dict(self.named_parameters())
        for name, idx in layout.items():
            slot = torch.from_numpy(np.where(idx >= 0, idx, bound.size))  # padding reads the zero column
            params[name].copy_(flat[:, slot.reshape(-1)].reshape(params[name].shape))

    # ---- forward ----------------------------------------------------------------------------------
    def compute_weights(self) -> dict[str, torch.Tensor]:
        """The parameters rearranged (differentiably) into the layouts of the batched products.

        The rearrangement copies every gene weight, so the trainer builds these once per optimiser
        step, runs all its micro-batches on detached copies and back-propagates their accumulated
        gradients through this function once (:func:`ginn.train.train_networks`).
        """
        k, hg = self.n_networks, self.gene_hidden
        weights: dict[str, torch.Tensor] = {}
        for b, (genes, width) in enumerate(self.bucket_shapes):
            w1 = torch.cat([self.gene_w1[b], self.gene_b1[b].unsqueeze(3)], dim=3)   # bias meets the 1s row
            weights[f"w1.{b}"] = w1.transpose(0, 1).reshape(genes, k * hg, width + 1)
            if self.mlp_genes:
                weights[f"w2.{b}"] = self.gene_w2[b].transpose(0, 1).reshape(genes, k, hg)
                weights[f"b2.{b}"] = self.gene_b2[b].transpose(0, 1).unsqueeze(2)
        if self.hidden > 0:
            # the bias rides on a row of ones in the (small) input instead of a pass over the (K, H, B) output
            weights["W1"] = torch.cat([self.predictor_W1, self.predictor_b1.unsqueeze(2)], dim=2)
            weights["w2"] = self.predictor_w2.unsqueeze(1)
            weights["b2"] = self.predictor_b2[:, None]
        else:
            weights["w"] = self.predictor_w.unsqueeze(1)
            weights["b"] = self.predictor_b[:, None]
        return weights

    def hidden_layers(self) -> list[tuple[str, str]]:
        """(weight, output weight) keys in :meth:`compute_weights` of every :func:`hidden_layer`."""
        genes = [(f"w1.{b}", f"w2.{b}") for b in range(len(self.bucket_shapes))] if self.mlp_genes else []
        return genes + ([("W1", "w2")] if self.hidden > 0 else [])

    def gene_values(self, xt: torch.Tensor, weights: dict[str, torch.Tensor] | None = None,
                    sums: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Padded, feature-major genotypes (P_pad, B) in :func:`padded_columns` order -> (K, M, B).

        Bucket b is rows of ``xt`` viewed as (G, s + 1, B) (SNPs and the constant row), so its gene
        MLPs' first layers, biases included, are one (G, K*hg, s + 1) @ (G, s + 1, B) product with
        no copy of the data. ``sums``: see :class:`AccumulatedStep`.
        """
        weights = self.compute_weights() if weights is None else weights
        batch, k, hg = xt.shape[1], self.n_networks, self.gene_hidden
        values, start = [], 0
        for b, (genes, width) in enumerate(self.bucket_shapes):
            xb = xt[start: start + genes * (width + 1)].view(genes, width + 1, batch)
            start += genes * (width + 1)
            if self.mlp_genes:                                                       # (G, K, B)
                values.append(hidden_layer(weights[f"w1.{b}"], xb, weights[f"w2.{b}"], (sums or {}).get(f"w1.{b}"))
                              + weights[f"b2.{b}"])
            else:
                values.append(torch.bmm(weights[f"w1.{b}"], xb))
        values = torch.cat(values, dim=0) if len(values) > 1 else values[0]
        if self.genes_permuted:
            values = values[self.gene_restore]
        return values.transpose(0, 1)                                                # (K, M, B)

    def predict_values(self, g: torch.Tensor, weights: dict[str, torch.Tensor] | None = None,
                       sums: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Gene values (K, M, B) -> predictions (K, B)."""
        weights = self.compute_weights() if weights is None else weights
        if self.hidden > 0:
            g = torch.cat([g, g.new_ones(g.shape[0], 1, g.shape[2])], dim=1)
            return hidden_layer(weights["W1"], g, weights["w2"], (sums or {}).get("W1")).squeeze(1) + weights["b2"]
        return torch.bmm(weights["w"], g).squeeze(1) + weights["b"]

    def forward_padded(self, xt: torch.Tensor, weights: dict[str, torch.Tensor] | None = None,
                       sums: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Predictions (K, B) from padded feature-major genotypes (the trainer's fast path)."""
        weights = self.compute_weights() if weights is None else weights
        return self.predict_values(self.gene_values(xt, weights, sums), weights, sums)

    def pad_transpose(self, x: torch.Tensor) -> torch.Tensor:
        """Sample-major centred genotypes (B, P) -> padded feature-major (P_pad, B)."""
        padded = torch.cat([x, x.new_zeros(x.shape[0], 1), x.new_ones(x.shape[0], 1)], dim=1)
        return padded.index_select(1, self.input_columns).T.contiguous()

    def gene_layer(self, x: torch.Tensor) -> torch.Tensor:
        """Centred genotypes (B, P) -> gene values (K, B, M)."""
        return self.gene_values(self.pad_transpose(x)).transpose(1, 2)

    def predictor(self, g: torch.Tensor) -> torch.Tensor:
        """Gene values (K, B, M) -> predictions (K, B)."""
        return self.predict_values(g.transpose(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Centred genotypes (B, P) -> predictions (K, B)."""
        return self.forward_padded(self.pad_transpose(x))

    def predictor_weights(self) -> dict[str, torch.Tensor]:
        """Predictor parameters: W1 (K,H,M), b1 (K,H), w2 (K,H), b2 (K,) or, for H = 0, w (K,M), b (K,)."""
        if self.hidden > 0:
            return {"W1": self.predictor_W1, "b1": self.predictor_b1, "w2": self.predictor_w2,
                    "b2": self.predictor_b2}
        return {"w": self.predictor_w, "b": self.predictor_b}

    # ---- penalties and bookkeeping ----------------------------------------------------------------
    def gene_weight_l1(self) -> torch.Tensor:
        """Sum of |weights| (not biases) of each network's gene MLPs, shape (K,)."""
        total = sum(w.abs().sum(dim=(1, 2, 3)) for w in self.gene_w1)
        return total + sum((w.abs().sum(dim=(1, 2)) for w in self.gene_w2), torch.zeros_like(total))

    def predictor_weight_l1(self) -> torch.Tensor:
        """Sum of |weights| (not biases) of each network's predictor, shape (K,)."""
        if self.hidden > 0:
            return self.predictor_W1.abs().sum(dim=(1, 2)) + self.predictor_w2.abs().sum(dim=1)
        return self.predictor_w.abs().sum(dim=1)

    def forward_flops(self) -> int:
        """Multiply-adds x2 of one forward pass of one network on one sample (padding excluded)."""
        hg, h, m = self.gene_hidden, self.hidden, self.n_genes
        gene = 2 * self.n_snps * hg + (2 * m * hg if self.mlp_genes else 0)
        return gene + (2 * m * h + 2 * h if h > 0 else 2 * m)

    def select(self, networks: Sequence[int] | torch.Tensor) -> "GeneNetworkEnsemble":
        """A new ensemble holding copies of the chosen networks, in the given order."""
        index = torch.as_tensor(networks, dtype=torch.long)
        device = next(self.parameters()).device
        out = GeneNetworkEnsemble({**self.config, "n_networks": len(index)}).to(device)
        with torch.no_grad():
            for mine, theirs in zip(out.parameters(), self.parameters()):
                mine.copy_(theirs[index.to(theirs.device)])
        return out

    @classmethod
    def concat(cls, parts: Sequence["GeneNetworkEnsemble"]) -> "GeneNetworkEnsemble":
        """One ensemble holding the networks of ``parts`` in order (they share an architecture)."""
        config = {**parts[0].config, "n_networks": sum(p.n_networks for p in parts)}
        out = cls(config)
        with torch.no_grad():
            for name, param in out.named_parameters():
                param.copy_(torch.cat([dict(p.named_parameters())[name].detach().cpu() for p in parts]))
        return out


class _HiddenLayer(torch.autograd.Function):
    """out[n, j, b] = sum_u v[n, j, u] * relu(W[n] @ x[n])[j * U + u, b] with a hand-written backward.

    Autograd's own graph for bmm -> relu -> bmm makes four passes over activation-sized tensors in
    the backward (and its outer-product bmm is a slow BLAS path). Here the backward makes one: with
    G = (grad_out where the unit is active), the weight gradient is v * (G @ x^T), and because
    W @ x is exactly the pre-activation, grad_v = sum_b act * grad_out = rowsum(W * (G @ x^T))
    needs no pass over the activations. Given ``grad_sum``, x @ G^T is added to it instead and the
    W and v gradients are left to :class:`AccumulatedStep`.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, x: torch.Tensor, v: torch.Tensor,
                grad_sum: torch.Tensor | None) -> torch.Tensor:
        pre = torch.bmm(weight, x)                                                    # (N, J*U, B)
        out = relu_weighted_sum(pre, v)
        ctx.save_for_backward(weight, x, v, pre)         # pre or relu(pre): the backward needs the mask only
        ctx.grad_sum = grad_sum
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        weight, x, v, pre = ctx.saved_tensors
        n, j, u = v.shape
        # the trainer's micro-batches back-propagate once, so their activations can become the gradient
        masked = relu_grad(grad_out, pre, u, in_place=ctx.grad_sum is not None)
        scale = v.reshape(n, j * u, 1)
        grad_x = torch.bmm((weight * scale).transpose(1, 2), masked) if ctx.needs_input_grad[1] else None
        if ctx.grad_sum is not None:
            ctx.grad_sum.baddbmm_(x, masked.transpose(1, 2))
            return None, grad_x, None, None
        # x @ masked^T, transposed: the same product, but BLAS runs the small-inner-dimension case ~2x faster
        weight_grad, v_grad = _hidden_layer_grads(weight, v, torch.bmm(x, masked.transpose(1, 2)))
        return weight_grad, grad_x, v_grad, None


def _on_kernels(*tensors: torch.Tensor) -> bool:
    """Whether the C kernels of ``ginn._hidden_layer`` apply: CPU float32 (CUDA and float64 use torch)."""
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)


def relu_weighted_sum(pre: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """sum_u v[n, j, u] * relu(pre)[n, j * U + u, b] -> (N, J, B) for pre-activations (N, J*U, B).

    On CPU float32 one C pass that reads ``pre`` only, instead of relu_ (a read and a write) and
    a bmm (another read); otherwise ``pre`` becomes its ReLU in place.
    """
    n, j, u = v.shape
    if not _on_kernels(pre, v):
        return torch.bmm(v.reshape(n * j, 1, u), pre.relu_().view(n * j, u, -1)).view(n, j, -1)
    out = pre.new_empty(n, j, pre.shape[2])
    _run_kernel(_hidden_layer.relu_weighted_sum, pre, v, out, n * j, u, pre.shape[2])
    return out


def relu_grad(grad_out: torch.Tensor, pre: torch.Tensor, units: int, in_place: bool = False) -> torch.Tensor:
    """Masked ReLU gradient (N, J*U, B): grad_out (N, J, B) broadcast over each group of ``units``
    rows of ``pre``, zero where ``pre`` (a pre-activation or its ReLU) <= 0; ``in_place`` lets it
    overwrite ``pre``.

    On CPU float32 a C kernel: torch's threshold_backward, the fastest masked broadcast it offers,
    runs ~6x slower on the stride-0 input and was half of a training step.
    """
    n, j, batch = grad_out.shape
    if not _on_kernels(grad_out, pre):
        return torch.ops.aten.threshold_backward(grad_out.unsqueeze(2).expand(n, j, units, batch),
                                                 pre.view(n, j, units, batch), 0).view(pre.shape)
    pre = pre.contiguous()
    out = pre if in_place else torch.empty_like(pre)
    _run_kernel(_hidden_layer.relu_grad, grad_out, pre, out, n * j, units, batch)
    return out


def _run_kernel(kernel: Callable, first: torch.Tensor, second: torch.Tensor, out: torch.Tensor,
                rows: int, units: int, width: int) -> None:
    """A ``ginn._hidden_layer`` kernel on torch's intra-op threads, as torch's own ops run."""
    first, second = first.contiguous(), second.contiguous()     # held: the kernel reads their memory
    kernel(first.data_ptr(), second.data_ptr(), out.data_ptr(), rows, units, width, torch.get_num_threads())


def _hidden_layer_grads(weight: torch.Tensor, v: torch.Tensor, x_masked: torch.Tensor):
    """Gradients of W and v from x @ G^T (N, C, J*U), see :class:`_HiddenLayer`."""
    unscaled = x_masked.transpose(1, 2)
    return unscaled * v.reshape(v.shape[0], -1, 1), torch.linalg.vecdot(weight, unscaled).view(v.shape)


def hidden_layer(weight: torch.Tensor, x: torch.Tensor, v: torch.Tensor,
                 grad_sum: torch.Tensor | None = None) -> torch.Tensor:
    """Batched linear -> ReLU -> grouped linear: (N, J*U, C) @ (N, C, B), ReLU, then each group
    of U hidden units summed with weights ``v`` (N, J, U) -> (N, J, B)."""
    return _HiddenLayer.apply(weight, x, v, grad_sum)


class AccumulatedStep:
    """Gradient accumulation over the micro-batches of one optimiser step.

    Every micro-batch runs with the same weights: :meth:`GeneNetworkEnsemble.compute_weights`, built
    once and detached. Their hidden layers add x @ G^T into one buffer per layer instead of forming
    and accumulating weight-sized gradients per micro-batch; :meth:`backward` turns the buffers and
    the other accumulated gradients into parameter gradients once::

        step = AccumulatedStep(model)
        for part in parts:
            loss(step.forward(xt_of(part))).backward()
        step.backward()
    """

    def __init__(self, model: "GeneNetworkEnsemble"):
        self.model = model
        self.weights = model.compute_weights()
        self.detached = {name: w.detach().requires_grad_() for name, w in self.weights.items()}
        self.layers = model.hidden_layers()
        self.sums = {w: self.weights[w].new_zeros(self.weights[w].shape[0], self.weights[w].shape[2],
                                                  self.weights[w].shape[1]) for w, _ in self.layers}

    def forward(self, xt: torch.Tensor) -> torch.Tensor:
        """Predictions (K, B) of padded feature-major genotypes (P_pad, B)."""
        return self.model.forward_padded(xt, self.detached, self.sums)

    def backward(self) -> None:
        """Add the step's gradient to the parameters' ``.grad``."""
        grads = {name: w.grad for name, w in self.detached.items()}
        with torch.no_grad():
            for w, v in self.layers:
                grads[w], grads[v] = _hidden_layer_grads(self.detached[w], self.detached[v], self.sums[w])
        used = [name for name in self.weights if grads[name] is not None]
        torch.autograd.backward([self.weights[name] for name in used], [grads[name] for name in used])


def network_seed(seed: int, member: int) -> int:
    """Init seed of ensemble member ``member``: from (seed, member) only, never from the dataset, so
    member m of the observed ensemble and member m of every permuted ensemble start alike and the
    null distribution differs from the observed fit only through the target."""
    return int(np.random.SeedSequence([int(seed), 0x6E6E, int(member)]).generate_state(1, dtype=np.uint64)[0] >> 1)


class GenotypeBatcher:
    """Int8 (or float16 dosage) genotypes kept compact (on the training device), in the padded column order of
    :func:`padded_columns`, and converted per batch, once for all K networks, to centred float32
    feature-major (P_pad, B); missing calls (-1) and padding become 0, i.e. the SNP mean."""

    def __init__(self, genotypes: np.ndarray, snp_mean: np.ndarray, gene_sizes: Sequence[int],
                 device: str | torch.device = "cpu"):
        columns = padded_columns(gene_sizes)
        dtype = np.float16 if np.asarray(genotypes[:0]).dtype == np.float16 else np.int8  # dosages or hard calls
        genotypes = np.asarray(genotypes, dtype=dtype)
        # the padding column reads as missing (-> 0), the constant column as 1 - 0
        padded = np.concatenate([genotypes, np.full((len(genotypes), 1), -1, dtype),
                                 np.ones((len(genotypes), 1), dtype)], axis=1)
        mean = np.append(np.asarray(snp_mean, dtype=np.float32), [0.0, 0.0])[columns]
        self.genotypes = torch.from_numpy(np.ascontiguousarray(padded[:, columns])).to(device)
        self.snp_mean = torch.from_numpy(mean.astype(np.float32)).to(device)[:, None]

    def __len__(self) -> int:
        return self.genotypes.shape[0]

    def padded_t(self, rows: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Centred (P_pad, B) float32 genotypes of ``rows``."""
        rows = torch.as_tensor(rows, device=self.genotypes.device)
        g = self.genotypes.index_select(0, rows).T.contiguous()
        return g.float().sub_(self.snp_mean).masked_fill_(g < 0, 0.0)


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


# Hidden activations one prediction batch may hold (float32, all networks).
PREDICT_BYTES = 256 << 20


@torch.no_grad()
def predict_batches(model: GeneNetworkEnsemble, padded_t: Callable[[np.ndarray], torch.Tensor],
                    rows: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Predictions (K, n) for ``rows``; ``padded_t(batch_rows)`` gives their (P_pad, B) input, e.g.
    :meth:`GenotypeBatcher.padded_t`. At most ``batch_size`` rows at a time; on the torch path (see
    :mod:`ginn.fused`) fewer where the hidden activations of all K networks would pass
    :data:`PREDICT_BYTES` (5,000 networks x 4,096 rows took 8 GB)."""
    from .fused import kernel_for, tiles                   # ginn.fused builds on this module
    was_training = model.training
    model.eval()
    out = np.empty((model.n_networks, len(rows)), dtype=np.float32)
    kernel = kernel_for(model)                             # keeps its activations in cache
    if kernel is None:
        activations_per_row = model.n_networks * (model.n_genes * model.gene_hidden + model.hidden + model.n_genes)
        batch_size = max(1, min(batch_size, PREDICT_BYTES // (4 * activations_per_row)))
    for start in range(0, len(rows), batch_size):
        part = rows[start: start + batch_size]
        xt = padded_t(part)
        pred = kernel.predictions(model, tiles(xt), len(part)) if kernel is not None else model.forward_padded(xt)
        out[:, start: start + len(part)] = pred.float().cpu().numpy()
    model.train(was_training)
    return out


def predict(model: GeneNetworkEnsemble, dataset, rows: np.ndarray | None = None,
            batch_size: int = 4096) -> np.ndarray:
    """Predictions of every network for the chosen rows of a :class:`~ginn.dataset.Dataset`, (K, n)."""
    check_compatible(model, dataset)
    rows = np.arange(dataset.n_samples) if rows is None else np.asarray(rows)
    device = model_device(model)
    return predict_batches(model, lambda part: model.pad_transpose(torch.from_numpy(dataset.centered(part)).to(device)),
                           rows, batch_size)


def check_compatible(model: GeneNetworkEnsemble, dataset) -> None:
    """A model only applies to a dataset with the same genes and SNP counts per gene."""
    if list(map(int, dataset.gene_sizes)) != model.config["gene_sizes"]:
        raise GinnError(dataset.path, "dataset genes/SNPs differ from those the model was trained on")


# Bumped whenever the parameter layout of GeneNetworkEnsemble changes: an ensemble saved with another
# layout must fail to load rather than silently predict nonsense.
ENSEMBLE_FORMAT = 1


def save_ensemble(folder: str | Path, model: GeneNetworkEnsemble, networks: list[dict[str, Any]],
                  extra: dict[str, Any] | None = None) -> None:
    """Write ``ensemble.pt`` (state dict) and ``ensemble.json`` (config, networks, ``extra``)."""
    if len(networks) != model.n_networks:
        raise ValueError(f"{len(networks)} network records for {model.n_networks} networks")
    folder = Path(folder)
    state = {name: t.detach().cpu() for name, t in model.state_dict().items()}
    torch.save(state, folder / "ensemble.pt")
    write_json(folder / "ensemble.json", {"format": ENSEMBLE_FORMAT, "config": model.config, "networks": networks,
                                          **(extra or {})})


def read_ensemble_json(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    path = folder / "ensemble.json"
    if not path.is_file() or not (folder / "ensemble.pt").is_file():
        raise GinnError(folder, "not a ginn model folder (needs ensemble.json and ensemble.pt; make one with `ginn train`)")
    try:
        info = json.loads(path.read_text())
        if info.get("format") != ENSEMBLE_FORMAT:
            raise ValueError(f"saved in ensemble format {info.get('format')}, this ginn reads format "
                             f"{ENSEMBLE_FORMAT}; retrain with this version")
        make_config(**info["config"])
        if len(info["networks"]) != info["config"]["n_networks"]:
            raise ValueError("network records do not match n_networks")
        for record in info["networks"]:
            missing = [key for key in NETWORK_KEYS if key not in record]
            if missing:
                raise ValueError(f"network record lacks {', '.join(missing)}")
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise GinnError(path, f"malformed ensemble description: {exc}") from None
    return info


def check_interaction_ensemble(folder: str | Path, info: dict[str, Any]) -> None:
    """Interaction scores and replication need interaction networks: a main-effect NN's linear predictor has
    none, so every pair would score ~0 instead of failing."""
    if info["config"]["predictor_hidden"] == 0:
        raise GinnError(folder, "is a main-effect NN (`ginn train --model main`), which has no interactions; "
                                "give an interaction ensemble (`ginn train --model interaction`)")


def load_ensemble(folder: str | Path, device: str | torch.device = "cpu") -> tuple[GeneNetworkEnsemble, list[dict]]:
    """Reload a saved ensemble onto ``device`` (CPU by default, also for models trained on CUDA)."""
    info = read_ensemble_json(folder)
    model = GeneNetworkEnsemble(info["config"])
    load_weights(model, Path(folder) / "ensemble.pt")
    return model.to(device).eval(), info["networks"]
