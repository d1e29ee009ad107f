"""``ginn qc``: variant and sample quality control with PLINK 2's definitions, streamed over the genotypes.

Order of operations follows plink2: the sample missingness filter (``--mind``) is applied first,
then per-variant missing rate (``--geno``), minor allele frequency (``--maf``) and the
Hardy-Weinberg exact test (``--hwe``, Wigginton et al. 2005, two-sided as plink2 computes it) on
the kept samples. Every chromosome is tested as autosomal.
"""

from __future__ import annotations

import collections
import logging
import math
import queue
import sys
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np

from . import _genotype_counts
from .errors import GinnError
from .files import (atomic_outputs, hash_in_background, in_background, provenance_path, provenance_record,
                    release_cached_pages, write_json, write_tsv)
from .genotypes import GenotypeInput, GenotypeSource, check_min_info
from .plink import BedWriter, chromosome_name, write_bim, write_fam
from .contract import STAGES, stage_options
from .contract.pipeline import QC_WRITES

log = logging.getLogger(__name__)

NON_AUTOSOMES = ("X", "Y", "XY", "MT")  # plink2 treats these apart; ginn's counts assume diploid autosomes


_LOG_FACTORIALS = [np.zeros(1)]  # the longest table computed so far: qc tests chunk after chunk


def _log_factorials(top: int) -> np.ndarray:
    """log(k!) for k = 0..top, each from math.lgamma (as exact as scipy's gammaln, without importing scipy:
    a quarter of a second of start-up)."""
    table = _LOG_FACTORIALS[0]
    if len(table) <= top:
        more = [math.lgamma(k + 1.0) for k in range(len(table), max(top + 1, 2 * len(table)))]
        _LOG_FACTORIALS[0] = table = np.concatenate([table, more])
    return table[:top + 1]


def hwe_exact_pvalues(n_hom_a: np.ndarray, n_het: np.ndarray, n_hom_b: np.ndarray) -> np.ndarray:
    """Two-sided HWE exact test p-values (Wigginton, Cutler & Abecasis 2005) per variant, as plink2 --hardy
    reports them, from the genotype counts (the C kernel :mod:`ginn._genotype_counts` says how)."""
    counts = [np.ascontiguousarray(a, dtype=np.int64) for a in (n_hom_a, n_het, n_hom_b)]
    p = np.empty(len(counts[0]))
    _genotype_counts.hwe_exact_pvalues(*counts, _log_factorials(2 * int(sum(counts).max(initial=0))), p)
    return p


