"""Genotype input as the field stores it: PLINK 1 ``.bed``, PLINK 2 ``.pgen`` and BGEN 1.2/1.3.

One abstraction, :class:`GenotypeSource`, serves every stage that reads genotypes (qc, map-genes,
prune, prepare, replicate, simulate), chosen with plink2's flags ``--bfile``, ``--pfile`` or
``--bgen`` (+ ``--sample``), the contract's genotype flags (:data:`ginn.contract.stages.GENOTYPES`).

``.bed`` and ``.pgen`` are read by plink2's own library (``pgenlib``); BGEN variant and sample lists come
from the ``bgen`` package, and the genotype blocks are decoded here (:func:`bgen_alt_dosages`).
The counted allele is plink2's ALT (``a1``; column 5 of a .bim, ALT of a .pvar, the second allele
of a BGEN variant as ``plink2 --bgen ... ref-first`` reads it); ``a2`` is REF. Two views of a genotype:

* hard calls, int8 0/1/2 with -1 missing. For dosage data a call is made, as plink2 does with its
  default ``--hard-call-threshold 0.1``, only where the dosage lies within 0.1 of an integer.
* dosages, float32 in [0, 2] with -1 missing; for hard-call data they equal the hard calls.

BGEN probabilities become dosages on plink2's 1/16384 grid with plink2's rounding, so every statistic
equals plink2's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mmap
import zlib

import numpy as np

from . import _genotype_counts
from .errors import GinnError
from .plink import BED_MAGIC, check_variant_fields, name_unnamed_variants, read_bim, read_fam

if TYPE_CHECKING:
    import pandas as pd

HARD_CALL_THRESHOLD = 0.1  # plink2's --hard-call-threshold default
DOSAGE_GRID = 16384        # plink2 stores dosages as multiples of 1/16384
_PGEN_MISSING = -9


@dataclass(frozen=True)
class GenotypeInput:
    """Which genotype fileset a stage reads, as the user named it (``--bfile/--pfile/--bgen``)."""

    kind: str                  # "bfile" | "pfile" | "bgen"
    path: str
    sample: str | None = None  # BGEN .sample file

    @property
    def flag(self) -> str:
        return f"--{self.kind}"

    def as_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {self.kind: self.path}
        if self.kind == "bgen":
            params["sample"] = self.sample
        return params

    def as_args(self) -> list[str]:
        args = [self.flag, self.path]
        return args + ["--sample", self.sample] if self.sample else args

    def open(self) -> "GenotypeSource":
        if self.kind == "bfile":
            return _open_bed(self)
        if self.kind == "pfile":
            return _open_pgen(self)
        return _open_bgen(self)


def genotype_input(bfile: str | None = None, pfile: str | None = None, bgen: str | None = None,
                   sample: str | None = None) -> GenotypeInput:
    """Exactly one of the three flags, checked as the CLI checks it."""
    given = [(kind, value) for kind, value in (("bfile", bfile), ("pfile", pfile), ("bgen", bgen)) if value]
    if len(given) != 1:
        raise GinnError("--bfile/--pfile/--bgen", "give exactly one genotype input"
                        + (f" (got {', '.join('--' + k for k, _ in given)})" if given else ""))
    kind, value = given[0]
    if sample and kind != "bgen":
        raise GinnError("--sample", "only goes with --bgen")
    prefix = str(value)
    for suffix in {"bfile": (".bed", ".bim", ".fam"), "pfile": (".pgen", ".pvar", ".psam"), "bgen": ()}[kind]:
        prefix = prefix.removesuffix(suffix)
    return GenotypeInput(kind, prefix, sample)


def check_min_info(kind: str | None, min_info: float) -> None:
    """``--min-info`` filters on the INFO score of genotype probabilities: only ``--bgen`` has one
    (``kind`` None: a simulated cohort)."""
    if min_info > 0 and kind != "bgen":
        raise GinnError("--min-info", "needs genotype probabilities (--bgen); other inputs carry no INFO score")


@dataclass
class GenotypeSource:
    """An opened, validated genotype fileset; genotypes are read lazily, chunk by chunk.

    Variants and samples are kept as columns (numpy arrays, text as objects) and become the ``bim`` and
    ``fam`` tables on first use, so ``ginn qc`` on a .bed never imports pandas."""

    input: GenotypeInput
    variant_columns: dict[str, np.ndarray]  # chrom snp cm pos a1 a2 (a1 counted)
    sample_columns: dict[str, np.ndarray]   # fid iid father mother sex pheno
    files: dict[str, Path]     # every file read, for provenance
    has_dosages: bool
    _reader: Any = field(repr=False)

    @functools.cached_property
    def bim(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.variant_columns)

    @functools.cached_property
    def fam(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.sample_columns)

    @property
    def label(self) -> Path:
        """The path named in error messages (the genotype file itself)."""
        return self.files["genotypes"]

    @property
    def name(self) -> str:
        return Path(self.input.path).name

    @property
    def n_variants(self) -> int:
        return len(self.variant_columns["snp"])

    @property
    def n_samples(self) -> int:
        return len(self.sample_columns["iid"])

    def read_hardcalls(self, variants: slice | np.ndarray, samples: np.ndarray | None = None) -> np.ndarray:
        """int8 (n_variants_selected, n_samples_selected), 0/1/2 counted alleles, -1 missing."""
        return self._reader.hardcalls(_indices(variants, self.n_variants), samples)

    def read_dosages(self, variants: slice | np.ndarray, samples: np.ndarray | None = None) -> np.ndarray:
        """float32 (n_variants_selected, n_samples_selected) dosages in [0, 2], -1 missing."""
        if not self.has_dosages:
            return self.read_hardcalls(variants, samples).astype(np.float32)
        return self._reader.dosages(_indices(variants, self.n_variants), samples)

    def read_variants(self, variants: slice | np.ndarray, samples: np.ndarray | None = None) -> np.ndarray:
        """What models see: dosages (float32) when the data carry them, else int8 hard calls; -1 missing."""
        return (self.read_dosages if self.has_dosages else self.read_hardcalls)(variants, samples)

    def iter_variant_chunks(self, chunk_size: int = 4096, samples: np.ndarray | None = None
                            ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (first variant index, genotypes variant-major) chunk by chunk."""
        for start in range(0, self.n_variants, chunk_size):
            yield start, self.read_variants(slice(start, min(start + chunk_size, self.n_variants)), samples)

    def read_sample_major(self, variants: np.ndarray, samples: np.ndarray | None = None,
                          chunk_size: int = 4096) -> np.ndarray:
        """(n_samples, n_variants) for the chosen variants, int8 hard calls or float32 dosages."""
        variants = np.asarray(variants, dtype=np.int64)
        n = self.n_samples if samples is None else len(samples)
        out = np.empty((n, len(variants)), dtype=np.float32 if self.has_dosages else np.int8)
        for start in range(0, len(variants), chunk_size):
            idx = variants[start:start + chunk_size]
            out[:, start:start + len(idx)] = self.read_variants(idx, samples).T
        return out

    def hardcall_counts(self, variants: slice, samples: np.ndarray | None = None) -> np.ndarray:
        """int64 (n_variants_selected, 4): hard calls with 0, 1, 2 counted alleles, and missing."""
        return self._reader.counts(_indices(variants, self.n_variants), samples)

    def info_scores(self, variants: slice, samples: np.ndarray | None = None) -> np.ndarray:
        """IMPUTE INFO per variant (BGEN probabilities only; NaN for other inputs)."""
        return self._reader.info(_indices(variants, self.n_variants), samples)

    def missing_per_sample(self, variants: slice) -> np.ndarray:
        """int64 (n_samples,): each sample's missing hard calls among the variants."""
        return self._reader.missing_per_sample(_indices(variants, self.n_variants))


