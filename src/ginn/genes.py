"""``ginn map-genes``: assign SNPs to genes (gene body ± flank); read gene annotations.

Annotations: PLINK-style glist (``chrom start end symbol``, 1-based inclusive, no header), a TSV
with header ``chrom start end gene`` (as ``ginn simulate`` writes), BED (0-based half-open, name
in column 4) or GTF (``gene`` features, ``gene_name`` attribute). A SNP inside two genes' windows
belongs to both; a symbol listed at several loci takes the union of their SNPs.
"""

from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path

import click
import numpy as np
import pandas as pd

from .errors import GinnError
from .files import atomic_outputs, first_repeated, provenance_path, provenance_record, write_json, write_tsv
from .genotypes import GenotypeInput
from .plink import chromosome_name
from .contract import stage_options

log = logging.getLogger(__name__)

_PACKAGED = Path(__file__).parent / "data"


def packaged_data(name: str) -> Path:
    """Path of a data file shipped with the package (glist-hg19.txt, lipid_genes.txt)."""
    return _PACKAGED / name


def normalize_chrom(values: pd.Series) -> pd.Series:
    """Each value's :func:`~ginn.plink.chromosome_name` ('chr1' -> '1', '23' -> 'X'), NA if none.

    Each distinct name is normalised once (a .bim of 100,000 variants names a few chromosomes)."""
    text = values.astype(str)
    codes, distinct = pd.factorize(text, use_na_sentinel=False)
    names = pd.Series([chromosome_name(name) if isinstance(name, str) else None for name in distinct], dtype=text.dtype)
    return names.iloc[codes].set_axis(values.index).rename(values.name)


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.suffix == ".gz" else open(path)


def _detect_format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".gtf", ".gff")):
        return "gtf"
    if name.endswith(".bed"):
        return "bed"
    return "glist"


def read_genes(path: str | Path, fmt: str = "auto") -> pd.DataFrame:
    """Gene annotation as columns chrom start end gene (1-based inclusive), chromosomes normalised."""
    path = Path(path)
    if not path.is_file():
        raise GinnError(path, "gene annotation file not found")
    fmt = _detect_format(path) if fmt == "auto" else fmt
    with _open_text(path) as fh:
        lines = [line for line in fh if line.strip() and not line.startswith(("#", "track", "browser"))]
    if not lines:
        raise GinnError(path, "gene annotation is empty")
    if fmt == "gtf":
        rows = []
        for line in lines:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 9:
                raise GinnError(path, "GTF line without 9 tab-separated fields")
            if fields[2] != "gene":
                continue
            name = re.search(r'gene_name "([^"]+)"', fields[8]) or re.search(r'gene_id "([^"]+)"', fields[8])
            rows.append((fields[0], fields[3], fields[4], name.group(1) if name else None))
        table = pd.DataFrame(rows, columns=["chrom", "start", "end", "gene"])
    else:
        split = [line.split() for line in lines]
        if any(len(fields) < 4 for fields in split):
            raise GinnError(path, f"{fmt} annotation needs 4 columns (chrom start end name)")
        # a glist has exactly these four: a fifth field is most likely the rest of a gene name with a space
        wide = next((fields for fields in split if len(fields) > 4), None) if fmt == "glist" else None
        if wide is not None:
            raise GinnError(path, f"glist line {' '.join(wide)!r} has {len(wide)} fields, not 4 (chrom start end "
                                  "name; a gene name has no spaces)")
        if split[0][0].lower().lstrip("#") in {"chrom", "chr", "chromosome"}:  # header: chrom start end gene
            split = split[1:]
        if not split:
            raise GinnError(path, "gene annotation is empty")
        table = pd.DataFrame([f[:4] for f in split], columns=["chrom", "start", "end", "gene"])
    try:
        table["start"] = table["start"].astype(np.int64)
        table["end"] = table["end"].astype(np.int64)
    except ValueError:
        raise GinnError(path, "gene start/end columns are not integers") from None
    if fmt == "bed":
        table["start"] += 1
    table["chrom"] = normalize_chrom(table["chrom"])
    unknown = table["chrom"].isna()
    if unknown.all():
        raise GinnError(path, "no gene is on a known chromosome (1-22, X, Y, XY, MT, with or without 'chr')")
    if unknown.any():
        log.warning("map-genes: %d annotation rows on other contigs ignored", int(unknown.sum()))
    table = table[~unknown & table["gene"].notna()]
    if (table["end"] < table["start"]).any():
        raise GinnError(path, "a gene ends before it starts")
    return table.reset_index(drop=True)


def read_gene_names(path: str | Path, ordered: bool = False) -> list[str]:
    """One gene symbol a line (a candidate panel such as lipid_genes.txt). A repeated name is dropped,
    or with ``ordered`` (the position is the gene's role, as in the simulator's model order) refused."""
    path = Path(path)
    if not path.is_file():
        raise GinnError(path, "gene name list not found")
    names = [line.split()[0] for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip() and not line.startswith("#")]
    if not names:
        raise GinnError(path, "gene name list is empty")
    repeated = first_repeated(names) if ordered else None
    if repeated is not None:
        raise GinnError(path, f"lists gene {repeated} twice; the order of the list is the model's gene order")
    return list(dict.fromkeys(names))


