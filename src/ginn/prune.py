"""``ginn prune``: per gene, keep the fewest SNPs that explain a share of the gene's genotype variance.

What "prune SNPs to keep 90% of total variance according to the LD score" means here, exactly:
SNPs are standardised (mean-imputed), so a gene's total variance is its number of polymorphic SNPs
and the LD score of SNP j is ℓ_j = Σ_k r²_jk, the variance of all the gene's SNPs explained by j
alone. SNPs are chosen greedily by LD score: first the SNP with the largest ℓ_j; then, with the
chosen SNPs regressed out of every SNP, the SNP with the largest LD score *of the residuals* (the
variance it adds), and so on, until the chosen SNPs' linear span explains ≥ ``keep_variance`` of the
total. This is a pivoted partial Cholesky factorisation of the LD matrix, whose pivot rule is the
residual LD score; the explained share is exact, not approximated by summing marginal LD scores.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np
import pandas as pd
from tqdm import tqdm

from .errors import GinnError
from .files import atomic_outputs, provenance_path, provenance_record, read_table, write_json, write_tsv
from .genotypes import GenotypeInput, GenotypeSource
from .contract import stage_options

log = logging.getLogger(__name__)

_COLLINEAR = 1e-8  # residual variance below this (relative to 1) means the SNP adds nothing


def ld_matrix(dosages_sample_major: np.ndarray) -> np.ndarray:
    """Correlation matrix of SNPs (mean-imputed); monomorphic SNPs get a zero row and column."""
    g = dosages_sample_major.astype(np.float64)
    called = dosages_sample_major >= 0
    mean = np.where(called, g, 0).sum(axis=0) / np.maximum(called.sum(axis=0), 1)
    z = np.where(called, g - mean, 0.0)
    sd = np.sqrt((z ** 2).mean(axis=0))
    z = np.divide(z, sd, out=np.zeros_like(z), where=sd > 0)
    return z.T @ z / z.shape[0]


def select_by_ld_score(ld: np.ndarray, keep_variance: float) -> tuple[np.ndarray, float]:
    """Indices chosen by greedy residual-LD-score pivoting, and the share of variance they explain."""
    total = float(np.trace(ld))
    if total <= 0:
        return np.zeros(0, dtype=np.int64), 0.0
    residual = ld.copy()
    chosen: list[int] = []
    explained = 0.0
    while explained < keep_variance * total * (1 - 1e-12):
        diag = np.diag(residual)
        usable = diag > _COLLINEAR
        if not usable.any():
            break
        gain = np.where(usable, (residual ** 2).sum(axis=0) / np.where(usable, diag, 1.0), -np.inf)
        j = int(np.argmax(gain))
        chosen.append(j)
        explained += gain[j]
        residual -= np.outer(residual[:, j], residual[j, :]) / residual[j, j]
    return np.sort(np.array(chosen, dtype=np.int64)), explained / total


def read_snp_map(path: str | Path) -> pd.DataFrame:
    table = read_table(path, required=["snp", "gene"], what="SNP-gene map")
    if table.empty:
        raise GinnError(path, "SNP-gene map is empty")
    for column in ("snp", "gene"):
        blank = table[column].isna() | (table[column].astype(str).str.strip() == "")
        if blank.any():
            row = int(np.flatnonzero(blank.to_numpy())[0])
            raise GinnError(path, f"SNP-gene map row {row + 1} (after the header) has no {column}")
    if table.duplicated(["snp", "gene"]).any():
        raise GinnError(path, "SNP-gene map lists a (snp, gene) pair twice")
    return table[["snp", "gene"]]


def restrict_map_to_fileset(mapping: pd.DataFrame, fileset: GenotypeSource, map_path: str | Path) -> pd.DataFrame:
    """Drop mapped SNPs absent from the fileset (removed by QC); warn about and drop emptied genes."""
    present = mapping["snp"].isin(set(fileset.bim["snp"]))
    if not present.any():
        raise GinnError(map_path, f"no mapped SNP is present in {fileset.files['variants'].name}")
    genes_before = list(dict.fromkeys(mapping["gene"]))
    mapping = mapping[present]
    emptied = [g for g in genes_before if g not in set(mapping["gene"])]
    if (~present).any():
        log.warning("%s: %d mapped SNP(s) are not in %s (removed by QC?)", map_path, int((~present).sum()),
                    fileset.files["variants"].name)
    if emptied:
        log.warning("%s: every SNP of %d gene(s) is missing from the genotypes; dropped: %s", map_path,
                    len(emptied), ", ".join(emptied[:10]))
    return mapping.reset_index(drop=True)


def run_prune(genotypes: GenotypeInput, map_path: str | Path, out: str | Path, keep_variance: float = 1.0) -> pd.DataFrame:
    if not 0 < keep_variance <= 1:
        raise GinnError("--keep-variance", f"must be in (0, 1], got {keep_variance}")
    fileset = genotypes.open()
    mapping = restrict_map_to_fileset(read_snp_map(map_path), fileset, map_path)
    index = pd.Series(np.arange(fileset.n_variants), index=fileset.bim["snp"])
    kept_parts, summary = [], []
    for gene, rows in tqdm(mapping.groupby("gene", sort=False), desc="prune", unit="gene", disable=None):
        dosages = fileset.read_sample_major(index[rows["snp"]].to_numpy())
        chosen, share = select_by_ld_score(ld_matrix(dosages), keep_variance)
        if len(chosen) == 0:
            log.warning("prune: gene %s has no polymorphic SNP; dropped", gene)
        kept_parts.append(rows.iloc[chosen])
        summary.append({"gene": gene, "n_snps": len(rows), "n_kept": len(chosen), "variance_explained": share})
    kept = pd.concat(kept_parts, ignore_index=True)
    if kept.empty:
        raise GinnError(map_path, "no gene has a polymorphic SNP left after pruning")
    out = Path(out)
    with atomic_outputs() as outputs:
        write_tsv(outputs.file(out), kept)
        write_tsv(outputs.file(out.with_name(out.name.removesuffix(".tsv") + ".genes.tsv")), pd.DataFrame(summary))
        write_json(outputs.file(provenance_path(out)), provenance_record(
            "prune", {**genotypes.as_params(), "map": str(map_path), "keep_variance": keep_variance, "out": str(out)},
            inputs={**fileset.files, "map": map_path}, extra={"summary": {"n_snps_in": len(mapping), "n_snps_kept": len(kept)}}))
    log.info("prune: kept %d of %d SNPs", len(kept), len(mapping))
    return kept


@click.command("prune")
@stage_options("prune")
def prune_command(genotypes, map_path, keep_variance, out):
    """Per gene, keep the fewest SNPs (chosen by residual LD score) explaining --keep-variance of its variance."""
    run_prune(genotypes, map_path, out, keep_variance)
