"""PLINK 1 text files (.bim/.fam), validated, and the .bed writer.

Genotypes are int8 A1-allele dosages (0, 1, 2) with -1 for a missing call, the first allele of the
.bim (column 5, PLINK's A1 and plink2's ALT) being the counted one. Reading .bed genotypes goes
through plink2's pgenlib (:mod:`ginn.genotypes`), which decodes 10x faster than a numpy lookup table.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from . import _table_rows
from .errors import GinnError
from .files import write_tsv

if TYPE_CHECKING:
    import pandas as pd

BED_MAGIC = bytes([0x6C, 0x1B, 0x01])
BIM_COLUMNS = ["chrom", "snp", "cm", "pos", "a1", "a2"]
FAM_COLUMNS = ["fid", "iid", "father", "mother", "sex", "pheno"]

CHROMOSOMES = [str(c) for c in range(1, 23)] + ["X", "Y", "XY", "MT"]
_NUMERIC_ALIASES = {"23": "X", "24": "Y", "25": "XY", "26": "MT", "M": "MT"}  # PLINK's numeric codes

_DOSAGE_TO_CODE = {2: 0, -1: 1, 1: 2, 0: 3}  # A1 dosage -> 2-bit .bed code (00 hom A1, 01 missing)


def _bytes_per_variant(n_samples: int) -> int:
    return (n_samples + 3) // 4


def chromosome_name(text: str) -> str | None:
    """'chr1'/'1' -> '1', 'chrX'/'23' -> 'X', 'chrM'/'26' -> 'MT'; anything else -> None."""
    name = re.sub(r"^chr", "", text, flags=re.IGNORECASE).upper()
    name = _NUMERIC_ALIASES.get(name, name)
    return name if name in CHROMOSOMES else None


def _read_text_table(path: Path, columns: list[str], what: str) -> dict[str, np.ndarray]:
    """A whitespace-separated PLINK text file as text columns (object arrays), split by the C kernel
    :mod:`ginn._table_rows` without pandas: ``ginn qc`` starts a quarter of a second sooner."""
    if not path.is_file():
        raise GinnError(path, f"{what} file not found")
    try:
        text = path.read_bytes().decode("utf-8-sig")       # a byte-order mark is not part of the first ID
    except UnicodeDecodeError:
        raise GinnError(path, f"cannot parse {what}: not UTF-8 text") from None
    try:
        values = _table_rows.split_columns(text, len(columns))
    except ValueError as exc:
        raise GinnError(path, f"{what} has {exc} columns, expected {len(columns)} ({' '.join(columns)})") from None
    if not values[0]:
        raise GinnError(path, f"{what} file is empty")
    return {name: np.array(column, dtype=object) for name, column in zip(columns, values)}


def check_variant_fields(bim, path: Path) -> None:
    """Refuse what plink2 refuses too, in a variant table (snp, pos, a1, a2 columns, from any format):
    a negative position, and one allele code given twice (which would make allele alignment across
    cohorts meaningless); "0" or "." marks an unknown allele."""
    snps, positions = np.asarray(bim["snp"], dtype=object), np.asarray(bim["pos"])
    a1, a2 = np.asarray(bim["a1"], dtype=object), np.asarray(bim["a2"], dtype=object)
    negative = np.flatnonzero(positions < 0)
    if len(negative):
        raise GinnError(path, f"variant {snps[negative[0]]} has a negative position ({positions[negative[0]]})")
    twice = np.flatnonzero((a1 == a2) & ~np.isin(a1, ["0", "."]))
    if len(twice):
        raise GinnError(path, f"variant {snps[twice[0]]} has the same allele twice ({a1[twice[0]]})")


def name_unnamed_variants(bim) -> None:
    """Give a variant whose ID is "." (plink2's missing ID) the ID CHROM:POS, in place (a .bim or .pvar
    table, or a BGEN's without rsIDs): IDs key the SNP-gene map, whose tables read "." as a missing value."""
    snps = np.asarray(bim["snp"], dtype=object)
    unnamed = np.flatnonzero(np.isin(snps, ["", "."]))
    if len(unnamed):
        snps = snps.copy()
        chroms, positions = np.asarray(bim["chrom"], dtype=object), np.asarray(bim["pos"])
        snps[unnamed] = [f"{chroms[i]}:{positions[i]}" for i in unnamed]
        bim["snp"] = snps


def read_bim(path: str | Path) -> dict[str, np.ndarray]:
    """The .bim's columns (:data:`BIM_COLUMNS`): text, and the position as int64."""
    path = Path(path)
    bim = _read_text_table(path, BIM_COLUMNS, ".bim")
    try:
        bim["pos"] = np.array([int(pos) for pos in bim["pos"]], dtype=np.int64)
    except (ValueError, OverflowError):
        raise GinnError(path, ".bim column 4 (position) is not an integer") from None
    check_variant_fields(bim, path)
    name_unnamed_variants(bim)
    snps = bim["snp"].tolist()
    if len(set(snps)) != len(snps):
        seen: set[str] = set()
        dups = [snp for snp in snps if snp in seen or seen.add(snp)]  # every repeat, in file order
        raise GinnError(path, f"duplicate SNP IDs in .bim ({len(dups)}; first {dups[0]})")
    return bim


def read_fam(path: str | Path) -> dict[str, np.ndarray]:
    """The .fam's columns (:data:`FAM_COLUMNS`), as text."""
    path = Path(path)
    fam = _read_text_table(path, FAM_COLUMNS, ".fam")
    seen = set()
    for fid, iid in zip(fam["fid"].tolist(), fam["iid"].tolist()):
        if (fid, iid) in seen:
            raise GinnError(path, f"duplicate sample IDs in .fam (first {fid} {iid})")
        seen.add((fid, iid))
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
        self._written_back = 0  # bytes whose writeback start_writeback started

    def write(self, dosages_variant_major: np.ndarray) -> None:
        if dosages_variant_major.shape[1] != self.n_samples:
            raise ValueError("sample count mismatch in BedWriter.write")
        self._fh.write(encode_bed_rows(dosages_variant_major).tobytes())

    def copy_rows(self, source: BinaryIO, runs: Iterable[tuple[int, int]]) -> None:
        """Append rows ``start:stop`` of each run of an open .bed with the same samples, copied file to file by
        the kernel (``copy_file_range``: no pass through user memory), or by reads and writes where it cannot."""
        row_bytes = _bytes_per_variant(self.n_samples)
        self._fh.flush()
        kernel_copy = getattr(os, "copy_file_range", None)
        for start, stop in runs:
            offset, size = len(BED_MAGIC) + start * row_bytes, (stop - start) * row_bytes
            try:
                while size and kernel_copy:
                    copied = kernel_copy(source.fileno(), self._fh.fileno(), size, offset)
                    if copied == 0:
                        raise GinnError(source.name, "cannot read genotypes: truncated file")
                    offset, size = offset + copied, size - copied
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                kernel_copy = None
            if size:
                self._fh.seek(0, os.SEEK_END)  # the kernel copied up to here
                source.seek(offset)
                self._fh.write(source.read(size))
                self._fh.flush()
        self._fh.seek(0, os.SEEK_END)  # the buffered writer continues after what the kernel wrote

    def start_writeback(self) -> None:
        """Start writing what was appended since the last call to disk, without waiting for it: ext4 would
        start it when the file is renamed over an older one, on the caller's path. Linux's
        POSIX_FADV_DONTNEED starts the writeback of dirty pages (and keeps those it starts); where there is
        no posix_fadvise, nothing."""
        self._fh.flush()
        end = self._fh.tell()
        if hasattr(os, "posix_fadvise") and end > self._written_back:
            os.posix_fadvise(self._fh.fileno(), self._written_back, end - self._written_back, os.POSIX_FADV_DONTNEED)
        self._written_back = end

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "BedWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_bim(path: Path, bim: pd.DataFrame | dict[str, np.ndarray]) -> None:
    write_tsv(path, {name: bim[name] for name in BIM_COLUMNS}, float_format=None, header=False, na_rep="")


def write_fam(path: Path, fam: pd.DataFrame | dict[str, np.ndarray]) -> None:
    write_tsv(path, {name: fam[name] for name in FAM_COLUMNS}, float_format=None, sep=" ", header=False, na_rep="")


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
    import pandas as pd

    ids = [f"{prefix}s{i + 1}" for i in range(n_samples)]
    return pd.DataFrame({"fid": ids, "iid": ids, "father": "0", "mother": "0", "sex": "0", "pheno": "-9"})