def map_snps_to_genes(bim: pd.DataFrame, genes: pd.DataFrame, flank: int) -> pd.DataFrame:
    """Pairs (snp, gene) for every SNP within [start - flank, end + flank]; genes keep annotation order."""
    pairs = []
    for chrom, chrom_genes in genes.groupby("chrom", sort=False):
        snps = bim[bim["chrom"] == chrom]
        if snps.empty:
            continue
        order = np.argsort(snps["pos"].to_numpy(), kind="stable")
        pos = snps["pos"].to_numpy()[order]
        left = np.searchsorted(pos, chrom_genes["start"].to_numpy() - flank, side="left")
        right = np.searchsorted(pos, chrom_genes["end"].to_numpy() + flank, side="right")
        counts = right - left
        gene_rows = np.repeat(chrom_genes.index.to_numpy(), counts)
        snp_positions = np.concatenate([np.arange(a, b) for a, b in zip(left, right)]) if counts.sum() else []
        pairs.append(pd.DataFrame({"gene_row": gene_rows, "bim_row": snps.index.to_numpy()[order][snp_positions]}))
    if not pairs:
        return pd.DataFrame({"snp": [], "gene": []})
    pairs = pd.concat(pairs).drop_duplicates()
    pairs["gene"] = genes.loc[pairs["gene_row"], "gene"].to_numpy()
    pairs["snp"] = bim.loc[pairs["bim_row"], "snp"].to_numpy()
    gene_order = {g: i for i, g in enumerate(dict.fromkeys(genes["gene"]))}
    pairs["gene_order"] = pairs["gene"].map(gene_order)
    pairs = pairs.drop_duplicates(["gene", "snp"]).sort_values(["gene_order", "bim_row"])
    return pairs[["snp", "gene"]].reset_index(drop=True)


def run_map_genes(genotypes: GenotypeInput, genes_file: str | Path, out: str | Path, flank: int = 10_000,
                  keep_genes: str | Path | None = None, genes_format: str = "auto") -> pd.DataFrame:
    if flank < 0:
        raise GinnError("--flank", f"must be at least 0, got {flank}")
    source = genotypes.open()
    bim_path, bim = source.files["variants"], source.bim.copy()
    bim["chrom"] = normalize_chrom(bim["chrom"].where(bim["chrom"] != "0"))
    if bim["chrom"].isna().all():
        raise GinnError(bim_path, "no variant is on a known chromosome (1-22, X, Y, XY, MT)")
    genes = read_genes(genes_file, genes_format)
    if keep_genes is not None:
        wanted = read_gene_names(keep_genes)
        missing = [g for g in wanted if g not in set(genes["gene"])]
        if missing:
            raise GinnError(keep_genes, f"{len(missing)} gene(s) not in {Path(genes_file).name}: {', '.join(missing[:5])}")
        genes = genes[genes["gene"].isin(wanted)]
        genes = genes.assign(_rank=genes["gene"].map({g: i for i, g in enumerate(wanted)}))
        genes = genes.sort_values("_rank", kind="stable").drop(columns="_rank")
    mapping = map_snps_to_genes(bim, genes, flank)
    counts = mapping.groupby("gene").size()
    report = genes.groupby("gene", sort=False).agg(chrom=("chrom", "first"), start=("start", "min"),
                                                   end=("end", "max"), n_loci=("chrom", "size")).reset_index()
    report["n_snps"] = report["gene"].map(counts).fillna(0).astype(int)
    if mapping.empty:
        raise GinnError(genes_file, f"no SNP of {bim_path.name} lies within {flank} bp of any gene")
    empty = report.loc[report["n_snps"] == 0, "gene"].tolist()
    if empty:
        log.warning("map-genes: %d gene(s) have no SNP: %s%s", len(empty), ", ".join(empty[:10]),
                    " ..." if len(empty) > 10 else "")
    out = Path(out)
    with atomic_outputs() as outputs:
        write_tsv(outputs.file(out), mapping)
        write_tsv(outputs.file(out.with_name(out.name.removesuffix(".tsv") + ".genes.tsv")),
                  report[["gene", "chrom", "start", "end", "n_loci", "n_snps"]])
        write_json(outputs.file(provenance_path(out)), provenance_record(
            "map-genes", {**genotypes.as_params(), "genes": str(genes_file), "flank": flank,
                          "keep_genes": None if keep_genes is None else str(keep_genes), "out": str(out)},
            inputs={**source.files, "genes": genes_file},
            extra={"summary": {"n_genes": int((report.n_snps > 0).sum()), "n_genes_without_snps": len(empty),
                               "n_pairs": len(mapping), "n_snps_mapped": int(mapping.snp.nunique())}}))
    log.info("map-genes: %d SNP-gene pairs over %d genes", len(mapping), int((report.n_snps > 0).sum()))
    return mapping


@click.command("map-genes")
@stage_options("map-genes")
def map_genes_command(genotypes, genes_file, genes_format, keep_genes, flank, out):
    """Map SNPs to genes (gene body +/- flank); a SNP in two genes belongs to both."""
    genes_file = genes_file or packaged_data("glist-hg19.txt")
    run_map_genes(genotypes, genes_file, out, flank=flank, keep_genes=keep_genes, genes_format=genes_format)
