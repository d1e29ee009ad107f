"""The prepared dataset folder that every modelling stage reads (written by ``ginn prepare``).

Layout of ``DATA/``::

    genotypes.npy   int8 (n_samples, n_snps), A1 hard calls 0/1/2, or float16 A1 dosages in [0, 2]
                    when the input carried dosages (PLINK 2 .pgen, BGEN); -1 missing; sample-major
                    and memory-mapped. float16 keeps a dosage to within 2^-10 (finer than BGEN's
                    usual 8-bit probabilities, 1/255) at 2 bytes, a quarter of float64. Columns are grouped by gene: gene g owns columns
                    [gene_offsets[g], gene_offsets[g+1]); a SNP in two genes appears once per gene.
    snp_mean.npy    float32 (n_snps,), mean dosage over called genotypes; centring subtracts it and a
                    missing call becomes 0 (mean imputation).
    target.npy      float32 (n_samples,), the prepared phenotype (covariates and PCs regressed out,
                    rank-based inverse-normal transformed).
    is_test.npy     bool (n_samples,), the seeded held-out split (True = test).
    meta.json       samples, SNPs, genes, phenotype name, preparation summary.
    provenance.json what ran, with which params, seed and versions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import GinnError
from .files import write_json

if TYPE_CHECKING:
    import pandas as pd

DATASET_FILES = ("genotypes.npy", "snp_mean.npy", "target.npy", "is_test.npy", "meta.json")


@dataclass
class Dataset:
    path: Path
    genotypes: np.ndarray          # int8 or float16 (N, P), memory-mapped
    snp_mean: np.ndarray           # float32 (P,)
    target: np.ndarray             # float32 (N,)
    is_test: np.ndarray            # bool (N,)
    genes: list[str]
    gene_offsets: np.ndarray       # int64 (M + 1,)
    meta: dict[str, Any] = field(default_factory=dict)     # holds the samples and SNPs tables' rows

    @classmethod
    def load(cls, path: str | Path) -> "Dataset":
        path = Path(path)
        for name in DATASET_FILES:
            if not (path / name).is_file():
                raise GinnError(path, f"not a ginn dataset folder (missing {name}; make one with `ginn prepare`)")
        try:
            meta = json.loads((path / "meta.json").read_text())
            samples, snps = meta["samples"], meta["snps"]
            genes = [g["gene"] for g in meta["genes"]]
            sizes = [g["n_snps"] for g in meta["genes"]]
            if not (isinstance(samples, list) and all(isinstance(row, list) and len(row) == 2 for row in samples)):
                raise ValueError("samples are not (fid, iid) pairs")
            if not (isinstance(snps, list) and all(isinstance(row, dict) for row in snps)):
                raise ValueError("SNPs are not records")
        except (ValueError, KeyError, TypeError) as exc:
            raise GinnError(path / "meta.json", f"corrupt dataset description ({type(exc).__name__}: {exc}); "
                                                "rerun `ginn prepare`") from None
        arrays = {}
        for name, dtypes in (("genotypes.npy", (np.int8, np.float16)), ("target.npy", (np.float32,)),
                             ("is_test.npy", (np.bool_,)), ("snp_mean.npy", (np.float32,))):
            try:
                arrays[name] = np.load(path / name, mmap_mode="r" if name == "genotypes.npy" else None)
            except (ValueError, OSError, EOFError) as exc:
                raise GinnError(path / name, f"corrupt or truncated array ({str(exc).splitlines()[0]}); "
                                             "rerun `ginn prepare`") from None
            if arrays[name].dtype not in dtypes:
                raise GinnError(path / name, f"has dtype {arrays[name].dtype}, expected {' or '.join(str(np.dtype(d)) for d in dtypes)}")
        genotypes, target, is_test, snp_mean = (arrays[k] for k in ("genotypes.npy", "target.npy", "is_test.npy",
                                                                    "snp_mean.npy"))
        if genotypes.ndim != 2:
            raise GinnError(path / "genotypes.npy", f"is not a 2-D array (shape {genotypes.shape})")
        n, p = genotypes.shape
        if not np.isfinite(target).all():
            raise GinnError(path / "target.npy", "has non-finite values (NaN or inf); rerun `ginn prepare`")
        if target.shape != (n,) or is_test.shape != (n,) or snp_mean.shape != (p,):
            raise GinnError(path, "dataset arrays disagree in shape (genotypes vs target/is_test/snp_mean)")
        if is_test.dtype != np.bool_ or is_test.all():
            raise GinnError(path / "is_test.npy", "is not a bool mask with at least one training sample; "
                                                  "rerun `ginn prepare`")
        _check_genotype_values(path / "genotypes.npy", genotypes)
        if not (np.isfinite(snp_mean).all() and (snp_mean >= 0).all() and (snp_mean <= 2).all()):
            raise GinnError(path / "snp_mean.npy", "has values outside 0..2 (NaN, inf or impossible means); "
                                                   "rerun `ginn prepare`")
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        if offsets[-1] != p or len(samples) != n or len(snps) != p:
            raise GinnError(path, "meta.json does not describe genotypes.npy (sample or SNP counts differ)")
        return cls(path, genotypes, snp_mean, target, is_test, genes, offsets, meta)

    # pandas is imported only by the stages that read these tables (not by training, ~0.3 s a process)
    @cached_property
    def samples(self) -> pd.DataFrame:
        """fid, iid of every genotype row."""
        import pandas as pd
        return pd.DataFrame(self.meta["samples"], columns=["fid", "iid"])

    @cached_property
    def snps(self) -> pd.DataFrame:
        """snp, chrom, pos, a1, a2, gene: one row per genotype column."""
        import pandas as pd
        return pd.DataFrame(self.meta["snps"])

    @property
    def n_samples(self) -> int:
        return self.genotypes.shape[0]

    @property
    def n_snps(self) -> int:
        return self.genotypes.shape[1]

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    @property
    def gene_sizes(self) -> np.ndarray:
        return np.diff(self.gene_offsets)

    @property
    def train_idx(self) -> np.ndarray:
        return np.flatnonzero(~self.is_test)

    @property
    def test_idx(self) -> np.ndarray:
        return np.flatnonzero(self.is_test)

    def centered(self, rows: np.ndarray | slice | None = None, dtype=np.float32) -> np.ndarray:
        """Centred genotypes of the chosen rows as float (missing -> 0); only call on batches."""
        return center_dosages(np.asarray(self.genotypes if rows is None else self.genotypes[rows]), self.snp_mean, dtype)


def center_dosages(genotypes: np.ndarray, snp_mean: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Dosages (int8 or float16) minus the (discovery) SNP means; a missing call (-1) becomes 0, i.e. the mean."""
    x = genotypes.astype(dtype) - snp_mean.astype(dtype)
    x[genotypes < 0] = 0.0
    return x


