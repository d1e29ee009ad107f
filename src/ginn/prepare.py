"""``ginn prepare``: phenotype preparation and the compact dataset the models train on.

As in the paper's Methods: covariates (age, sex, ...) and the first genotype principal components
are regressed out of the phenotype, the residual is rank-based inverse-normal transformed, SNPs
are centred (at batch time, from the stored int8 dosages) and a seeded 70/30 train/test split is
drawn. Samples without phenotype or covariates are dropped and counted.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np
import pandas as pd
from scipy import stats

from .dataset import write_dataset
from .errors import GinnError
from .files import atomic_outputs, first_repeated, provenance_record, read_table, write_json
from .genotypes import GenotypeInput, GenotypeSource
from .prune import read_snp_map, restrict_map_to_fileset
from .contract import stage_options

log = logging.getLogger(__name__)

PLINK_MISSING = -9  # plink2's --input-missing-phenotype default, for phenotypes and covariates (NA too)


def inverse_normal_transform(values: np.ndarray) -> np.ndarray:
    """Rank-based inverse-normal transform with Blom's offset, (rank - 3/8) / (n + 1/4); ties share ranks."""
    ranks = stats.rankdata(values)
    return stats.norm.ppf((ranks - 0.375) / (len(values) + 0.25))


# Largest phenotype or covariate magnitude accepted: squares stay far below float64's 1.8e308 even
# summed over 1e8 samples.
MAX_MAGNITUDE = 1e150


def residualize(y: np.ndarray, design: np.ndarray | None) -> np.ndarray:
    """OLS residual of y on an intercept plus the design's columns."""
    x = np.ones((len(y), 1)) if design is None or design.size == 0 else np.column_stack([np.ones(len(y)), design])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    return y - x @ beta


def _id_columns(table: pd.DataFrame, path) -> pd.DataFrame:
    table = table.rename(columns={"#FID": "FID", "#IID": "IID"})
    if "IID" not in table.columns:
        raise GinnError(path, "needs a header with FID and IID columns (PLINK style)")
    if "FID" not in table.columns:
        table = table.assign(FID=table["IID"])
    if table.duplicated(["FID", "IID"]).any():
        raise GinnError(path, "lists a sample (FID IID) twice")
    return table


def read_sample_table(path: str | Path, columns: list[str], what: str) -> pd.DataFrame:
    """A PLINK-style table (FID IID + named columns) indexed by (FID, IID), columns numeric, missing NaN.

    As in plink2, ``NA`` and ``-9`` are missing values, and a non-numeric covariate column (e.g. sex
    coded M/F) is categorical: one indicator column per level, the first level (sorted) dropped.
    Refused rather than silently poisoning the regression: a non-finite number (inf); a number beyond
    +-1e150, whose square overflows the float64 sums of squares; and a column mixing numbers with
    text, almost always a typo, which plink2's rule would turn into one indicator per distinct number.
    """
    table = _id_columns(read_table(path, what=what), path)
    ids = [c for c in columns if c in ("FID", "IID")]
    if ids:
        raise GinnError(path, f"{what} column {ids[0]} is a sample ID, not a value to analyse")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise GinnError(path, f"{what} has no column {', '.join(missing)} (has {', '.join(table.columns[2:])})")
    out = table.set_index(["FID", "IID"])[columns]
    numeric = {}
    for col in columns:
        values = out[col].mask(pd.to_numeric(out[col], errors="coerce") == PLINK_MISSING)
        converted = pd.to_numeric(values, errors="coerce")
        bad = converted.isna() & values.notna()
        infinite = np.isinf(converted.to_numpy(dtype=float))
        huge = np.abs(converted.to_numpy(dtype=float)) > MAX_MAGNITUDE
        for problem, rows in (("a non-finite value", infinite), (f"a value beyond +-{MAX_MAGNITUDE:g}", huge)):
            if rows.any():
                raise GinnError(path, f"{what} column {col} has {problem} "
                                      f"({values[rows].iloc[0]!r} for sample {' '.join(values.index[rows][0])})")
        if bad.any():
            if what == "phenotype":
                raise GinnError(path, f"phenotype column {col} is not numeric (e.g. {out[col][bad].iloc[0]!r})")
            if converted.notna().any():
                raise GinnError(path, f"{what} column {col} mixes numbers with text ({out[col][bad].iloc[0]!r} for "
                                      f"sample {' '.join(values.index[bad][0])}): write a missing value as NA")
            dummies = pd.get_dummies(values, prefix=col, drop_first=True, dtype=float)
            dummies[values.isna()] = np.nan
            numeric.update({c: dummies[c] for c in dummies.columns})
        else:
            numeric[col] = converted
    return pd.DataFrame(numeric, index=out.index)


