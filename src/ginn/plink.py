"""PLINK 1 binary filesets (.bed/.bim/.fam): validated, streamed reading and writing.

Genotypes are handled as int8 A1-allele dosages (0, 1, 2) with -1 for a missing call, the first
allele of the .bim (column 5, PLINK's A1 and plink2's ALT) being the counted one. The .bed file is
memory-mapped and decoded in variant chunks through a 256-entry lookup table, so memory stays flat
as the file grows and no float copy is ever made.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import GinnError

BED_MAGIC = bytes([0x6C, 0x1B, 0x01])
BIM_COLUMNS = ["chrom", "snp", "cm", "pos", "a1", "a2"]
FAM_COLUMNS = ["fid", "iid", "father", "mother", "sex", "pheno"]

# 2-bit PLINK codes -> A1 dosage: 00 hom A1 -> 2, 01 missing -> -1, 10 het -> 1, 11 hom A2 -> 0.
_CODE_TO_DOSAGE = np.array([2, -1, 1, 0], dtype=np.int8)
_DOSAGE_TO_CODE = {2: 0, -1: 1, 1: 2, 0: 3}
_BYTE_CODES = (np.arange(256)[:, None] >> (2 * np.arange(4))[None, :]) & 3
_BYTE_TO_DOSAGES = _CODE_TO_DOSAGE[_BYTE_CODES]
# For each byte, how often each 2-bit code occurs in it, packed as four 16-bit fields of a uint64,
# so one gather-and-sum over a variant's bytes counts all four genotype classes at once.
_BYTE_CODE_COUNTS = sum((_BYTE_CODES == code).sum(axis=1).astype(np.uint64) << np.uint64(16 * code)
                        for code in range(4))
_FIELD_CAPACITY_BYTES = 16_383  # 4 genotypes a byte: at most 65,532 per 16-bit field


def code_counts(raw: np.ndarray, n_samples: int) -> np.ndarray:
    """Per-variant counts of (hom A1, missing, het, hom A2) from packed .bed rows, padding excluded."""
    counts = np.zeros((raw.shape[0], 4), dtype=np.int64)
    for start in range(0, raw.shape[1], _FIELD_CAPACITY_BYTES):
        packed = _BYTE_CODE_COUNTS[raw[:, start:start + _FIELD_CAPACITY_BYTES]].sum(axis=1)
        for code in range(4):
            counts[:, code] += ((packed >> np.uint64(16 * code)) & np.uint64(0xFFFF)).astype(np.int64)
    counts[:, 0] -= raw.shape[1] * 4 - n_samples  # padding bits are 00, counted as hom A1
    return counts


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


@dataclass
class PlinkFileset:
    """An opened, validated PLINK 1 fileset; genotypes are read lazily from the memory-mapped .bed."""

    prefix: Path
    bim: pd.DataFrame
    fam: pd.DataFrame
    _bed: np.memmap

    @classmethod
    def open(cls, prefix: str | Path) -> "PlinkFileset":
        prefix = Path(str(prefix).removesuffix(".bed"))
        bed_path = prefix.with_name(prefix.name + ".bed")
        bim = read_bim(prefix.with_name(prefix.name + ".bim"))
        fam = read_fam(prefix.with_name(prefix.name + ".fam"))
        if not bed_path.is_file():
            raise GinnError(bed_path, ".bed file not found")
        size = bed_path.stat().st_size
        with open(bed_path, "rb") as fh:
            magic = fh.read(3)
        if magic != BED_MAGIC:
            if magic[:2] == BED_MAGIC[:2] and len(magic) == 3 and magic[2] == 0:
                raise GinnError(bed_path, "sample-major .bed (mode 0) is not supported; convert with plink --make-bed")
            raise GinnError(bed_path, "not a PLINK .bed file (wrong magic bytes)")
        n_variants, n_samples = len(bim), len(fam)
        expected = 3 + n_variants * _bytes_per_variant(n_samples)
        if size != expected:
            raise GinnError(bed_path, f".bed has {size} bytes but {n_variants} variants x {n_samples} samples "
                                      f"need {expected}: truncated, or .bim/.fam do not match it")
        bed = np.memmap(bed_path, dtype=np.uint8, mode="r", offset=3,
                        shape=(n_variants, _bytes_per_variant(n_samples)))
        return cls(prefix=prefix, bim=bim, fam=fam, _bed=bed)

    @property
    def n_variants(self) -> int:
        return len(self.bim)

    @property
    def n_samples(self) -> int:
        return len(self.fam)

    def read_raw(self, variants: slice | np.ndarray) -> np.ndarray:
        """The packed .bed bytes of the chosen variants, (n_variants_selected, ceil(n_samples / 4))."""
        return np.asarray(self._bed[variants])

    def read_variants(self, variants: slice | np.ndarray, samples: np.ndarray | None = None) -> np.ndarray:
        """Dosages as int8, variant-major (n_variants_selected, n_samples_selected), -1 missing."""
        dosages = decode_bed_rows(self.read_raw(variants), self.n_samples)
        return dosages if samples is None else dosages[:, samples]

    def iter_variant_chunks(self, chunk_size: int = 4096, samples: np.ndarray | None = None
                            ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (first variant index, int8 dosages variant-major) chunk by chunk."""
        for start in range(0, self.n_variants, chunk_size):
            yield start, self.read_variants(slice(start, min(start + chunk_size, self.n_variants)), samples)

    def read_sample_major(self, variants: np.ndarray, samples: np.ndarray | None = None,
                          chunk_size: int = 4096) -> np.ndarray:
        """int8 (n_samples, n_variants) for the chosen variants, filled chunk by chunk."""
        variants = np.asarray(variants, dtype=np.int64)
        n = self.n_samples if samples is None else len(samples)
        out = np.empty((n, len(variants)), dtype=np.int8)
        for start in range(0, len(variants), chunk_size):
            idx = variants[start:start + chunk_size]
            out[:, start:start + len(idx)] = self.read_variants(idx, samples).T
        return out


def decode_bed_rows(raw: np.ndarray, n_samples: int) -> np.ndarray:
    """Unpack .bed rows (variants, ceil(samples/4)) into int8 A1 dosages (variants, samples), -1 missing."""
    return _BYTE_TO_DOSAGES[raw].reshape(raw.shape[0], -1)[:, :n_samples]


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
        self._fh.write(np.ascontiguousarray(packed_rows, dtype=np.uint8).tobytes())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "BedWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_bim(path: Path, bim: pd.DataFrame) -> None:
    bim[BIM_COLUMNS].to_csv(path, sep="\t", header=False, index=False)


def write_fam(path: Path, fam: pd.DataFrame) -> None:
    fam[FAM_COLUMNS].to_csv(path, sep=" ", header=False, index=False)


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
