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
from scipy.special import gammaln, logsumexp
from tqdm import tqdm

from .files import atomic_outputs, provenance_path, provenance_record, write_json, write_tsv
from .plink import BedWriter, PlinkFileset, write_bim, write_fam

log = logging.getLogger(__name__)

# plink2 treats probabilities within this relative margin of the observed one as ties.
_HWE_TIE_TOLERANCE = 1e-7


def hwe_exact_pvalues(n_hom_a: np.ndarray, n_het: np.ndarray, n_hom_b: np.ndarray) -> np.ndarray:
    """Two-sided HWE exact test p-values (Wigginton, Cutler & Abecasis 2005), vectorised.

    Variants sharing (genotyped count, minor allele count) share one null distribution of the
    heterozygote count, so each distinct pair is computed once with log-gamma arithmetic.
    """
    n_hom_a, n_het, n_hom_b = (np.asarray(a, dtype=np.int64) for a in (n_hom_a, n_het, n_hom_b))
    n = n_hom_a + n_het + n_hom_b
    rare = np.minimum(2 * n_hom_a + n_het, 2 * n_hom_b + n_het)
    p = np.full(n.shape, np.nan)
    keys = np.stack([n, rare], axis=1)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    for g, (n_g, rare_g) in enumerate(unique):
        members = np.flatnonzero(inverse == g)
        if n_g == 0:
            continue
        hets = np.arange(rare_g % 2, rare_g + 1, 2)
        hom_rare = (rare_g - hets) // 2
        hom_common = n_g - hets - hom_rare
        valid = hom_common >= 0
        hets, hom_rare, hom_common = hets[valid], hom_rare[valid], hom_common[valid]
        log_prob = hets * np.log(2.0) - gammaln(hom_rare + 1) - gammaln(hets + 1) - gammaln(hom_common + 1)
        log_prob -= logsumexp(log_prob)
        observed = n_het[members]
        obs_log_prob = log_prob[np.searchsorted(hets, observed)]
        order = np.argsort(log_prob)
        sorted_log_prob = log_prob[order]
        cum = np.logaddexp.accumulate(sorted_log_prob)
        cutoff = np.searchsorted(sorted_log_prob, obs_log_prob + np.log1p(_HWE_TIE_TOLERANCE), side="right")
        p[members] = np.minimum(1.0, np.exp(cum[cutoff - 1]))
    return p


def variant_stats(dosages: np.ndarray) -> pd.DataFrame:
    """Per-variant genotype counts, missing rate, A1 frequency, MAF and HWE p for int8 dosages."""
    n_missing = (dosages < 0).sum(axis=1)
    n2 = (dosages == 2).sum(axis=1)
    n1 = (dosages == 1).sum(axis=1)
    n0 = (dosages == 0).sum(axis=1)
    called = n0 + n1 + n2
    with np.errstate(invalid="ignore", divide="ignore"):
        a1_freq = (2 * n2 + n1) / (2 * called)
    return pd.DataFrame({
        "missing_rate": n_missing / dosages.shape[1],
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
            chunks = fileset.iter_variant_chunks(chunk_size, samples=None if keep_samples.all() else kept)
            total = -(-fileset.n_variants // chunk_size)
            for _, chunk in tqdm(chunks, total=total, desc="qc", unit="chunk", disable=None):
                stats = variant_stats(chunk)
                stats["pass"] = ((stats.missing_rate <= geno) & (stats.maf >= maf) & (stats.hwe_p >= hwe)).to_numpy()
                writer.write(chunk[stats["pass"].to_numpy()])
                stats_parts.append(stats)
        stats = pd.concat(stats_parts, ignore_index=True) if stats_parts else variant_stats(np.zeros((0, 0), np.int8))
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
@click.option("--bfile", required=True, help="Input PLINK 1 fileset prefix (.bed/.bim/.fam).")
@click.option("--geno", default=0.05, show_default=True, type=float, help="Max variant missing rate.")
@click.option("--mind", default=0.05, show_default=True, type=float, help="Max sample missing rate (1 disables).")
@click.option("--maf", default=0.01, show_default=True, type=float, help="Min minor allele frequency.")
@click.option("--hwe", default=1e-6, show_default=True, type=float, help="Min Hardy-Weinberg exact test p-value.")
@click.option("--chunk-size", default=4096, show_default=True, type=int, help="Variants decoded per chunk.")
@click.option("--out", required=True, help="Output prefix: OUT.bed/.bim/.fam, OUT.qc.tsv, OUT.qc.samples.tsv.")
def qc_command(bfile, geno, mind, maf, hwe, chunk_size, out):
    """Filter samples (--mind) then variants (--geno, --maf, --hwe) as plink2 does."""
    run_qc(bfile, out, geno=geno, mind=mind, maf=maf, hwe=hwe, chunk_size=chunk_size)