def _indices(variants: slice | np.ndarray, n: int) -> np.ndarray:
    if isinstance(variants, slice):
        return np.arange(n, dtype=np.int64)[variants]
    return np.asarray(variants, dtype=np.int64)


def _counts_from_hardcalls(calls: np.ndarray) -> np.ndarray:
    return np.stack([np.count_nonzero(calls == value, axis=1) for value in (0, 1, 2, -1)], axis=1).astype(np.int64)


def _need(path: Path, what: str) -> Path:
    if not path.is_file():
        compressed = path.with_name(path.name + ".zst")
        if compressed.is_file():   # plink2 --make-pgen vzs writes .pvar.zst
            raise GinnError(path, f"{what} file not found, only {compressed.name}: decompress it first "
                                  f"(plink2 --zst-decompress {compressed.name} > {path.name})")
        raise GinnError(path, f"{what} file not found")
    if path.stat().st_size == 0:
        raise GinnError(path, f"{what} file is empty")
    return path


def _sorted_subset(samples: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """pgenlib wants an increasing sample subset: the subset sorted, and how to put it back in order."""
    if samples is None:
        return None, None
    samples = np.asarray(samples, dtype=np.int64)
    order = np.argsort(samples, kind="stable")
    if len(np.unique(samples)) != len(samples):
        raise ValueError("sample subset lists a sample twice")
    back = None if np.all(order == np.arange(len(samples))) else np.argsort(order)
    return samples[order].astype(np.uint32), back


class _Reader:
    """What every reader computes from its hard calls, unless it has a faster way."""

    def missing_per_sample(self, variants: np.ndarray) -> np.ndarray:
        return (self.hardcalls(variants, None) < 0).sum(axis=0)


class _PgenlibReader(_Reader):
    """Reads .bed or .pgen through pgenlib, one reader per sample subset (the last one is kept)."""

    def __init__(self, path: Path, n_samples: int, n_variants: int):
        self.path, self.n_samples, self.n_variants = path, n_samples, n_variants
        self._key: bytes | None = None
        self._reader = None
        self._back = None

    def _open(self, samples: np.ndarray | None):
        subset, back = _sorted_subset(samples)
        key = b"all" if subset is None else subset.tobytes()
        if key != self._key:
            import pgenlib

            if self._reader is not None:
                self._reader.close()
            self._reader = pgenlib.PgenReader(bytes(self.path), raw_sample_ct=self.n_samples,
                                              variant_ct=self.n_variants, sample_subset=subset)
            self._key, self._back = key, back
        return self._reader, (self.n_samples if subset is None else len(subset))

    def _read(self, variants: np.ndarray, samples, dtype, range_fn: str, list_fn: str) -> np.ndarray:
        reader, n = self._open(samples)
        out = np.empty((len(variants), n), dtype=dtype)
        if len(variants) == 0:
            return out
        try:
            if np.all(np.diff(variants) == 1):
                getattr(reader, range_fn)(int(variants[0]), int(variants[-1]) + 1, out)
            else:
                getattr(reader, list_fn)(variants.astype(np.uint32), out)
        except RuntimeError as exc:
            raise self._unreadable(exc) from None
        out[out == _PGEN_MISSING] = -1
        return out if self._back is None else out[:, self._back]

    def hardcalls(self, variants: np.ndarray, samples) -> np.ndarray:
        return self._read(variants, samples, np.int8, "read_range", "read_list")

    def dosages(self, variants: np.ndarray, samples) -> np.ndarray:
        return self._read(variants, samples, np.float32, "read_dosages_range", "read_dosages_list")

    def counts(self, variants: np.ndarray, samples) -> np.ndarray:
        reader, _ = self._open(samples)
        counts = np.empty((len(variants), 4), dtype=np.uint32)
        count = reader.count
        try:
            for variant, row in zip(variants.tolist(), counts):
                count(variant, row)  # hom REF, het, hom ALT, missing
        except RuntimeError as exc:
            raise self._unreadable(exc) from None
        return counts.astype(np.int64)

    def _unreadable(self, exc: RuntimeError) -> GinnError:
        return GinnError(self.path, f"cannot read genotypes ({str(exc).strip()}): truncated or corrupt file")

    def info(self, variants: np.ndarray, samples) -> np.ndarray:
        return np.full(len(variants), np.nan)


class _BedReader(_PgenlibReader):
    """A .bed: genotypes through pgenlib, but counts straight from the packed rows (C kernel), read in order
    into one reused buffer (4x faster than pgenlib's per-variant counts)."""

    def __init__(self, path: Path, n_samples: int, n_variants: int):
        super().__init__(path, n_samples, n_variants)
        self.row_bytes = (n_samples + 3) // 4
        self._rows = bytearray()
        self._keep: tuple[bytes, np.ndarray] | None = None  # (subset key, 0/1 per sample)

    def _packed_rows(self, variants: np.ndarray) -> memoryview:
        """The .bed rows of the variants, in order (one read for a run of consecutive variants)."""
        size = len(variants) * self.row_bytes
        if len(self._rows) < size:
            self._rows = bytearray(size)
        view = memoryview(self._rows)[:size]
        consecutive = len(variants) == 0 or variants[-1] - variants[0] == len(variants) - 1
        spans = [(int(variants[0]), view)] if consecutive and len(variants) else \
            [(int(v), view[i * self.row_bytes:(i + 1) * self.row_bytes]) for i, v in enumerate(variants)]
        with open(self.path, "rb", buffering=0) as fh:
            for variant, target in spans:
                fh.seek(len(BED_MAGIC) + variant * self.row_bytes)
                if fh.readinto(target) != len(target):
                    raise GinnError(self.path, "cannot read genotypes: truncated file")
        return view

    def _keep_mask(self, samples) -> np.ndarray:
        key = b"all" if samples is None else np.asarray(samples, np.int64).tobytes()
        if self._keep is None or self._keep[0] != key:
            keep = np.ones(self.n_samples, np.uint8) if samples is None else np.zeros(self.n_samples, np.uint8)
            if samples is not None:
                keep[np.asarray(samples, np.int64)] = 1
            self._keep = (key, keep)
        return self._keep[1]

    def counts(self, variants: np.ndarray, samples) -> np.ndarray:
        counts = np.empty((len(variants), 4), dtype=np.int64)
        _genotype_counts.count_genotypes(self._packed_rows(variants), self.n_samples, self._keep_mask(samples), counts)
        return counts

    def missing_per_sample(self, variants: np.ndarray) -> np.ndarray:
        missing = np.zeros(self.n_samples, dtype=np.int64)
        _genotype_counts.add_missing_per_sample(self._packed_rows(variants), self.n_samples, missing)
        return missing


def _fileset_files(spec: GenotypeInput, genotypes: str, variants: str, samples: str) -> dict[str, Path]:
    """The three files of a PLINK-style fileset prefix, by role."""
    prefix = Path(spec.path)
    return {role: prefix.with_name(prefix.name + ext)
            for role, ext in (("genotypes", genotypes), ("variants", variants), ("samples", samples))}


def _open_bed(spec: GenotypeInput) -> GenotypeSource:
    files = _fileset_files(spec, ".bed", ".bim", ".fam")
    bim, fam = read_bim(files["variants"]), read_fam(files["samples"])
    bed = _need(files["genotypes"], ".bed")
    with open(bed, "rb") as fh:
        magic = fh.read(3)
    if magic != BED_MAGIC:
        if magic[:2] == BED_MAGIC[:2] and len(magic) == 3 and magic[2] == 0:
            raise GinnError(bed, "sample-major .bed (mode 0) is not supported; convert with plink --make-bed")
        raise GinnError(bed, "not a PLINK .bed file (wrong magic bytes)")
    n_variants, n_samples = len(bim["snp"]), len(fam["iid"])
    expected = 3 + n_variants * ((n_samples + 3) // 4)
    if bed.stat().st_size != expected:
        raise GinnError(bed, f".bed has {bed.stat().st_size} bytes but {n_variants} variants x {n_samples} samples "
                             f"need {expected}: truncated, or .bim/.fam do not match it")
    return GenotypeSource(spec, bim, fam, files, False, _BedReader(bed, n_samples, n_variants))


def _require_nonempty(bim: pd.DataFrame, fam: pd.DataFrame, files: dict[str, Path]) -> None:
    if bim.empty:
        raise GinnError(files["variants"], "lists no variant")
    if fam.empty:
        raise GinnError(files["samples"], "lists no sample")


def _columns(table: pd.DataFrame) -> dict[str, np.ndarray]:
    return {name: table[name].to_numpy() for name in table.columns}


def _read_headed_table(path: Path, what: str) -> pd.DataFrame:
    """A plink2 text table whose header line starts with '#' (after any '##' meta lines)."""
    import pandas as pd

    _need(path, what)
    with open(path) as fh:
        skip = 0
        for line in fh:
            if not line.startswith("##"):
                break
            skip += 1
    if not line.startswith("#"):
        raise GinnError(path, f"{what} needs a header line starting with # (as plink2 writes it)")
    try:
        table = pd.read_csv(path, sep="\t", skiprows=skip, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise GinnError(path, f"cannot parse {what}: {str(exc).splitlines()[0]}") from None
    table.columns = [c.lstrip("#") for c in table.columns]
    return table


def read_pvar(path: Path) -> pd.DataFrame:
    import pandas as pd

    table = _read_headed_table(path, ".pvar")
    missing = [c for c in ("CHROM", "POS", "ID", "REF", "ALT") if c not in table.columns]
    if missing:
        raise GinnError(path, f".pvar lacks column(s) {', '.join(missing)}")
    if table["ALT"].str.contains(",").any():
        raise GinnError(path, "multi-allelic variants are not supported; split them with plink2 --make-pgen "
                              "(after bcftools norm -m -)")
    try:
        pos = table["POS"].astype(np.int64)
    except ValueError:
        raise GinnError(path, ".pvar POS is not an integer") from None
    bim = pd.DataFrame({"chrom": table["CHROM"], "snp": table["ID"], "cm": table.get("CM", "0"), "pos": pos,
                        "a1": table["ALT"], "a2": table["REF"]})
    check_variant_fields(bim, path)
    name_unnamed_variants(bim)
    _check_unique_ids(bim, path)
    return bim


def _check_unique_ids(bim: pd.DataFrame, path: Path) -> None:
    dups = bim["snp"][bim["snp"].duplicated()]
    if len(dups):
        raise GinnError(path, f"duplicate variant IDs ({len(dups)}; first {dups.iloc[0]})")


def read_psam(path: Path) -> pd.DataFrame:
    import pandas as pd

    table = _read_headed_table(path, ".psam")
    if "IID" not in table.columns:
        raise GinnError(path, ".psam lacks an IID column")
    def column(name: str, default: str) -> pd.Series:
        values = table[name] if name in table.columns else pd.Series(default, index=table.index)
        return values.replace({"NA": default})

    fam = pd.DataFrame({"fid": table["FID"] if "FID" in table.columns else table["IID"], "iid": table["IID"],
                        "father": column("PAT", "0"), "mother": column("MAT", "0"), "sex": column("SEX", "0"),
                        "pheno": column("PHENO1", "-9")})
    if fam.duplicated(["fid", "iid"]).any():
        raise GinnError(path, "lists a sample twice")
    return fam


def _open_pgen(spec: GenotypeInput) -> GenotypeSource:
    import pgenlib

    files = _fileset_files(spec, ".pgen", ".pvar", ".psam")
    bim, fam = read_pvar(files["variants"]), read_psam(files["samples"])
    pgen = _need(files["genotypes"], ".pgen")
    _require_nonempty(bim, fam, files)
    has_dosages = _pgen_has_dosage_track(pgen)
    try:
        pgenlib.PgenReader(bytes(pgen), raw_sample_ct=len(fam), variant_ct=len(bim)).close()
    except RuntimeError as exc:
        text = exc.args[0] if exc.args else ""
        text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)   # pgenlib raises bytes
        raise GinnError(pgen, f"cannot read .pgen ({(text.strip().splitlines() or ['unknown error'])[0]}); "
                              ".pvar/.psam may not match it") from None
    return GenotypeSource(spec, _columns(bim), _columns(fam), files, has_dosages,
                          _PgenlibReader(pgen, len(fam), len(bim)))


def _pgen_has_dosage_track(pgen: Path) -> bool:
    """Whether the .pgen can hold dosages: fixed-width dosage modes, or 8-bit variant record types
    (bit 2 of the header control byte; 4-bit types, the other case, can only say hard calls)."""
    with open(pgen, "rb") as fh:
        head = fh.read(12)
    if len(head) < 12 or head[:2] != b"l\x1b" or head[2] not in (0x02, 0x03, 0x04, 0x10, 0x11):
        raise GinnError(pgen, "not a PLINK 2 .pgen file (wrong magic bytes)")
    if head[2] in (0x02, 0x03, 0x04):
        return head[2] != 0x02
    return bool(head[11] & 4)


class _BgenReader(_Reader):
    """Reads BGEN layout-2 genotype blocks and turns them into plink2's dosages and hard calls.

    Dosages are decoded here from the stored integer probabilities, as plink2 decodes them (see
    :func:`bgen_alt_dosages`); the ``bgen`` package's float probabilities serve INFO only.
    """

    def __init__(self, path: Path, reader, n_samples: int, records: list[tuple[int, str]]):
        self.path, self.reader, self.n_samples, self.records = path, reader, n_samples, records
        self.compression = reader.header.compression
        import zstandard

        self._zstd = zstandard.ZstdDecompressor() if self.compression == "zstd" else None
        self._decompress_errors = (zlib.error, zstandard.ZstdError)
        with open(path, "rb") as fh:
            self._data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        self._decoded: tuple[bytes, np.ndarray] | None = None   # the chunk `counts` decoded, for `dosages` next

    def _block(self, variant: int) -> bytes:
        """The variant's genotype block, decompressed (BGEN spec: after the identifying data)."""
        offset, snp = self.records[variant]
        data = self._data
        try:
            at = offset
            for _ in range(3):                     # variant ID, rsID, chromosome: 2-byte lengths
                at += 2 + int.from_bytes(data[at:at + 2], "little")
            at += 4                                # position
            n_alleles = int.from_bytes(data[at:at + 2], "little")
            at += 2
            for _ in range(n_alleles):             # alleles: 4-byte lengths
                at += 4 + int.from_bytes(data[at:at + 4], "little")
            size = int.from_bytes(data[at:at + 4], "little")
            if self.compression is None:
                return data[at + 4:at + 4 + size]
            expected = int.from_bytes(data[at + 4:at + 8], "little")
            packed = data[at + 8:at + 4 + size]
            if self.compression == "zlib":
                block = zlib.decompress(packed)
            else:
                block = self._zstd.decompress(packed, max_output_size=expected)
        except self._decompress_errors as exc:   # a cut-off or corrupt record
            raise GinnError(self.path, f"cannot decompress the genotypes of variant {snp} ({exc})") from None
        if len(block) != expected:
            raise GinnError(self.path, f"variant {snp}: genotype block is {len(block)} bytes, header says {expected}")
        return block

    @staticmethod
    def _key(variants: np.ndarray, samples) -> bytes:
        return np.asarray(variants, np.int64).tobytes() + (b"" if samples is None else
                                                           b"|" + np.asarray(samples, np.int64).tobytes())

    def _decode(self, variants: np.ndarray, samples) -> np.ndarray:
        out = np.empty((len(variants), self.n_samples if samples is None else len(samples)), np.float32)
        for row, variant in enumerate(variants):
            alt = bgen_alt_dosages(self._block(int(variant)), self.n_samples, self.path, self.records[variant][1])
            dosage = np.where(alt < 0, -1.0, alt / DOSAGE_GRID)
            out[row] = dosage if samples is None else dosage[np.asarray(samples)]
        return out

    def dosages(self, variants: np.ndarray, samples) -> np.ndarray:
        decoded, self._decoded = self._decoded, None
        if decoded is not None and decoded[0] == self._key(variants, samples):
            return decoded[1]
        return self._decode(variants, samples)

    def hardcalls(self, variants: np.ndarray, samples) -> np.ndarray:
        return hardcalls_from_dosages(self.dosages(variants, samples))

    def counts(self, variants: np.ndarray, samples) -> np.ndarray:
        """Hard-call counts; the decoded chunk is kept for one `dosages` call, which qc makes next, so each
        chunk is decompressed and unpacked once."""
        dosages = self._decode(variants, samples)
        self._decoded = (self._key(variants, samples), dosages)
        return _counts_from_hardcalls(hardcalls_from_dosages(dosages))

    def info(self, variants: np.ndarray, samples) -> np.ndarray:
        def probabilities(variant: int) -> np.ndarray:
            probs = np.asarray(self.reader[int(variant)].probabilities, dtype=np.float64)
            return probs if samples is None else probs[np.asarray(samples)]
        return np.array([impute_info(probabilities(v)) for v in variants])


def _unpack(packed: bytes, count: int, bits: int) -> np.ndarray:
    """``count`` little-endian unsigned integers of ``bits`` bits each, packed end to end (BGEN layout 2)."""
    if bits in (8, 16, 32):
        return np.frombuffer(packed, dtype=f"<u{bits // 8}", count=count).astype(np.int64)
    starts = np.arange(count, dtype=np.int64) * bits
    raw = np.frombuffer(bytes(packed[:(count * bits + 7) // 8]) + bytes(8), dtype=np.uint8)
    windows = raw[(starts // 8)[:, None] + np.arange(8)].copy().view("<u8").ravel()   # 8 bytes from each start
    return ((windows >> (starts % 8).astype(np.uint64)) & np.uint64((1 << bits) - 1)).astype(np.int64)


def bgen_alt_dosages(block: bytes, n_samples: int, path: Path, snp: str) -> np.ndarray:
    """The second allele's dosage per sample, in 1/16384 units (int64, -1 missing), from a decompressed
    BGEN layout-2 genotype block of a biallelic, unphased variant, exactly as ``plink2 --bgen ref-first``
    imports it (plink2_import.cc, BGEN-1.3 import): with bit depth b, D = 2^b - 1 and the stored
    numerators of the first allele's genotypes (diploid: P(AA), P(AB); haploid: P(A)), plink2 computes
    the first allele's dosage F = floor((16384 * S + 2^(b-1)) / D), S = 2 P(AA) + P(AB) (haploid 2 P(A)),
    i.e. rounds up from 1/(2D) below the half (1 bit: F = 16384 S), and stores 32768 - F for the second
    allele (ref-first makes the first allele REF). A sample flagged missing, or of ploidy other than 1
    or 2, is missing.
    """
    if len(block) < 10 + n_samples:
        raise GinnError(path, f"variant {snp}: genotype block too short for {n_samples} samples")
    stored_samples = int.from_bytes(block[0:4], "little")
    n_alleles = int.from_bytes(block[4:6], "little")
    if stored_samples != n_samples:
        raise GinnError(path, f"variant {snp}: genotype block holds {stored_samples} samples, header says {n_samples}")
    if n_alleles != 2:
        raise GinnError(path, f"variant {snp}: {n_alleles} alleles (only biallelic variants are supported)")
    flags = np.frombuffer(block, dtype=np.uint8, count=n_samples, offset=8)
    ploidy = (flags & 63).astype(np.int64)     # values stored per sample: its ploidy (biallelic, unphased)
    if ploidy.max() > 2:
        raise GinnError(path, f"variant {snp}: ploidy {ploidy.max()} (only haploid and diploid samples are supported)")
    phased, bits = block[8 + n_samples], block[9 + n_samples]
    if phased:
        raise GinnError(path, f"variant {snp}: phased probabilities are not supported (give unphased genotype probabilities)")
    if not 1 <= bits <= 32:
        raise GinnError(path, f"variant {snp}: bit depth {bits} (BGEN allows 1-32)")
    count = int(ploidy.sum())
    packed = memoryview(block)[10 + n_samples:]
    if len(packed) * 8 < count * bits:
        raise GinnError(path, f"variant {snp}: genotype block too short for its probabilities")
    values = _unpack(packed, count, bits)
    denominator = (1 << bits) - 1
    if count == 2 * n_samples:                 # every sample diploid
        pairs = values.reshape(n_samples, 2)
        first, second = pairs[:, 0], pairs[:, 1]
        called = flags == 2
    else:
        start = np.minimum(np.cumsum(ploidy) - ploidy, max(count - 1, 0))
        padded = np.append(values, 0)
        first, second = padded[start], np.where(ploidy == 2, padded[start + 1], padded[start])
        called = (flags == 1) | (flags == 2)
    if np.any((flags == 2) & (first + second > denominator)):
        raise GinnError(path, f"variant {snp}: genotype probabilities of a sample sum to more than 1")
    half = 1 << (bits - 1) if bits > 1 else 0   # at 1 bit plink2 multiplies exactly (D = 1)
    first_allele = (DOSAGE_GRID * (2 * first + np.where(flags == 1, 0, second)) + half) // denominator
    return np.where(called, 2 * DOSAGE_GRID - first_allele, -1)


def hardcalls_from_dosages(dosages: np.ndarray) -> np.ndarray:
    """plink2's hard calls: the nearest integer when within the threshold of it, else missing."""
    nearest = np.rint(dosages)
    called = (dosages >= 0) & (np.abs(dosages - nearest) <= HARD_CALL_THRESHOLD + 1e-9)
    return np.where(called, nearest, -1).astype(np.int8)


def impute_info(probs: np.ndarray) -> float:
    """IMPUTE's INFO measure: 1 - sum(f_i - e_i^2) / (2 N theta (1 - theta)); 1 for a monomorphic variant."""
    probs = probs[~np.isnan(probs).any(axis=1)]
    if len(probs) == 0:
        return float("nan")
    expected = probs[:, 1] + 2 * probs[:, 2]
    second_moment = probs[:, 1] + 4 * probs[:, 2]
    theta = expected.sum() / (2 * len(probs))
    if theta <= 0 or theta >= 1:
        return 1.0
    return float(1 - (second_moment - expected ** 2).sum() / (2 * len(probs) * theta * (1 - theta)))


def read_oxford_sample(path: Path) -> pd.DataFrame:
    """An Oxford .sample file (header, type line, then ID_1 ID_2 ...) as .fam columns."""
    import pandas as pd

    _need(path, ".sample")
    try:
        table = pd.read_csv(path, sep=r"\s+", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise GinnError(path, f"cannot parse .sample: {str(exc).splitlines()[0]}") from None
    if list(table.columns[:2]) != ["ID_1", "ID_2"] or table.empty or table.iloc[0, 0] != "0":
        raise GinnError(path, "not an Oxford .sample file (expected header ID_1 ID_2 ... and a 0 0 ... type line)")
    table = table.iloc[1:].reset_index(drop=True)
    fam = pd.DataFrame({"fid": table["ID_1"], "iid": table["ID_2"], "father": "0", "mother": "0",
                        "sex": table.get("sex", "0"), "pheno": "-9"})
    if fam.duplicated(["fid", "iid"]).any():
        raise GinnError(path, "lists a sample twice")
    return fam


def _open_bgen(spec: GenotypeInput) -> GenotypeSource:
    import bgen
    import pandas as pd

    path = _need(Path(spec.path), "BGEN")
    with open(path, "rb") as fh:
        head = fh.read(20)
        header_size = int.from_bytes(head[4:8], "little")
        fh.seek(header_size)                      # the flags close the header block (from byte 4)
        flags = int.from_bytes(fh.read(4), "little")
    if len(head) < 20 or head[16:20] not in (b"bgen", b"\x00\x00\x00\x00"):
        raise GinnError(path, "not a BGEN file (no 'bgen' magic number)")
    if (flags >> 2) & 15 != 2:
        raise GinnError(path, f"BGEN layout {(flags >> 2) & 15} is not supported (only layout 2: BGEN 1.2/1.3); "
                              "convert it with plink2 --bgen FILE ref-first --export bgen-1.2")
    files = {"genotypes": path}
    try:
        reader = bgen.BgenReader(str(path), sample_path=spec.sample or "", delay_parsing=False)
        n_variants = len(reader)
        variants = pd.DataFrame({"chrom": reader.chroms(), "snp": reader.rsids(), "pos": reader.positions()})
        records = [reader[i] for i in range(n_variants)]
        alleles = [record.alleles for record in records]
        offsets = [record.fileoffset for record in records]
    except (ValueError, IndexError, OSError, RuntimeError) as exc:
        raise GinnError(path, f"cannot read BGEN ({str(exc).strip().splitlines()[0]})") from None
    if any(len(a) != 2 for a in alleles):
        raise GinnError(path, "multi-allelic variants are not supported")
    if spec.sample:
        fam = read_oxford_sample(Path(spec.sample))
        files["samples"] = Path(spec.sample)
        if len(fam) != reader[0].n_samples if n_variants else False:
            raise GinnError(spec.sample, f"lists {len(fam)} samples but {path.name} holds {reader[0].n_samples}")
    else:
        ids = list(reader.samples)
        if not ids or all(s == "" for s in ids):
            raise GinnError(path, "BGEN has no sample IDs inside; give --sample FILE.sample")
        fam = pd.DataFrame({"fid": ids, "iid": ids, "father": "0", "mother": "0", "sex": "0", "pheno": "-9"})
    bim = pd.DataFrame({"chrom": variants["chrom"].astype(str), "snp": variants["snp"].astype(str), "cm": "0",
                        "pos": variants["pos"].astype(np.int64), "a1": [a[1] for a in alleles],
                        "a2": [a[0] for a in alleles]})
    name_unnamed_variants(bim)
    check_variant_fields(bim, path)
    _check_unique_ids(bim, path)
    _require_nonempty(bim, fam, {"variants": path, "samples": files.get("samples", path)})
    return GenotypeSource(spec, _columns(bim), _columns(fam), files, True,
                          _BgenReader(path, reader, len(fam), list(zip(offsets, bim["snp"]))))