def write_dataset(folder: Path, genotypes: np.ndarray, target: np.ndarray, is_test: np.ndarray,
                  samples: pd.DataFrame, snps: pd.DataFrame, genes: list[str], gene_sizes: list[int],
                  meta_extra: dict[str, Any] | None = None) -> None:
    """Write the dataset files into ``folder`` (a temporary folder from ``atomic_outputs``)."""
    genotypes = np.ascontiguousarray(genotypes, dtype=np.int8 if genotypes.dtype == np.int8 else np.float16)
    called = genotypes >= 0
    counts = called.sum(axis=0)
    sums = np.where(called, genotypes, 0).sum(axis=0, dtype=np.int64 if genotypes.dtype == np.int8 else np.float64)
    snp_mean = np.divide(sums, counts, out=np.zeros(genotypes.shape[1]), where=counts > 0).astype(np.float32)
    np.save(folder / "genotypes.npy", genotypes)
    np.save(folder / "snp_mean.npy", snp_mean)
    np.save(folder / "target.npy", np.asarray(target, dtype=np.float32))
    np.save(folder / "is_test.npy", np.asarray(is_test, dtype=bool))
    meta = {
        "n_samples": int(genotypes.shape[0]),
        "n_snps": int(genotypes.shape[1]),
        "n_genes": len(genes),
        "samples": samples[["fid", "iid"]].astype(str).values.tolist(),
        "snps": snps[["snp", "chrom", "pos", "a1", "a2", "gene"]].to_dict(orient="records"),
        "genes": [{"gene": g, "n_snps": int(m)} for g, m in zip(genes, gene_sizes)],
    }
    meta.update(meta_extra or {})
    write_json(folder / "meta.json", meta)


# Rows of genotypes checked at a time (bounded memory on a memory-mapped UK Biobank-sized matrix).
_CHECK_BYTES = 64 << 20


def _check_genotype_values(path: Path, genotypes: np.ndarray) -> None:
    """Hard calls are -1 (missing), 0, 1 or 2 alternate alleles; dosages -1 or a value in 0..2. Anything
    else would be trained on as a genotype (one streamed pass, ~1 s per GB)."""
    rows = max(1, _CHECK_BYTES // max(1, genotypes.shape[1] * genotypes.itemsize))
    for start in range(0, genotypes.shape[0], rows):
        part = np.asarray(genotypes[start: start + rows])
        if part.dtype == np.int8:
            bad = part.size and (part.min() < -1 or part.max() > 2)
        else:
            bad = not np.all((part == -1) | ((part >= 0) & (part <= 2)))
        if bad:
            raise GinnError(path, "has genotype values other than -1 (missing) and 0..2; rerun `ginn prepare`")
