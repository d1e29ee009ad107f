"""The authors' public training loop, rebuilt from its description for timing side by side with ginn.

Issue 17's 0.138 s per network-epoch was measured on the authors' public code (batch 140 on 14,019
training rows). That code trains one network at a time, and its network is smaller than the paper's:
each gene is one linear combination of its SNPs (a masked P x M layer), then an M-100-1 predictor
with Softplus(beta = 10). Per epoch it shuffles the rows through a DataLoader, takes one Adam step
(eps 1e-3) per batch of N / 100 rows on MSE plus the L1 norms of the three weight matrices, and then
predicts the whole training set and the held-out set for their MSE and variance explained, which
drive its early stopping. This module runs the same steps on random data of the same shape, so
that a benchmark can time the authors' per network-epoch cost on the machine and in the run it
times ginn on, instead of only quoting a figure from another day.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

AUTHORS_SECONDS_PER_NETWORK_EPOCH = 0.138   # issue 17: their public code, batch 140, 14,019 rows, this machine
AUTHORS_BATCHES_PER_EPOCH = 100            # their batch size is the training rows / 100 (140 here)
AUTHORS_HIDDEN = 100


class AuthorsNetwork(nn.Module):
    """Masked linear gene layer, then M-100-1 with Softplus(10); returns the prediction and the
    encoder's and predictor's L1 norms, as the authors' model does."""

    def __init__(self, gene_sizes, generator: torch.Generator):
        super().__init__()
        p, m = sum(gene_sizes), len(gene_sizes)
        self.register_buffer("mask", torch.block_diag(*(torch.ones(s, 1) for s in gene_sizes)))

        def uniform(rows, cols):
            scale = float(np.sqrt(6.0 / (rows + cols)))
            return nn.Parameter(torch.empty(rows, cols).uniform_(-scale, scale, generator=generator))

        self.gene_w, self.gene_b = uniform(p, m), nn.Parameter(torch.zeros(m))
        self.hidden_w, self.hidden_b = uniform(m, AUTHORS_HIDDEN), nn.Parameter(torch.zeros(AUTHORS_HIDDEN))
        self.out_w, self.out_b = uniform(AUTHORS_HIDDEN, 1), nn.Parameter(torch.zeros(1))
        self.activation = nn.Softplus(beta=10)

    def forward(self, x):
        genes = torch.mm(x, self.gene_w * self.mask) + self.gene_b
        hidden = self.activation(torch.mm(genes, self.hidden_w) + self.hidden_b)
        prediction = torch.mm(hidden, self.out_w) + self.out_b
        return prediction, torch.norm(self.gene_w, 1), torch.norm(self.hidden_w, 1) + torch.norm(self.out_w, 1)


def authors_seconds_per_network_epoch(n_train: int, n_val: int, gene_sizes, epochs: int = 4, l1: float = 1e-3,
                                      seed: int = 0) -> float:
    """Median seconds of one epoch of the authors' loop (after one warm-up epoch) on random centred
    genotypes: the training steps and the per-epoch evaluation of both sets."""
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    p = sum(gene_sizes)

    def cohort(n):
        genotypes = rng.binomial(2, rng.uniform(0.05, 0.5, p), size=(n, p)).astype(np.float32)
        x = torch.from_numpy(genotypes - genotypes.mean(axis=0))
        return x, torch.randn(n, 1, generator=generator)

    x, y = cohort(n_train)
    x_val, y_val = cohort(n_val)
    model = AuthorsNetwork(gene_sizes, generator)
    optimizer = torch.optim.Adam(set(model.parameters()), lr=0.001, eps=1e-3)
    mse = nn.MSELoss()
    batches = DataLoader(TensorDataset(x, y), batch_size=max(1, n_train // AUTHORS_BATCHES_PER_EPOCH), shuffle=True,
                         generator=generator)

    def evaluate(features, target):
        model.eval()
        prediction, _, _ = model(features)
        residual = prediction.view(-1) - target.view(-1)
        return mse(target, prediction).detach(), (1.0 - torch.var(residual) / torch.var(target.view(-1))).detach()

    seconds = []
    for _ in range(1 + epochs):
        started = time.perf_counter()
        for x_batch, y_batch in batches:
            optimizer.zero_grad()
            model.train()
            prediction, gene_l1, predictor_l1 = model(x_batch)
            loss = mse(y_batch, prediction) + l1 * gene_l1 + l1 * predictor_l1
            loss.backward()
            optimizer.step()
        evaluate(x, y)
        evaluate(x_val, y_val)
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds[1:]))