def variant_stats(counts: np.ndarray, dosage_sums: np.ndarray | None = None,
                  dosage_counts: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Missing rate, A1 frequency, MAF and HWE p from per-variant hard-call counts (0, 1, 2 copies of
    A1, missing). As plink2 does, the frequency comes from dosages when the data carry them
    (``dosage_sums`` over ``dosage_counts`` present dosages); missingness and HWE from hard calls."""
    n0, n1, n2, n_missing = counts.T
    if dosage_sums is None:
        dosage_sums, dosage_counts = 2 * n2 + n1, n0 + n1 + n2
    with np.errstate(invalid="ignore", divide="ignore"):
        a1_freq = dosage_sums / (2 * dosage_counts)
    return {
        "missing_rate": n_missing / counts.sum(axis=1).clip(min=1),
        "a1_freq": a1_freq,
        "maf": np.minimum(a1_freq, 1 - a1_freq),
        "hwe_p": hwe_exact_pvalues(n2, n1, n0),
    }


def sample_missing_rates(source: GenotypeSource, chunk_size: int) -> np.ndarray:
    """Per-sample share of missing hard calls (plink2's --mind definition)."""
    missing = np.zeros(source.n_samples, dtype=np.int64)
    for start in range(0, source.n_variants, chunk_size):
        missing += source.missing_per_sample(slice(start, start + chunk_size))
    return missing / max(source.n_variants, 1)


# Allowed range of each filter (a value outside would empty the fileset or mean nothing).
def check_qc_params(geno: float, mind: float, maf: float, hwe: float, min_info: float, chunk_size: int) -> None:
    """The filters' ranges (the contract's `ginn qc` flags), checked before any work for callers that
    bypass the CLI's types."""
    for name, value in (("geno", geno), ("mind", mind), ("maf", maf), ("hwe", hwe), ("min-info", min_info)):
        flag = STAGES["qc"].flag(name)
        if not flag.minimum <= value <= flag.maximum:
            raise GinnError(flag.option, f"must be in [{flag.minimum:g}, {flag.maximum:g}], got {value:g}")
    if chunk_size < 1:
        raise GinnError("--chunk-size", f"must be at least 1, got {chunk_size}")


class _FilesetWriter:
    """The QC'd fileset in the input's format family: ``.bed/.bim/.fam`` for --bfile, ``.pgen/.pvar/.psam``
    (dosages kept) for --pfile and --bgen, so a run's later stages know its name before it exists.

    Genotypes are written in a background thread while the caller works. Passing .bed rows of all samples
    are copied as the caller finds them (:meth:`add_passing`, while it counts the next chunk); other
    genotypes once every passing variant is known (:meth:`write_genotypes`, while it writes the text files)."""

    def __init__(self, outputs, out: Path, source: GenotypeSource, kept: np.ndarray):
        self.source, self.kept = source, kept
        self.subset = None if len(kept) == source.n_samples else kept
        self.pgen = genotype_output_kind(source.input.kind) == "pfile"
        exts = (".pgen", ".pvar", ".psam") if self.pgen else (".bed", ".bim", ".fam")
        self.finals = {ext: out.with_name(out.name + ext) for ext in exts}
        self._outputs, self._paths = outputs, {}
        copies_rows = self.subset is None and source.input.kind == "bfile"  # packed rows copied, no re-encoding
        self._rows_to_copy: queue.SimpleQueue | None = queue.SimpleQueue() if copies_rows else None
        self._written: Callable[..., None] | None = None

    def _path(self, ext: str) -> Path:
        """The temporary path of an output, asked for only when it is written (a run that fails before
        leaves no folder behind)."""
        if ext not in self._paths:
            self._paths[ext] = self._outputs.file(self.finals[ext])
        return self._paths[ext]

    def add_passing(self, variants: np.ndarray) -> None:
        """Passing variants, in file order, as the caller finds them."""
        if self._rows_to_copy is None or not len(variants):
            return
        if self._written is None:  # the first passing rows: the .bed starts
            self._written = in_background(self._copy_bed_rows, BedWriter(self._path(".bed"), len(self.kept)))
        self._rows_to_copy.put(variants)

    def write_genotypes(self, passing: np.ndarray, chunk_size: int) -> None:
        """Every passing variant is known (``passing``: their indices, as :meth:`add_passing` was given them)."""
        if self._rows_to_copy is not None:
            self._rows_to_copy.put(None)
            return
        if self.pgen:
            import pgenlib

            writer = pgenlib.PgenWriter(bytes(self._path(".pgen")), len(self.kept), variant_ct=len(passing),
                                        dosage_present=self.source.has_dosages)
        else:
            writer = BedWriter(self._path(".bed"), len(self.kept))
        self._written = in_background(self._write_chunks, writer, passing, chunk_size)

    def wait(self, raise_error: bool = True) -> None:
        """Wait for the genotypes to be written (``raise_error=False``: also stop, for a caller already failing)."""
        if self._rows_to_copy is not None and not raise_error:
            self._rows_to_copy.put(None)
        if self._written is not None:
            self._written(raise_error)

    def _write_chunks(self, writer, variants: np.ndarray, chunk_size: int) -> None:
        for start in range(0, len(variants), chunk_size):
            chunk = variants[start:start + chunk_size]
            if self.pgen and self.source.has_dosages:
                dosages = self.source.read_dosages(chunk, self.subset)
                dosages[dosages < 0] = -9
                writer.append_dosages_batch(np.ascontiguousarray(dosages, dtype=np.float32))
            elif self.pgen:
                calls = self.source.read_hardcalls(chunk, self.subset)
                calls[calls < 0] = -9
                writer.append_biallelic_batch(calls)
            else:
                writer.write(self.source.read_hardcalls(chunk, self.subset))
        writer.close()

    def _copy_bed_rows(self, writer: BedWriter) -> None:
        """Runs of consecutive passing variants copied file to file, each chunk's writeback started when it is
        copied (ext4 would do all of it when the file is renamed over an older one, on the caller's path, as
        plink2's in-place rewrite does on close). The page cache of the .bed this replaces is dropped first."""
        release_cached_pages(self.finals[".bed"])
        with writer, open(self.source.label, "rb", buffering=0) as bed:
            while (variants := self._rows_to_copy.get()) is not None:
                if len(variants):
                    breaks = np.flatnonzero(np.diff(variants) != 1) + 1
                    starts, stops = variants[np.r_[0, breaks]], variants[np.r_[breaks - 1, len(variants) - 1]] + 1
                    writer.copy_rows(bed, zip(starts.tolist(), stops.tolist()))
                    writer.start_writeback()

    def write_variants_and_samples(self, passing: np.ndarray) -> None:
        """The variant and sample text files of the passing variants and kept samples."""
        bim = {name: values[passing] for name, values in self.source.variant_columns.items()}
        fam = {name: values[self.kept] for name, values in self.source.sample_columns.items()}
        if self.pgen:
            import pandas as pd

            pvar = pd.DataFrame({"#CHROM": bim["chrom"], "POS": bim["pos"], "ID": bim["snp"], "REF": bim["a2"],
                                 "ALT": bim["a1"]})
            pvar.to_csv(self._path(".pvar"), sep="\t", index=False)
            psam = pd.DataFrame({"#FID": fam["fid"], "IID": fam["iid"], "PAT": fam["father"], "MAT": fam["mother"],
                                 "SEX": fam["sex"], "PHENO1": fam["pheno"]})
            psam.to_csv(self._path(".psam"), sep="\t", index=False)
        else:
            write_bim(self._path(".bim"), bim)
            write_fam(self._path(".fam"), fam)


def _progress(chunks: range):
    """A progress bar where tqdm would show one (disable=None: stderr is a terminal), else the chunks as they
    are: importing tqdm takes a tenth of a second (it looks up its own version), a tenth of the whole run."""
    isatty = getattr(sys.stderr, "isatty", None)
    if isatty is not None and not isatty():
        return chunks
    from tqdm import tqdm

    return tqdm(chunks, total=len(chunks), desc="qc", unit="chunk", disable=None)


def genotype_output_kind(input_kind: str) -> str:
    """The flag that reads qc's output: --bfile for --bfile input, else --pfile (dosages kept)."""
    return QC_WRITES[input_kind]


def run_qc(genotypes: GenotypeInput, out: str | Path, geno: float = 0.05, mind: float = 0.05, maf: float = 0.01,
           hwe: float = 1e-6, min_info: float = 0.0, chunk_size: int = 4096) -> dict[str, np.ndarray]:
    """Filter a genotype fileset; write the filtered fileset (``OUT.bed/.bim/.fam``, or ``OUT.pgen/.pvar/.psam``
    for dosage input), ``OUT.qc.tsv`` and ``OUT.qc.samples.tsv``. Returns the columns of ``OUT.qc.tsv``."""
    check_qc_params(geno, mind, maf, hwe, min_info, chunk_size)
    check_min_info(genotypes.kind, min_info)
    source = genotypes.open()
    hash_in_background(source.files.values())  # the provenance checksums, while the counting runs
    per_chrom = collections.Counter(source.variant_columns["chrom"].tolist())
    sex_linked = sum(n for name, n in per_chrom.items() if chromosome_name(str(name)) in NON_AUTOSOMES)
    if sex_linked:
        log.warning("qc: %d variants on X, Y, XY or MT are treated as autosomal (diploid dosages, HWE over all "
                    "samples); exclude them or analyse them separately", sex_linked)
    out = Path(out)
    sample_miss = sample_missing_rates(source, chunk_size) if mind < 1 else np.zeros(source.n_samples)
    keep_samples = sample_miss <= mind
    kept = np.flatnonzero(keep_samples)
    log.info("qc: %d of %d samples pass --mind %g", len(kept), source.n_samples, mind)
    if len(kept) == 0:
        raise GinnError("--mind", f"no sample of {source.name} passes --mind {mind:g}")
    subset = None if len(kept) == source.n_samples else kept
    stats = {name: np.empty(source.n_variants) for name in ("missing_rate", "a1_freq", "maf", "hwe_p")}
    stats["info"] = np.full(source.n_variants, np.nan)
    passing = np.zeros(source.n_variants, dtype=bool)

    def info_fails(info: np.ndarray) -> np.ndarray:
        return (info < min_info) & (min_info > 0)

    with atomic_outputs() as outputs:
        writer = _FilesetWriter(outputs, out, source, kept)
        try:
            for start in _progress(range(0, source.n_variants, chunk_size)):
                chunk = slice(start, min(start + chunk_size, source.n_variants))
                dosage_sums = dosage_counts = None
                if source.has_dosages:
                    dosages = source.read_dosages(chunk, subset).astype(np.float64)
                    present = dosages >= 0
                    dosage_sums, dosage_counts = np.where(present, dosages, 0).sum(axis=1), present.sum(axis=1)
                if genotypes.kind == "bgen":
                    stats["info"][chunk] = source.info_scores(chunk, subset)
                for name, values in variant_stats(source.hardcall_counts(chunk, subset), dosage_sums,
                                                  dosage_counts).items():
                    stats[name][chunk] = values
                passing[chunk] = ((stats["missing_rate"][chunk] <= geno) & (stats["maf"][chunk] >= maf)
                                  & (stats["hwe_p"][chunk] >= hwe) & ~info_fails(stats["info"][chunk]))
                writer.add_passing(start + np.flatnonzero(passing[chunk]))
            if not passing.any():
                raise GinnError(source.label, "no variant passes the filters (--geno/--maf/--hwe/--min-info)")
            writer.write_genotypes(np.flatnonzero(passing), chunk_size)
            writer.write_variants_and_samples(passing)
            columns = ["missing_rate", "a1_freq", "maf", "hwe_p"] + (["info"] if genotypes.kind == "bgen" else [])
            table = {**{name: source.variant_columns[name] for name in ("snp", "chrom", "pos", "a1", "a2")},
                     **{name: stats[name] for name in columns}, "pass": passing}
            write_tsv(outputs.file(out.with_name(out.name + ".qc.tsv")), table, float_format="%.8g")
            samples = {"fid": source.sample_columns["fid"], "iid": source.sample_columns["iid"],
                       "missing_rate": sample_miss, "pass": keep_samples}
            write_tsv(outputs.file(out.with_name(out.name + ".qc.samples.tsv")), samples, float_format="%.8g")
        except BaseException:
            writer.wait(raise_error=False)
            raise
        writer.wait()
        fails = {"geno": stats["missing_rate"] > geno, "maf": stats["maf"] < maf, "hwe": stats["hwe_p"] < hwe,
                 "info": info_fails(stats["info"])}  # a variant without calls has MAF NaN: it fails, uncounted
        summary = {"n_variants_in": source.n_variants, "n_variants_pass": int(passing.sum()),
                   "n_samples_in": source.n_samples, "n_samples_pass": int(len(kept)),
                   **{f"fail_{name}": int(failed.sum()) for name, failed in fails.items()},
                   "output": genotype_output_kind(genotypes.kind)}
        write_json(outputs.file(provenance_path(out)), provenance_record(
            "qc", {**genotypes.as_params(), "out": str(out), "geno": geno, "mind": mind, "maf": maf, "hwe": hwe,
                   "min_info": min_info, "chunk_size": chunk_size},
            inputs=source.files, extra={"summary": summary}))
    log.info("qc: %d of %d variants pass", summary["n_variants_pass"], summary["n_variants_in"])
    return table


@click.command("qc")
@stage_options("qc")
def qc_command(genotypes, geno, mind, maf, hwe, min_info, chunk_size, out):
    """Filter samples (--mind) then variants (--geno, --maf, --hwe, --min-info) as plink2 does."""
    run_qc(genotypes, out, geno=geno, mind=mind, maf=maf, hwe=hwe, min_info=min_info, chunk_size=chunk_size)
