"""``ginn qc``: variant and sample quality control with PLINK 2's definitions, streamed over the genotypes.

Order of operations follows plink2: the sample missingness filter (``--mind``) is applied first,
then per-variant missing rate (``--geno``), minor allele frequency (``--maf``) and the
Hardy-Weinberg exact test (``--hwe``, Wigginton et al. 2005, two-sided as plink2 computes it) on
the kept samples. Every chromosome is tested as autosomal.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import click
import numpy as np
import pandas as pd
from tqdm import tqdm

from .errors import GinnError
from .files import atomic_outputs, hash_in_background, provenance_path, provenance_record, write_json, write_tsv
from .genes import normalize_chrom
from .genotypes import GenotypeInput, GenotypeSource
from .plink import BedWriter, write_bim, write_fam
from .contract import STAGES, stage_options
from .contract.pipeline import QC_WRITES

log = logging.getLogger(__name__)

NON_AUTOSOMES = ("X", "Y", "XY", "MT")  # plink2 treats these apart; ginn's counts assume diploid autosomes

# plink2 treats probabilities within this relative margin of the observed one as ties.
_HWE_TIE_TOLERANCE = 1e-7


def _walk(mode, rare, n, keep_going, threshold, negligible=None):
    """Walk each variant's heterozygote null distribution outwards from its mode (the paper's
    recurrence, probabilities relative to the mode's) while ``keep_going(prob, threshold[, negligible])``.
    Returns per variant the sum of the terms walked: without ``negligible`` those kept going (the central
    mass), with it every term and, second, the sum of those at most ``threshold`` (the tails).

    A variant that is done keeps a zero term (it cannot go on), so the arrays are compacted only once half
    of them are done: each variant costs about its own number of steps, with few gathers per step."""
    walked, tail = np.zeros_like(n), np.zeros_like(n)
    tails = negligible is not None
    for direction in (+1, -1):
        idx = np.flatnonzero(n > 0)
        het = mode[idx]
        twice_rare_hom = rare[idx] - het
        twice_common_hom = 2 * n[idx] - rare[idx] - het
        prob = np.ones(len(idx))
        limits = (threshold[idx], negligible[idx]) if tails else (threshold[idx],)
        summed, summed_tail = np.zeros(len(idx)), np.zeros(len(idx))
        while len(idx):
            if direction > 0:
                valid = (twice_rare_hom >= 2) & (twice_common_hom >= 2)
                prob = prob * (twice_rare_hom * twice_common_hom) / ((het + 1) * (het + 2))
            else:
                valid = het >= 2
                prob = prob * (het * (het - 1)) / ((twice_rare_hom + 2) * (twice_common_hom + 2))
            het = het + 2 * direction
            twice_rare_hom = twice_rare_hom - 2 * direction
            twice_common_hom = twice_common_hom - 2 * direction
            prob = np.where(valid, prob, 0.0)
            going = valid & keep_going(prob, *limits)
            if tails:
                summed += prob
                summed_tail += np.where(prob <= limits[0], prob, 0.0)
            prob = np.where(going, prob, 0.0)
            if not tails:
                summed += prob
            alive = np.count_nonzero(going)
            if 2 * alive <= len(idx):
                walked[idx] += summed
                tail[idx] += summed_tail
                keep = np.flatnonzero(going)
                idx, het, twice_rare_hom, twice_common_hom, prob = (
                    x[keep] for x in (idx, het, twice_rare_hom, twice_common_hom, prob))
                limits = tuple(x[keep] for x in limits)
                summed, summed_tail = np.zeros(len(idx)), np.zeros(len(idx))
    return walked, tail


def _log_factorials(top: int) -> np.ndarray:
    """log(k!) for k = 0..top, each from math.lgamma (as exact as scipy's gammaln, without importing scipy:
    a quarter of a second of start-up)."""
    return np.array([math.lgamma(k + 1.0) for k in range(top + 1)])


def hwe_exact_pvalues(n_hom_a: np.ndarray, n_het: np.ndarray, n_hom_b: np.ndarray) -> np.ndarray:
    """Two-sided HWE exact test p-values (Wigginton, Cutler & Abecasis 2005), vectorised over variants.

    The null distribution of the heterozygote count is unimodal, so the p-value (the mass of counts
    no more likely than the observed one) is 1 minus the mass of the central counts more likely than
    it. With the exact normaliser from log-gamma functions, that central part is all that is walked
    (a few steps for a variant in equilibrium). Where that p-value is below 1e-3 (its cancellation
    error would show in 6 digits) the tails are summed instead, walked with the paper's recurrence
    until the remaining terms are below 1e-17 of both the mode and the observed probability.
    """
    n_hom_a, n_het, n_hom_b = (np.asarray(a, dtype=np.float64) for a in (n_hom_a, n_het, n_hom_b))
    n = n_hom_a + n_het + n_hom_b
    rare = np.minimum(2 * n_hom_a + n_het, 2 * n_hom_b + n_het)
    safe_n = np.maximum(n, 1)
    mode = np.floor(rare * (2 * safe_n - rare) / (2 * safe_n))
    mode += (mode % 2) != (rare % 2)
    mode = np.minimum(mode, rare)

    log_factorial = _log_factorials(int(2 * n.max(initial=0)))

    def lf(k: np.ndarray) -> np.ndarray:  # log(k!) of integer-valued k
        return log_factorial[k.astype(np.int64)]

    def log_prob(het: np.ndarray) -> np.ndarray:
        hom_rare = (rare - het) / 2
        return (het * np.log(2.0) - lf(hom_rare) - lf(het) - lf(n - het - hom_rare)
                + lf(n) + lf(rare) + lf(2 * n - rare) - lf(2 * n))

    obs = np.exp(log_prob(n_het) - log_prob(mode))  # observed probability relative to the mode's
    threshold = obs * (1 + _HWE_TIE_TOLERANCE)
    central, _ = _walk(mode, rare, n, lambda prob, limit: prob > limit, threshold)
    central += threshold < 1.0  # the mode itself
    p = np.clip(1 - central * np.exp(log_prob(mode)), 0.0, 1.0)
    rare_p = np.flatnonzero((p < 1e-3) & (n > 0))
    if rare_p.size:
        sub = (mode[rare_p], rare[rare_p], n[rare_p])
        negligible = 1e-17 * np.minimum(1.0, obs[rare_p])
        total, tail = _walk(*sub, lambda prob, limit, small: prob > small, threshold[rare_p], negligible)
        total += 1.0
        tail += (threshold[rare_p] >= 1.0)
        p[rare_p] = np.minimum(1.0, tail / total)
    return np.where(n > 0, p, 1.0)  # no hard call at all: plink2 reports p = 1


def variant_stats(counts: np.ndarray, dosage_sums: np.ndarray | None = None,
                  dosage_counts: np.ndarray | None = None) -> pd.DataFrame:
    """Missing rate, A1 frequency, MAF and HWE p from per-variant hard-call counts (0, 1, 2 copies of
    A1, missing). As plink2 does, the frequency comes from dosages when the data carry them
    (``dosage_sums`` over ``dosage_counts`` present dosages); missingness and HWE from hard calls."""
    n0, n1, n2, n_missing = counts.T
    if dosage_sums is None:
        dosage_sums, dosage_counts = 2 * n2 + n1, n0 + n1 + n2
    with np.errstate(invalid="ignore", divide="ignore"):
        a1_freq = dosage_sums / (2 * dosage_counts)
    return pd.DataFrame({
        "missing_rate": n_missing / counts.sum(axis=1).clip(min=1),
        "a1_freq": a1_freq,
        "maf": np.minimum(a1_freq, 1 - a1_freq),
        "hwe_p": hwe_exact_pvalues(n2, n1, n0),
    })


def sample_missing_rates(source: GenotypeSource, chunk_size: int) -> np.ndarray:
    """Per-sample share of missing hard calls (plink2's --mind definition)."""
    missing = np.zeros(source.n_samples, dtype=np.int64)
    for start in range(0, source.n_variants, chunk_size):
        missing += (source.read_hardcalls(slice(start, start + chunk_size)) < 0).sum(axis=0)
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
    (dosages kept) for --pfile and --bgen, so a run's later stages know its name before it exists."""

    def __init__(self, outputs, out: Path, source: GenotypeSource, kept: np.ndarray, n_variants: int):
        self.source, self.kept = source, kept
        self.subset = None if len(kept) == source.n_samples else kept
        self.pgen = genotype_output_kind(source.input.kind) == "pfile"
        if self.pgen:
            import pgenlib

            self.paths = {ext: outputs.file(out.with_name(out.name + ext)) for ext in (".pgen", ".pvar", ".psam")}
            self._writer = pgenlib.PgenWriter(bytes(self.paths[".pgen"]), len(kept), variant_ct=n_variants,
                                              dosage_present=source.has_dosages)
        else:
            self.paths = {ext: outputs.file(out.with_name(out.name + ext)) for ext in (".bed", ".bim", ".fam")}
            self._writer = BedWriter(self.paths[".bed"], len(kept))
            self._bed = None
            if self.subset is None and source.input.kind == "bfile":  # copy packed rows, no re-encoding
                self._bed = np.memmap(source.label, dtype=np.uint8, mode="r", offset=3,
                                      shape=(source.n_variants, (source.n_samples + 3) // 4))

    def write(self, variants: np.ndarray) -> None:
        if len(variants) == 0:
            return
        if self.pgen and self.source.has_dosages:
            dosages = self.source.read_dosages(variants, self.subset)
            dosages[dosages < 0] = -9
            self._writer.append_dosages_batch(np.ascontiguousarray(dosages, dtype=np.float32))
        elif self.pgen:
            calls = self.source.read_hardcalls(variants, self.subset)
            calls[calls < 0] = -9
            self._writer.append_biallelic_batch(calls)
        elif self._bed is not None:  # runs of consecutive variants are copied straight from the map
            breaks = np.flatnonzero(np.diff(variants) != 1) + 1
            for run in np.split(variants, breaks):
                self._writer.write_raw(self._bed[run[0]:run[-1] + 1])
        else:
            self._writer.write(self.source.read_hardcalls(variants, self.subset))

    def close(self, passing: np.ndarray) -> None:
        self._writer.close()
        bim, fam = self.source.bim[passing], self.source.fam.iloc[self.kept]
        if self.pgen:
            pvar = pd.DataFrame({"#CHROM": bim["chrom"], "POS": bim["pos"], "ID": bim["snp"], "REF": bim["a2"],
                                 "ALT": bim["a1"]})
            pvar.to_csv(self.paths[".pvar"], sep="\t", index=False)
            psam = pd.DataFrame({"#FID": fam["fid"], "IID": fam["iid"], "PAT": fam["father"], "MAT": fam["mother"],
                                 "SEX": fam["sex"], "PHENO1": fam["pheno"]})
            psam.to_csv(self.paths[".psam"], sep="\t", index=False)
        else:
            write_bim(self.paths[".bim"], bim)
            write_fam(self.paths[".fam"], fam)


def genotype_output_kind(input_kind: str) -> str:
    """The flag that reads qc's output: --bfile for --bfile input, else --pfile (dosages kept)."""
    return QC_WRITES[input_kind]


def run_qc(genotypes: GenotypeInput, out: str | Path, geno: float = 0.05, mind: float = 0.05, maf: float = 0.01,
           hwe: float = 1e-6, min_info: float = 0.0, chunk_size: int = 4096) -> pd.DataFrame:
    """Filter a genotype fileset; write the filtered fileset (``OUT.bed/.bim/.fam``, or ``OUT.pgen/.pvar/.psam``
    for dosage input), ``OUT.qc.tsv`` and ``OUT.qc.samples.tsv``."""
    check_qc_params(geno, mind, maf, hwe, min_info, chunk_size)
    source = genotypes.open()
    if min_info > 0 and genotypes.kind != "bgen":
        raise GinnError("--min-info", "needs genotype probabilities (--bgen); other inputs carry no INFO score")
    hash_in_background(source.files.values())  # the provenance checksums, while the counting runs
    sex_linked = int(normalize_chrom(source.bim["chrom"]).isin(NON_AUTOSOMES).sum())
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
    counts = np.zeros((source.n_variants, 4), dtype=np.int64)
    dosage_sums = np.zeros(source.n_variants) if source.has_dosages else None
    dosage_counts = np.zeros(source.n_variants, dtype=np.int64) if source.has_dosages else None
    info = np.full(source.n_variants, np.nan)
    with atomic_outputs() as outputs:
        total = -(-source.n_variants // chunk_size)
        for start in tqdm(range(0, source.n_variants, chunk_size), total=total, desc="qc", unit="chunk", disable=None):
            chunk = slice(start, min(start + chunk_size, source.n_variants))
            counts[chunk] = source.hardcall_counts(chunk, subset)
            if source.has_dosages:
                dosages = source.read_dosages(chunk, subset).astype(np.float64)
                present = dosages >= 0
                dosage_sums[chunk], dosage_counts[chunk] = np.where(present, dosages, 0).sum(axis=1), present.sum(axis=1)
            if genotypes.kind == "bgen":
                info[chunk] = source.info_scores(chunk, subset)
        stats = variant_stats(counts, dosage_sums, dosage_counts).assign(info=info)
        stats["pass"] = ((stats.missing_rate <= geno) & (stats.maf >= maf) & (stats.hwe_p >= hwe)
                         & ~((stats["info"] < min_info) & (min_info > 0))).to_numpy()
        passing = stats["pass"].to_numpy()
        if not passing.any():
            raise GinnError(source.label, "no variant passes the filters (--geno/--maf/--hwe/--min-info)")
        writer = _FilesetWriter(outputs, out, source, kept, int(passing.sum()))
        passing_index = np.flatnonzero(passing)
        for start in range(0, len(passing_index), chunk_size):
            writer.write(passing_index[start:start + chunk_size])
        columns = ["missing_rate", "a1_freq", "maf", "hwe_p"] + (["info"] if genotypes.kind == "bgen" else []) + ["pass"]
        table = pd.concat([source.bim[["snp", "chrom", "pos", "a1", "a2"]].reset_index(drop=True), stats[columns]],
                          axis=1)
        writer.close(passing)
        write_tsv(outputs.file(out.with_name(out.name + ".qc.tsv")), table, float_format="%.8g")
        samples = source.fam[["fid", "iid"]].assign(missing_rate=sample_miss, **{"pass": keep_samples})
        write_tsv(outputs.file(out.with_name(out.name + ".qc.samples.tsv")), samples, float_format="%.8g")
        summary = {"n_variants_in": source.n_variants, "n_variants_pass": int(passing.sum()),
                   "n_samples_in": source.n_samples, "n_samples_pass": int(len(kept)),
                   "fail_geno": int((stats.missing_rate > geno).sum()), "fail_maf": int((stats.maf < maf).sum()),
                   "fail_hwe": int((stats.hwe_p < hwe).sum()), "fail_info": int((stats["info"] < min_info).sum()) if min_info > 0 else 0,
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
