"""``ginn qc``: variant and sample quality control with PLINK 2's definitions, streamed over the .bed.

Order of operations follows plink2: the sample missingness filter (``--mind``) is applied first,
then per-variant missing rate (``--geno``), minor allele frequency (``--maf``) and the
Hardy-Weinberg exact test (``--hwe``, Wigginton et al. 2005, two-sided as plink2 computes it) on
the kept samples. Every chromosome is tested as autosomal.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np
import pandas as pd
from scipy.special import gammaln
from tqdm import tqdm

from .files import atomic_outputs, provenance_path, provenance_record, write_json, write_tsv
from .plink import BedWriter, PlinkFileset, code_counts, decode_bed_rows, encode_bed_rows, write_bim, write_fam
from .contract import stage_options

log = logging.getLogger(__name__)

# plink2 treats probabilities within this relative margin of the observed one as ties.
_HWE_TIE_TOLERANCE = 1e-7


def hwe_exact_pvalues(n_hom_a: np.ndarray, n_het: np.ndarray, n_hom_b: np.ndarray) -> np.ndarray:
    """Two-sided HWE exact test p-values (Wigginton, Cutler & Abecasis 2005), vectorised over variants.

    The null distribution of the heterozygote count is walked outwards from its mode with the
    paper's recurrence, all variants at once, until the remaining terms cannot change the p-value
    in double precision (below 1e-17 of both the mode and the observed probability).
    """
    n_hom_a, n_het, n_hom_b = (np.asarray(a, dtype=np.float64) for a in (n_hom_a, n_het, n_hom_b))
    n = n_hom_a + n_het + n_hom_b
    rare = np.minimum(2 * n_hom_a + n_het, 2 * n_hom_b + n_het)
    safe_n = np.maximum(n, 1)
    mode = np.floor(rare * (2 * safe_n - rare) / (2 * safe_n))
    mode += (mode % 2) != (rare % 2)
    mode = np.minimum(mode, rare)

    def log_prob(het: np.ndarray) -> np.ndarray:
        hom_rare = (rare - het) / 2
        return het * np.log(2.0) - gammaln(hom_rare + 1) - gammaln(het + 1) - gammaln(n - het - hom_rare + 1)

    obs = np.exp(log_prob(n_het) - log_prob(mode))  # observed probability relative to the mode's
    threshold = obs * (1 + _HWE_TIE_TOLERANCE)
    negligible = 1e-17 * np.minimum(1.0, obs)
    total = np.ones_like(n)
    tail = (threshold >= 1.0).astype(np.float64)
    for direction in (+1, -1):
        het, prob = mode.copy(), np.ones_like(n)
        active = n > 0
        while active.any():
            hom_rare = (rare - het) / 2
            hom_common = n - het - hom_rare
            if direction > 0:
                active &= (hom_rare >= 1) & (hom_common >= 1)
                prob = np.where(active, prob * 4 * hom_rare * hom_common / ((het + 1) * (het + 2)), 0.0)
            else:
                active &= het >= 2
                prob = np.where(active, prob * het * (het - 1) / (4 * (hom_rare + 1) * (hom_common + 1)), 0.0)
            het += 2 * direction
            total += prob
            tail += np.where(prob <= threshold, prob, 0.0)
            active &= prob > negligible
    p = np.minimum(1.0, tail / total)
    return np.where(n > 0, p, np.nan)


def variant_stats(counts: np.ndarray) -> pd.DataFrame:
    """Missing rate, A1 frequency, MAF and HWE p from per-variant code counts (see ``code_counts``)."""
    n2, n_missing, n1, n0 = counts.T
    called = n0 + n1 + n2
    with np.errstate(invalid="ignore", divide="ignore"):
        a1_freq = (2 * n2 + n1) / (2 * called)
    return pd.DataFrame({
        "missing_rate": n_missing / counts.sum(axis=1).clip(min=1),
        "a1_freq": a1_freq,
        "maf": np.minimum(a1_freq, 1 - a1_freq),
        "hwe_p": hwe_exact_pvalues(n2, n1, n0),
    })


def sample_missing_rates(fileset: PlinkFileset, chunk_size: int) -> np.ndarray:
    missing = np.zeros(fileset.n_samples, dtype=np.int64)
    for _, chunk in fileset.iter_variant_chunks(chunk_size):
        missing += (chunk < 0).sum(axis=0)
    return missing / max(fileset.n_variants, 1)


def run_qc(bfile: str | Path, out: str | Path, geno: float = 0.05, mind: float = 0.05, maf: float = 0.01,
           hwe: float = 1e-6, chunk_size: int = 4096) -> pd.DataFrame:
    """Filter a PLINK fileset; write ``OUT.bed/.bim/.fam``, ``OUT.qc.tsv``, ``OUT.qc.samples.tsv``."""
    fileset = PlinkFileset.open(bfile)
    out = Path(out)
    sample_miss = sample_missing_rates(fileset, chunk_size) if mind < 1 else np.zeros(fileset.n_samples)
    keep_samples = sample_miss <= mind
    kept = np.flatnonzero(keep_samples)
    log.info("qc: %d of %d samples pass --mind %g", len(kept), fileset.n_samples, mind)
    stats_parts = []
    with atomic_outputs() as outputs:
        with BedWriter(outputs.file(out.with_name(out.name + ".bed")), len(kept)) as writer:
            total = -(-fileset.n_variants // chunk_size)
            for start in tqdm(range(0, fileset.n_variants, chunk_size), total=total, desc="qc", unit="chunk",
                              disable=None):
                raw = fileset.read_raw(slice(start, start + chunk_size))
                if not keep_samples.all():
                    raw = encode_bed_rows(decode_bed_rows(raw, fileset.n_samples)[:, kept])
                stats = variant_stats(code_counts(raw, len(kept)))
                stats["pass"] = ((stats.missing_rate <= geno) & (stats.maf >= maf) & (stats.hwe_p >= hwe)).to_numpy()
                writer.write_raw(raw[stats["pass"].to_numpy()])
                stats_parts.append(stats)
        stats = pd.concat(stats_parts, ignore_index=True) if stats_parts else variant_stats(np.zeros((0, 4), int))
        table = pd.concat([fileset.bim[["snp", "chrom", "pos", "a1", "a2"]].reset_index(drop=True),
                           stats[["missing_rate", "maf", "hwe_p", "pass"]]], axis=1)
        write_bim(outputs.file(out.with_name(out.name + ".bim")), fileset.bim[table["pass"].to_numpy()])
        write_fam(outputs.file(out.with_name(out.name + ".fam")), fileset.fam.iloc[kept])
        write_tsv(outputs.file(out.with_name(out.name + ".qc.tsv")), table, float_format="%.8g")
        samples = fileset.fam[["fid", "iid"]].assign(missing_rate=sample_miss, **{"pass": keep_samples})
        write_tsv(outputs.file(out.with_name(out.name + ".qc.samples.tsv")), samples, float_format="%.8g")
        summary = {"n_variants_in": fileset.n_variants, "n_variants_pass": int(table["pass"].sum()),
                   "n_samples_in": fileset.n_samples, "n_samples_pass": int(len(kept)),
                   "fail_geno": int((stats.missing_rate > geno).sum()), "fail_maf": int((stats.maf < maf).sum()),
                   "fail_hwe": int((stats.hwe_p < hwe).sum())}
        write_json(outputs.file(provenance_path(out)), provenance_record(
            "qc", {"bfile": str(bfile), "out": str(out), "geno": geno, "mind": mind, "maf": maf, "hwe": hwe},
            inputs={"bim": fileset.prefix.with_name(fileset.prefix.name + ".bim"),
                    "fam": fileset.prefix.with_name(fileset.prefix.name + ".fam")},
            extra={"summary": summary}))
    log.info("qc: %d of %d variants pass", summary["n_variants_pass"], summary["n_variants_in"])
    return table


@click.command("qc")
@stage_options("qc")
def qc_command(bfile, geno, mind, maf, hwe, chunk_size, out):
    """Filter samples (--mind) then variants (--geno, --maf, --hwe) as plink2 does."""
    run_qc(bfile, out, geno=geno, mind=mind, maf=maf, hwe=hwe, chunk_size=chunk_size)