def genotype_pcs(fileset: GenotypeSource, samples: np.ndarray, n_pcs: int, seed: int,
                 chunk_size: int = 4096, n_iter: int = 8) -> np.ndarray:
    """Top principal components of the standardised genotypes, by randomized SVD streamed over variants.

    Only (n_samples x (2 n_pcs + 10)) floats are held; each of the 2 n_iter + 2 passes decodes the
    .bed chunk by chunk. The sketch is no wider than the sample count, the rank its QR can reach.
    """
    rng = np.random.default_rng(seed)
    width = min(2 * n_pcs + 10, len(samples))

    def standardized(chunk: np.ndarray) -> np.ndarray:
        called = chunk >= 0
        mean = np.where(called, chunk, 0).sum(axis=1, keepdims=True) / np.maximum(called.sum(axis=1, keepdims=True), 1)
        z = np.where(called, chunk - mean, 0.0)
        sd = np.sqrt((z ** 2).mean(axis=1, keepdims=True))
        return np.divide(z, sd, out=np.zeros_like(z), where=sd > 0)  # (variants, samples)

    def times_x(right: np.ndarray | None) -> np.ndarray:
        """X @ right, where X = Z^T is (samples, variants); right=None draws a Gaussian sketch."""
        out = np.zeros((len(samples), width))
        for start, chunk in fileset.iter_variant_chunks(chunk_size, samples):
            z = standardized(chunk)
            block = rng.standard_normal((z.shape[0], width)) if right is None else right[start:start + z.shape[0]]
            out += z.T @ block
        return out

    def xt_times(left: np.ndarray) -> np.ndarray:
        return np.concatenate([standardized(chunk) @ left for _, chunk in fileset.iter_variant_chunks(chunk_size, samples)])

    y = times_x(None)
    for _ in range(n_iter):
        q, _ = np.linalg.qr(y)
        y = times_x(xt_times(q))
    q, _ = np.linalg.qr(y)
    b = xt_times(q).T  # (width, variants)
    u_b, _, _ = np.linalg.svd(b, full_matrices=False)
    pcs = (q @ u_b)[:, :n_pcs]
    return pcs * np.sign(pcs[np.argmax(np.abs(pcs), axis=0), np.arange(n_pcs)])  # deterministic sign


