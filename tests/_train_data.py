"""Tiny prepared datasets for the model/trainer tests, written with ``ginn.dataset.write_dataset``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ginn.dataset import write_dataset

GENE_SIZES = [3, 7, 5, 12]



def tiny_dataset(folder: Path, n_samples: int = 500, seed: int = 0, gene_sizes=GENE_SIZES) -> Path:
    """Genes with a main effect and one product interaction, some missing calls, a 70/30 split."""
    rng = np.random.default_rng(seed)
    p = sum(gene_sizes)
    genotypes = rng.binomial(2, rng.uniform(0.1, 0.5, p), size=(n_samples, p)).astype(np.int8)
    genotypes[rng.random(genotypes.shape) < 0.01] = -1
    dosage = np.where(genotypes < 0, 1, genotypes).astype(float)
    offsets = np.concatenate([[0], np.cumsum(gene_sizes)])
    genes = [dosage[:, offsets[i]:offsets[i + 1]] @ rng.normal(size=gene_sizes[i]) for i in range(len(gene_sizes))]
    genes = [(g - g.mean()) / g.std() for g in genes]
    y = genes[0] + genes[1] * genes[2] + rng.normal(size=n_samples)
    y = (y - y.mean()) / y.std()
    is_test = np.zeros(n_samples, dtype=bool)
    is_test[rng.choice(n_samples, int(0.3 * n_samples), replace=False)] = True
    names = [f"g{i + 1}" for i in range(len(gene_sizes))]
    snps = pd.DataFrame({"snp": [f"rs{j}" for j in range(p)], "chrom": "1", "pos": np.arange(p) * 100 + 1,
                         "a1": "A", "a2": "G", "gene": np.repeat(names, gene_sizes)})
    samples = pd.DataFrame({"fid": [f"s{i}" for i in range(n_samples)], "iid": [f"s{i}" for i in range(n_samples)]})
    folder.mkdir(parents=True, exist_ok=True)
    write_dataset(folder, genotypes, y, is_test, samples, snps, names, gene_sizes)
    return folder
