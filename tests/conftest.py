"""Shared fixtures: small PLINK filesets with planted QC problems, made offline and seeded."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ginn.files import atomic_outputs
from ginn.plink import new_fam, write_plink

REPO = Path(__file__).resolve().parents[1]


def make_fileset(prefix: Path, n_samples: int = 600, n_variants: int = 400, seed: int = 0,
                 chrom: str = "1", start: int = 1_000_000, spacing: int = 500) -> Path:
    """A fileset with low-MAF variants, HWE violations, variant and sample missingness."""
    rng = np.random.default_rng(seed)
    maf = rng.uniform(0.002, 0.5, n_variants)
    dosages = rng.binomial(2, maf[:, None], size=(n_variants, n_samples)).astype(np.int8)
    violators = rng.choice(n_variants, n_variants // 10, replace=False)
    half = len(violators) // 2
    dosages[violators[:half]] = rng.choice([0, 2], size=(half, n_samples), p=[0.6, 0.4])  # no heterozygotes
    dosages[violators[half:]] = rng.choice([1, 2], size=(len(violators) - half, n_samples), p=[0.9, 0.1])
    variant_missing = np.where(rng.random(n_variants) < 0.15, rng.uniform(0.02, 0.12, n_variants), 0.005)
    sample_missing = np.where(rng.random(n_samples) < 0.05, 0.12, 0.0)
    missing = rng.random((n_variants, n_samples)) < np.maximum(variant_missing[:, None], sample_missing[None, :])
    dosages[missing] = -1
    alleles = rng.choice(list("ACGT"), size=(n_variants, 2))
    same = alleles[:, 0] == alleles[:, 1]
    alleles[same, 1] = np.where(alleles[same, 0] == "A", "G", "A")
    bim = pd.DataFrame({"chrom": chrom, "snp": [f"rs{seed}_{i}" for i in range(n_variants)], "cm": "0",
                        "pos": start + spacing * np.arange(n_variants), "a1": alleles[:, 0], "a2": alleles[:, 1]})
    with atomic_outputs() as out:
        write_plink(out, prefix, dosages, bim, new_fam(n_samples))
    return prefix


@pytest.fixture(scope="session")
def qc_fileset(tmp_path_factory) -> Path:
    return make_fileset(tmp_path_factory.mktemp("qcdata") / "raw")


@pytest.fixture(scope="module")
def one_torch_thread():
    """For modules of tiny networks: one intra-op thread is as fast as two, and two threads stall each
    other on a shared 2-core machine (measured ~10x slower under load). Opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def plink2(*args: str, cwd: Path | None = None) -> None:
    exe = shutil.which("plink2")
    assert exe, "plink2 must be installed (Debian package plink2; .ci/run installs it)"
    subprocess.run([exe, *args], check=True, capture_output=True, cwd=cwd)