def prepare_target(fileset: GenotypeSource, pheno: str | Path, pheno_name: str, covar: str | Path | None = None,
                   covar_names: list[str] | None = None, pcs: int = 10, pc_file: str | Path | None = None,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """The .fam rows kept and their prepared target (covariates and PCs regressed out, then
    inverse-normal transformed), with counts of what was dropped and the adjustment's columns.

    Shared by ``ginn prepare`` and ``ginn replicate``, so both cohorts are prepared identically.
    """
    fam_ids = pd.MultiIndex.from_frame(fileset.fam[["fid", "iid"]], names=["FID", "IID"])
    phenotype = read_sample_table(pheno, [pheno_name], "phenotype")
    overlap = fam_ids.isin(phenotype.index)
    if not overlap.any():
        raise GinnError(pheno, f"no sample of {fileset.files['samples'].name} is in the phenotype file (check FID/IID)")
    y = phenotype.reindex(fam_ids)[pheno_name].to_numpy(dtype=float)
    keep = ~np.isnan(y)
    counts = {"n_genotyped": fileset.n_samples, "n_without_phenotype": int((~overlap).sum()),
              "n_missing_phenotype": int((overlap & np.isnan(y)).sum())}
    design_parts, design_names = [], []
    if covar is not None and covar_names:
        covariates = read_sample_table(covar, covar_names, "covariate").reindex(fam_ids)
        counts["n_missing_covariates"] = int((keep & covariates.isna().any(axis=1).to_numpy()).sum())
        keep &= ~covariates.isna().any(axis=1).to_numpy()
        design_parts.append(covariates.to_numpy(dtype=float))
        design_names += list(covariates.columns)
    if pc_file is not None:
        pc_table = read_sample_table(pc_file, [f"PC{i + 1}" for i in range(pcs)], "principal component")
        pc_values = pc_table.reindex(fam_ids).to_numpy(dtype=float)
        keep &= ~np.isnan(pc_values).any(axis=1)
        design_parts.append(pc_values)
        design_names += list(pc_table.columns)
    kept = np.flatnonzero(keep)
    counts["n_samples"] = len(kept)
    if len(kept) < 10:
        raise GinnError(pheno, f"only {len(kept)} samples have genotypes, phenotype and covariates")
    if np.ptp(y[kept]) == 0:
        raise GinnError(pheno, f"phenotype {pheno_name} is constant ({y[kept][0]:g}) over the {len(kept)} samples kept")
    if pcs > 0 and pc_file is None and pcs >= min(len(kept), fileset.n_variants):
        raise GinnError("--pcs", f"{pcs} PCs need more than {pcs} samples and variants "
                                 f"(have {len(kept)} samples, {fileset.n_variants} variants)")
    design = np.column_stack([part[kept] for part in design_parts]) if design_parts else np.zeros((len(kept), 0))
    if pcs > 0 and pc_file is None:
        log.info("prepare: computing %d genotype PCs over %d variants", pcs, fileset.n_variants)
        design = np.column_stack([design, genotype_pcs(fileset, kept, pcs, seed)])
        design_names += [f"PC{i + 1}" for i in range(pcs)]
    residual = residualize(y[kept], design)
    if residual.var() <= 1e-10 * y[kept].var():
        raise GinnError("--covar-name" if covar_names else "--pcs",
                        f"{', '.join(design_names)} explain phenotype {pheno_name} entirely: no variance is left to analyse")
    if len(np.unique(y[kept])) == 2:
        log.warning("prepare: phenotype %s has two values (case/control?); it is analysed as a quantitative trait "
                    "(inverse-normal transformed, networks fitted by squared error)", pheno_name)
    target = inverse_normal_transform(residual)
    return kept, target, {"counts": counts, "adjusted_for": design_names}


def run_prepare(genotypes: GenotypeInput, map_path: str | Path, pheno: str | Path, pheno_name: str, out: str | Path,
                covar: str | Path | None = None, covar_names: list[str] | None = None, pcs: int = 10,
                pc_file: str | Path | None = None, test_fraction: float = 0.3, seed: int = 0) -> Path:
    if not 0 < test_fraction < 1:
        raise GinnError("--test-fraction", f"must be in (0, 1), got {test_fraction}")
    if pcs < 0:
        raise GinnError("--pcs", f"must be at least 0, got {pcs}")
    fileset = genotypes.open()
    mapping = restrict_map_to_fileset(read_snp_map(map_path), fileset, map_path)
    if mapping["gene"].nunique() < 2:   # every modelling stage after this one scores gene pairs
        raise GinnError(map_path, f"only gene {mapping['gene'].iloc[0]} has SNPs in {fileset.files['variants'].name}; "
                                  "interactions need at least two genes")
    kept, target, info = prepare_target(fileset, pheno, pheno_name, covar, covar_names, pcs, pc_file, seed)
    counts, design_names = info["counts"], info["adjusted_for"]
    index = pd.Series(np.arange(fileset.n_variants), index=fileset.bim["snp"])
    genes = list(dict.fromkeys(mapping["gene"]))
    ordered = pd.concat([mapping[mapping["gene"] == g] for g in genes], ignore_index=True)
    dosages = fileset.read_sample_major(index[ordered["snp"]].to_numpy(), kept)
    snps = fileset.bim.set_index("snp").loc[ordered["snp"], ["chrom", "pos", "a1", "a2"]].reset_index()
    snps["gene"] = ordered["gene"].to_numpy()
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(kept), dtype=bool)
    is_test[rng.permutation(len(kept))[: int(round(test_fraction * len(kept)))]] = True
    out = Path(out)
    params = {**genotypes.as_params(), "map": str(map_path), "pheno": str(pheno), "pheno_name": pheno_name,
              "covar": None if covar is None else str(covar), "covar_names": covar_names or [], "pcs": pcs,
              "pc_file": None if pc_file is None else str(pc_file), "test_fraction": test_fraction, "seed": seed}
    with atomic_outputs() as outputs:
        folder = outputs.folder(out)
        write_dataset(folder, dosages, target, is_test, fileset.fam.iloc[kept], snps, genes,
                      [int((ordered["gene"] == g).sum()) for g in genes],
                      meta_extra={"phenotype": pheno_name, "adjusted_for": design_names, "counts": counts,
                                  "params": params})
        write_json(folder / "provenance.json", provenance_record(
            "prepare", params, seed=seed, extra={"counts": counts},
            inputs={**fileset.files, "pheno": pheno, "map": map_path, "covar": covar, "pc_file": pc_file}))
    log.info("prepare: %d samples (%d test), %d genes, %d SNP columns; dropped %s", len(kept), int(is_test.sum()),
             len(genes), dosages.shape[1], {k: v for k, v in counts.items() if k.startswith(("n_missing", "n_without")) and v})
    return out


def covariate_names(covar: str | Path | None, covar_name: str | None) -> list[str] | None:
    """The columns of --covar-name (comma-separated), checked against --covar: a table without names, or
    names without a table (the phenotype would go unadjusted), is refused, and so is a name given twice."""
    names = [c.strip() for c in covar_name.split(",") if c.strip()] if covar_name else None
    repeated = first_repeated(names or [])
    if repeated is not None:
        raise GinnError("--covar-name", f"names covariate {repeated} twice")
    if covar is not None and not names:
        raise GinnError(covar, "--covar needs --covar-name (which columns to use)")
    if names and covar is None:
        raise GinnError("--covar-name", "names covariates, but no --covar table is given")
    return names


@click.command("prepare")
@stage_options("prepare")
def prepare_command(genotypes, map_path, pheno, pheno_name, covar, covar_name, pcs, pc_file, test_fraction, seed, out):
    """Regress covariates and PCs out of the phenotype, inverse-normal transform, split, store genotypes
    (int8 hard calls, or float16 dosages)."""
    run_prepare(genotypes, map_path, pheno, pheno_name, out, covar=covar, covar_names=covariate_names(covar, covar_name),
                pcs=pcs, pc_file=pc_file, test_fraction=test_fraction, seed=seed)
