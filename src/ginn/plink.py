"""PLINK 1 text files (.bim/.fam), validated, and the .bed writer.

Genotypes are int8 A1-allele dosages (0, 1, 2) with -1 for a missing call, the first allele of the
.bim (column 5, PLINK's A1 and plink2's ALT) being the counted one. Reading .bed genotypes goes
through plink2's pgenlib (:mod:`ginn.genotypes`), which decodes 10x faster than a numpy lookup table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import GinnError
from .files import write_tsv

BED_MAGIC = bytes([0x6C, 0x1B, 0x01])
BIM_COLUMNS = ["chrom", "snp", "cm", "pos", "a1", "a2"]
FAM_COLUMNS = ["fid", "iid", "father", "mother", "sex", "pheno"]

_DOSAGE_TO_CODE = {2: 0, -1: 1, 1: 2, 0: 3}  # A1 dosage -> 2-bit .bed code (00 hom A1, 01 missing)


def _bytes_per_variant(n_samples: int) -> int:
    return (n_samples + 3) // 4


def _read_text_table(path: Path, columns: list[str], what: str) -> pd.DataFrame:
    if not path.is_file():
        raise GinnError(path, f"{what} file not found")
    try:
        table = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise GinnError(path, f"{what} file is empty") from None
    except pd.errors.ParserError as exc:
        raise GinnError(path, f"cannot parse {what}: {str(exc).splitlines()[0]}") from None
    if table.shape[1] != len(columns):
        raise GinnError(path, f"{what} has {table.shape[1]} columns, expected {len(columns)} "
                              f"({' '.join(columns)})")
    table.columns = columns
    return table


def read_bim(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    bim = _read_text_table(path, BIM_COLUMNS, ".bim")
    try:
        bim["pos"] = bim["pos"].astype(np.int64)
    except ValueError:
        raise GinnError(path, ".bim column 4 (position) is not an integer") from None
    dups = bim["snp"][bim["snp"].duplicated()]
    if len(dups):
        raise GinnError(path, f"duplicate SNP IDs in .bim ({len(dups)}; first {dups.iloc[0]})")
    return bim


def read_fam(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    fam = _read_text_table(path, FAM_COLUMNS, ".fam")
    dups = fam.duplicated(["fid", "iid"])
    if dups.any():
        first = fam.loc[dups].iloc[0]
        raise GinnError(path, f"duplicate sample IDs in .fam (first {first.fid} {first.iid})")
    return fam


def encode_bed_rows(dosages: np.ndarray) -> np.ndarray:
    """Pack int8 dosages (variants, samples) into .bed bytes (variants, ceil(samples/4))."""
    dosages = np.asarray(dosages)
    n_variants, n_samples = dosages.shape
    lut = np.zeros(256, dtype=np.uint8)  # index by dosage + 1 (so -1 -> 0)
    for dosage, code in _DOSAGE_TO_CODE.items():
        lut[dosage + 1] = code
    codes = lut[(dosages.astype(np.int16) + 1)]
    pad = (-n_samples) % 4
    if pad:
        codes = np.concatenate([codes, np.zeros((n_variants, pad), dtype=np.uint8)], axis=1)
    codes = codes.reshape(n_variants, -1, 4)
    return (codes[..., 0] | (codes[..., 1] << 2) | (codes[..., 2] << 4) | (codes[..., 3] << 6)).astype(np.uint8)


class BedWriter:
    """Write a PLINK 1 fileset variant chunk by variant chunk (to temporary paths given by the caller)."""

    def __init__(self, bed_path: Path, n_samples: int):
        self._fh = open(bed_path, "wb")
        self._fh.write(BED_MAGIC)
        self.n_samples = n_samples

    def write(self, dosages_variant_major: np.ndarray) -> None:
        if dosages_variant_major.shape[1] != self.n_samples:
            raise ValueError("sample count mismatch in BedWriter.write")
        self._fh.write(encode_bed_rows(dosages_variant_major).tobytes())

    def write_raw(self, packed_rows: np.ndarray) -> None:
        """Append already packed .bed rows (e.g. copied from a fileset with the same samples)."""
        if packed_rows.shape[1] != _bytes_per_variant(self.n_samples):
            raise ValueError("row width mismatch in BedWriter.write_raw")
        self._fh.write(memoryview(np.ascontiguousarray(packed_rows, dtype=np.uint8)))

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "BedWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_bim(path: Path, bim: pd.DataFrame) -> None:
    write_tsv(path, bim[BIM_COLUMNS], float_format=None, header=False, na_rep="")


def write_fam(path: Path, fam: pd.DataFrame) -> None:
    write_tsv(path, fam[FAM_COLUMNS], float_format=None, sep=" ", header=False, na_rep="")


def write_plink(outputs, prefix: str | Path, dosages_variant_major: np.ndarray,
                bim: pd.DataFrame, fam: pd.DataFrame) -> None:
    """Write a whole fileset through an :class:`~ginn.files.AtomicOutputs` (small data, tests, simulators)."""
    prefix = Path(prefix)
    with BedWriter(outputs.file(prefix.with_name(prefix.name + ".bed")), len(fam)) as writer:
        for start in range(0, dosages_variant_major.shape[0], 8192):
            writer.write(dosages_variant_major[start:start + 8192])
    write_bim(outputs.file(prefix.with_name(prefix.name + ".bim")), bim)
    write_fam(outputs.file(prefix.with_name(prefix.name + ".fam")), fam)


def new_fam(n_samples: int, prefix: str = "") -> pd.DataFrame:
    """A .fam of unrelated founders with unknown sex and phenotype."""
    ids = [f"{prefix}s{i + 1}" for i in range(n_samples)]
    return pd.DataFrame({"fid": ids, "iid": ids, "father": "0", "mother": "0", "sex": "0", "pheno": "-9"})
