"""Small gene networks on the CPU through one fused C kernel (``ginn._gene_network``).

With tens of SNPs per gene, torch runs a training step as a dozen batched products whose inner
dimensions are 11-24 and which stream activation-sized tensors through memory: about 20% of the
machine's float32 matmul rate. The kernel runs each network's forward and backward on 32 samples at
a time in registers and cache, for the architectures the paper trains (gene MLPs m_i-10-1, an
M-H-1 predictor with H a multiple of 10, or for the main-effect network H = 0: a linear predictor);
other architectures, float64 and CUDA keep the torch path
of :mod:`ginn.model`, which is also the kernel's oracle (tests/test_fused.py).

The kernel numbers each network's parameters in the model's canonical order
(:meth:`~ginn.model.GeneNetworkEnsemble.canonical_layout`) and reads them, and adds their
gradients, in place in the model's own tensors through a table of addresses; padding in the
bucketed tensors is never read and keeps a zero gradient, as in the torch path.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import _gene_network
from .model import GeneNetworkEnsemble, GenotypeBatcher, padded_columns

# The kernel's fixed shapes: gene MLP width, predictor units per register block, samples per tile.
KERNEL_GENE_HIDDEN, KERNEL_HIDDEN_BLOCK, KERNEL_TILE = 10, 10, 32
# Above this many SNPs a network's products are large enough for BLAS: 64 networks, 20,000 rows,
# 10 genes, 2 threads, s per epoch fused vs torch: 500 SNPs 0.33 vs 0.39-0.46, 1,000 SNPs 0.46-0.54 vs
# 0.53-0.62, 2,000 SNPs 1.31 vs 0.88.
MAX_FUSED_SNPS = 1024
# Genotype columns one kernel call reads: every network streams them, so they should stay in L2.
CALL_BYTES = 2 << 20


def applies(model: GeneNetworkEnsemble) -> bool:
    """Whether :class:`FusedNetworks` can run ``model`` (CPU float32, the paper's architecture, small)."""
    param = next(model.parameters())
    return (param.device.type == "cpu" and param.dtype == torch.float32 and model.mlp_genes
            and model.gene_hidden == KERNEL_GENE_HIDDEN and model.hidden % KERNEL_HIDDEN_BLOCK == 0
            and model.n_snps <= MAX_FUSED_SNPS)


def kernel_for(model: GeneNetworkEnsemble) -> "FusedNetworks | None":
    """The kernel for ``model``, or None where the torch path of :mod:`ginn.model` runs it."""
    return FusedNetworks(model) if applies(model) else None


class FusedNetworks:
    """The kernel's view of one :class:`GeneNetworkEnsemble` architecture (any number of networks)."""

    def __init__(self, model: GeneNetworkEnsemble):
        if not applies(model):
            raise ValueError("the fused kernel does not cover this architecture or device")
        layout, bound = model.canonical_layout()
        self.n_params = bound.size
        # canonical position q -> (parameter, element within one network's slice of it)
        self.tensor_of = np.empty(self.n_params, dtype=np.int64)
        self.element_of = np.empty(self.n_params, dtype=np.int64)
        for index, (name, _) in enumerate(model.named_parameters()):
            positions = layout[name].reshape(-1)
            used = np.flatnonzero(positions >= 0)
            self.tensor_of[positions[used]] = index
            self.element_of[positions[used]] = used
        sizes = np.asarray(model.config["gene_sizes"])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        columns = padded_columns(sizes)
        first = [int(np.flatnonzero(columns == s)[0]) for s in starts]
        constant = np.flatnonzero(columns == sizes.sum() + 1)
        ones = [int(constant[constant > row][0]) for row in first]         # the row after the gene's slot
        self.rows = torch.tensor(first + ones, dtype=torch.int64)
        self.sizes = torch.from_numpy(sizes.astype(np.int64))
        self.genes, self.hidden, self.padded_rows = len(sizes), model.hidden, len(columns)
        self.call_tiles = max(1, CALL_BYTES // (4 * KERNEL_TILE * len(columns)))
        self._tables: dict = {}           # address tables by the tensors' addresses and shapes

    def _addresses(self, tensors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Address of each canonical parameter of network 0 in ``tensors`` (the model's parameters or
        their gradients, in ``model.parameters()`` order) and the bytes from one network to the next.
        Kept while the tensors stay where they are (a trainer zeroing gradients in place builds them
        once); the few kept are dropped together when a new set of tensors arrives after them."""
        if any(not t.is_contiguous() or t.dtype != torch.float32 for t in tensors):
            raise ValueError("the fused kernel needs contiguous float32 tensors")
        key = tuple((t.data_ptr(), t.shape) for t in tensors)
        if key not in self._tables:
            if len(self._tables) >= 4:                  # parameters and gradients of a model or two
                self._tables.clear()
            per_network = np.array([4 * t[0].numel() for t in tensors], dtype=np.int64)
            base = np.array([t.data_ptr() for t in tensors], dtype=np.int64)
            self._tables[key] = (torch.from_numpy(base[self.tensor_of] + 4 * self.element_of),
                                 torch.from_numpy(per_network[self.tensor_of]))
        return self._tables[key]

    def add_gradients(self, model: GeneNetworkEnsemble, x: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor,
                      target_rows: torch.Tensor, weight_rows: torch.Tensor, scales: torch.Tensor,
                      l1: torch.Tensor | None = None) -> None:
        """Add to each parameter's ``.grad`` the gradient of scales[k] sum_t w[t] (prediction[k, t] - y[t])^2
        with y = targets[target_rows[k]] and w = weights[weight_rows[k]], plus l1[k, 0] |gene MLP
        weights| + l1[k, 1] |predictor weights| if given.

        ``x``: the batch's genotypes as :func:`tiles` or :func:`batch_tiles` lay them out;
        ``targets`` (D, B), ``weights`` (S, B): the batch's target columns and row weights, shared by
        all networks; ``target_rows``, ``weight_rows``, ``scales``: (K,); ``l1``: (K, 2)."""
        params = list(model.parameters())
        for param in params:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
        sources, strides = self._addresses([p.detach() for p in params])
        grads, _ = self._addresses([p.grad for p in params])
        columns = torch.stack([target_rows, weight_rows], dim=1).to(torch.int64).contiguous()
        scales = scales.to(torch.float32).contiguous()
        l1 = None if l1 is None else l1.to(torch.float32).contiguous()
        y, w = (_pad_columns(t.float(), x.shape[0] * KERNEL_TILE) for t in (targets, weights))
        for start in range(0, x.shape[0], self.call_tiles):
            part = x[start: start + self.call_tiles]
            skip = 4 * start * KERNEL_TILE                           # bytes to the call's first column
            _gene_network.gradients(part.data_ptr(), self.padded_rows, len(part) * KERNEL_TILE, self.rows.data_ptr(),
                                    self.sizes.data_ptr(), self.genes, self.hidden, sources.data_ptr(), strides.data_ptr(),
                                    self.n_params, grads.data_ptr(), 0 if l1 is None else l1.data_ptr(),
                                    y.data_ptr() + skip, y.shape[0], w.data_ptr() + skip, w.shape[0], y.shape[1],
                                    columns.data_ptr(), scales.data_ptr(), model.n_networks, torch.get_num_threads())
            l1 = None                                          # the penalty once per step, not per call

    @torch.no_grad()
    def predictions(self, model: GeneNetworkEnsemble, x: torch.Tensor, samples: int) -> torch.Tensor:
        """Predictions (K, samples) of the genotypes ``x`` laid out by :func:`tiles` or :func:`batch_tiles`."""
        sources, strides = self._addresses(list(model.parameters()))
        out = torch.empty(model.n_networks, x.shape[0] * KERNEL_TILE)
        for start in range(0, x.shape[0], self.call_tiles):
            part = x[start: start + self.call_tiles]
            _gene_network.predictions(part.data_ptr(), self.padded_rows, len(part) * KERNEL_TILE, self.rows.data_ptr(),
                                      self.sizes.data_ptr(), self.genes, self.hidden, sources.data_ptr(),
                                      strides.data_ptr(), self.n_params, out.data_ptr() + 4 * start * KERNEL_TILE,
                                      out.shape[1], model.n_networks, torch.get_num_threads())
        return out[:, :samples]


def tiles(xt: torch.Tensor) -> torch.Tensor:
    """Feature-major (P_pad, B) -> the kernel's tile-major (ceil(B / 32), P_pad, 32), zero samples
    padding the last tile."""
    padded = _pad_columns(xt, -(-xt.shape[1] // KERNEL_TILE) * KERNEL_TILE)
    return padded.view(padded.shape[0], -1, KERNEL_TILE).transpose(0, 1).contiguous()


def batch_tiles(batcher: GenotypeBatcher, rows: torch.Tensor | np.ndarray) -> torch.Tensor:
    """:func:`tiles` of ``batcher.padded_t(rows)``, made in one C pass from int8 genotypes."""
    rows = torch.as_tensor(rows, dtype=torch.int64).contiguous()
    genotypes = batcher.genotypes
    if genotypes.dtype != torch.int8 or genotypes.device.type != "cpu":
        return tiles(batcher.padded_t(rows))                     # dosages: torch's float16 conversion
    mean = batcher.snp_mean.reshape(-1).contiguous()
    out = torch.empty(-(-len(rows) // KERNEL_TILE), genotypes.shape[1], KERNEL_TILE)
    _gene_network.tiles(genotypes.data_ptr(), genotypes.shape[0], genotypes.shape[1], rows.data_ptr(), len(rows),
                        mean.data_ptr(), out.data_ptr(), torch.get_num_threads())
    return out


def _pad_columns(t: torch.Tensor, width: int) -> torch.Tensor:
    """``t`` contiguous, with zero columns appended up to ``width``."""
    return F.pad(t, (0, width - t.shape[1])).contiguous() if width > t.shape[1] else t.contiguous()
