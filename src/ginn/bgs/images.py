"""``ginn bgs prepare``: T1 images + PLINK genotypes -> the prepared imaging folder every later stage reads.

Images are assumed registered to MNI space (as UK Biobank's ``T1_brain_to_MNI``); each is resampled onto
the template grid at ``--voxel-size`` and z-scored within the template brain mask (zero outside), so
intensity scale differences between scanners do not leak into the genotype prediction.

Layout of ``PREP/``::

    images.npy      float16 (n_subjects, X, Y, Z) z-scored volumes, memory-mapped
    samples.tsv     FID IID image sex split (train / val / test: multilabel-stratified on genotypes)
    genotypes.tsv   FID IID + one column per SNP: A1 dosage 0/1/2, NA missing
    snps.tsv        snp chrom pos a1 a2 missing_rate maf hwe_p (on the matched subjects)
    idp.tsv         FID IID + one column per atlas region: mean z-scored intensity (regional IDP)
    template.nii.gz, mask.nii.gz, atlas.nii.gz, regions.tsv   the grid's template, brain mask and atlas
    meta.json, provenance.json
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import click
import nibabel as nib
import numpy as np
import pandas as pd
from tqdm import tqdm

from ..errors import GinnError
from ..files import atomic_outputs, provenance_record, read_table, write_json, write_tsv
from ..genotypes import GenotypeSource, genotype_input
from ..qc import variant_stats
from .templates import Grid, Template, load_template, resample_to_grid
from ..contract import stage_options

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_SEX_CODES = {"1": "male", "2": "female", "m": "male", "f": "female", "male": "male", "female": "female"}


def read_subjects(path: str | Path, image_dir: str | Path | None = None) -> pd.DataFrame:
    """Subject table (FID IID image [sex]) with image paths resolved.

    Relative image paths are taken relative to the table's folder; with ``image_dir`` every image is
    looked up by file name in that folder (how a workflow engine stages files).
    """
    path = Path(path)
    table = read_table(path, required=["IID", "image"], what="subject")
    if "FID" not in table.columns:
        table["FID"] = table["IID"]
    if table.duplicated(["FID", "IID"]).any():
        first = table[table.duplicated(["FID", "IID"])].iloc[0]
        raise GinnError(path, f"lists subject {first.FID} {first.IID} twice")
    if table["image"].isna().any():
        raise GinnError(path, f"subject {table.loc[table['image'].isna(), 'IID'].iloc[0]} has no image path")
    if image_dir:
        table["image"] = [str(Path(image_dir) / Path(p).name) for p in table["image"]]
    else:  # relative to the table's folder; an absolute path stays as it is
        table["image"] = [str(path.parent / p) for p in table["image"]]
    sex = table["sex"] if "sex" in table.columns else pd.Series(pd.NA, index=table.index)
    table["sex"] = [_SEX_CODES.get(str(s).strip().lower(), pd.NA) for s in sex]
    return table[["FID", "IID", "image", "sex"]].reset_index(drop=True)


def load_volume(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A 3D NIfTI volume (float32) and its affine; a 4D file must hold a single volume."""
    path = Path(path)
    if not path.is_file():
        raise GinnError(path, "image file not found")
    try:
        img = nib.load(path)
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise GinnError(path, f"cannot read NIfTI image: {str(exc).splitlines()[0]}") from None
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise GinnError(path, f"image has shape {data.shape}; expected a 3D volume")
    if not np.isfinite(data).all():
        raise GinnError(path, "image contains NaN or infinite values")
    return data, img.affine


def zscore_in_mask(volume: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Z-score inside the brain mask and zero outside it."""
    inside = volume[mask]
    sd = inside.std()
    if sd == 0:
        raise ValueError("constant image inside the brain mask")
    return np.where(mask, (volume - inside.mean()) / sd, 0.0).astype(np.float32)


def prepare_volume(path: str | Path, template: Template, expected_shape: tuple[int, ...] | None
                   ) -> tuple[np.ndarray, tuple[int, ...]]:
    """Load, check, resample onto the template grid and z-score one subject's image (+ its source shape)."""
    data, affine = load_volume(path)
    if expected_shape is not None and data.shape != expected_shape:
        raise GinnError(path, f"image shape {data.shape} differs from the cohort's {expected_shape}; "
                              "images must be registered to one template grid")
    resampled = resample_to_grid(data, affine, template.grid)
    try:
        return zscore_in_mask(resampled, template.mask), data.shape
    except ValueError:
        raise GinnError(path, "image is constant inside the brain mask (not registered to MNI space?)") from None


def regional_means(volume: np.ndarray, atlas: np.ndarray, n_regions: int) -> np.ndarray:
    """Mean of ``volume`` in each atlas region 1..n_regions (NaN for a region without voxels)."""
    labels = atlas.ravel()
    sums = np.bincount(labels, weights=volume.ravel(), minlength=n_regions + 1)
    counts = np.bincount(labels, minlength=n_regions + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts)[1:n_regions + 1]


def stratified_split(genotypes: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """Multilabel-stratified train/val/test labels: every SNP's genotype classes keep their proportions.

    The labels are the one-hot genotype classes of all SNPs (a missing call sets none), split by
    iterative stratification (Sechidis et al. 2011) first into train+val vs test, then train vs val.
    """
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    n = genotypes.shape[0]
    onehot = np.concatenate([(genotypes == c) for c in range(3)], axis=1).astype(int)
    split = np.full(n, "train", dtype=object)
    first = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
    rest, test = next(first.split(np.zeros(n), onehot))
    split[test] = "test"
    second = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=val_fraction / (1 - test_fraction),
                                              random_state=seed + 1)
    _, val = next(second.split(np.zeros(len(rest)), onehot[rest]))
    split[rest[val]] = "val"
    return split


def match_genotypes(subjects: pd.DataFrame, subjects_path: Path, fileset: GenotypeSource,
                    snps: list[str] | None) -> tuple[np.ndarray, pd.DataFrame]:
    """Genotypes (N, S) of the subjects, in table order, for the chosen SNPs; every subject must be genotyped."""
    fam_index = pd.MultiIndex.from_frame(fileset.fam[["fid", "iid"]])
    rows = fam_index.get_indexer(pd.MultiIndex.from_frame(subjects[["FID", "IID"]]))
    if (rows < 0).any():
        absent = subjects[rows < 0].iloc[0]
        raise GinnError(subjects_path, f"{(rows < 0).sum()} subject(s) are not in the genotypes "
                                       f"{fileset.files['samples']} (first {absent.FID} {absent.IID})")
    names = list(fileset.bim["snp"]) if snps is None else snps
    snp_index = pd.Index(fileset.bim["snp"]).get_indexer(names)
    if (snp_index < 0).any():
        raise GinnError(fileset.files["variants"], f"SNP {names[int(np.flatnonzero(snp_index < 0)[0])]} not found")
    genotypes = fileset.read_sample_major(snp_index, rows)
    # per-SNP counts in PLINK code order (hom A1, missing, het, hom A2), as qc.variant_stats takes them
    stats = variant_stats(np.stack([(genotypes == g).sum(axis=0) for g in (2, -1, 1, 0)], axis=1))
    info = fileset.bim.iloc[snp_index][["snp", "chrom", "pos", "a1", "a2"]].reset_index(drop=True)
    return genotypes, pd.concat([info, stats[["missing_rate", "maf", "hwe_p"]]], axis=1)


def _save_nifti(path: Path, data: np.ndarray, grid: Grid) -> None:
    nib.save(nib.Nifti1Image(data, grid.affine), path)


def run_prepare(subjects_path: str | Path, bfile: str | Path, out: str | Path, *, snps: list[str] | None = None,
                voxel_size: float = 4.0, val_fraction: float = 0.1, test_fraction: float = 0.1,
                image_dir: str | Path | None = None, seed: int = 1) -> Path:
    """Write the prepared imaging folder (see the module docstring)."""
    subjects_path = Path(subjects_path)
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise GinnError(None, "--val-fraction and --test-fraction must be in (0, 1) and sum below 1")
    subjects = read_subjects(subjects_path, image_dir)
    fileset = genotype_input(bfile=bfile).open()
    genotypes, snp_table = match_genotypes(subjects, subjects_path, fileset, snps)
    if subjects["sex"].isna().all():
        fam = fileset.fam.set_index(["fid", "iid"])["sex"]
        subjects["sex"] = [_SEX_CODES.get(fam.loc[(f, i)], pd.NA) for f, i in zip(subjects.FID, subjects.IID)]
    template = load_template(voxel_size)
    n_regions = int(template.regions["region_id"].max())
    out = Path(out)
    with atomic_outputs() as outputs:
        folder = outputs.folder(out)
        images = np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.float16,
                                           shape=(len(subjects),) + template.grid.shape)
        idp = np.empty((len(subjects), n_regions))
        expected_shape = None
        for i, path in enumerate(tqdm(subjects["image"], desc="prepare", unit="image", disable=None)):
            volume, expected_shape = prepare_volume(path, template, expected_shape)
            images[i] = volume
            idp[i] = regional_means(volume, template.atlas, n_regions)
        images.flush()
        del images
        split = stratified_split(genotypes, val_fraction, test_fraction, seed)
        ids = subjects[["FID", "IID"]]
        write_tsv(folder / "samples.tsv", subjects.assign(split=split))
        write_tsv(folder / "genotypes.tsv", pd.concat(
            [ids, pd.DataFrame(np.where(genotypes < 0, np.nan, genotypes), columns=snp_table["snp"])], axis=1))
        write_tsv(folder / "snps.tsv", snp_table, float_format="%.6g")
        present = template.regions[template.regions.region_id.isin(np.unique(template.atlas))]
        write_tsv(folder / "idp.tsv", pd.concat(
            [ids, pd.DataFrame(idp[:, present.region_id - 1], columns=present["region"])], axis=1))
        write_tsv(folder / "regions.tsv", present)
        _save_nifti(folder / "template.nii.gz", template.t1, template.grid)
        _save_nifti(folder / "mask.nii.gz", template.mask.astype(np.uint8), template.grid)
        _save_nifti(folder / "atlas.nii.gz", template.atlas, template.grid)
        meta = {"voxel_size": voxel_size, "shape": list(template.grid.shape), "affine": template.grid.affine,
                "n_subjects": len(subjects), "snps": list(snp_table["snp"]),
                "split_counts": {s: int((split == s).sum()) for s in SPLITS}, "source_image_shape": expected_shape}
        write_json(folder / "meta.json", meta)
        params = dict(subjects=str(subjects_path), bfile=str(bfile), snps=snps, voxel_size=voxel_size,
                      val_fraction=val_fraction, test_fraction=test_fraction, image_dir=image_dir, out=str(out))
        write_json(folder / "provenance.json", provenance_record(
            "bgs prepare", params, inputs={"subjects": subjects_path, **fileset.files},
                                           seed=seed))
    log.info("bgs prepare: %d subjects, %d SNPs on a %s grid at %g mm", len(subjects), len(snp_table),
             "x".join(map(str, template.grid.shape)), voxel_size)
    return out


@dataclass
class BgsData:
    """The prepared imaging folder, opened read-only."""

    path: Path
    images: np.ndarray            # float16 (N, X, Y, Z) memmap
    samples: pd.DataFrame         # FID IID image sex split
    genotypes: np.ndarray         # int8 (N, S), -1 missing
    snps: list[str]
    grid: Grid
    mask: np.ndarray
    atlas: np.ndarray
    regions: pd.DataFrame

    @classmethod
    def load(cls, path: str | Path) -> "BgsData":
        path = Path(path)
        for name in ("images.npy", "samples.tsv", "genotypes.tsv", "meta.json", "mask.nii.gz", "atlas.nii.gz"):
            if not (path / name).is_file():
                raise GinnError(path, f"not a prepared imaging folder (no {name}); run `ginn bgs prepare`")
        meta = json.loads((path / "meta.json").read_text())
        samples = read_table(path / "samples.tsv", required=["FID", "IID", "split", "sex"], what="samples")
        table = read_table(path / "genotypes.tsv", what="genotypes")
        genotypes = table[meta["snps"]].apply(pd.to_numeric).fillna(-1).to_numpy(np.int8)
        images = np.load(path / "images.npy", mmap_mode="r")
        if images.shape[0] != len(samples) or list(images.shape[1:]) != meta["shape"]:
            raise GinnError(path / "images.npy", f"shape {images.shape} does not match samples.tsv/meta.json")
        regions = read_table(path / "regions.tsv", required=["region_id", "region"], what="regions")
        regions["region_id"] = regions["region_id"].astype(int)
        return cls(path=path, images=images, samples=samples, genotypes=genotypes, snps=meta["snps"],
                   grid=Grid(shape=tuple(meta["shape"]), affine=np.asarray(meta["affine"])),
                   mask=np.asarray(nib.load(path / "mask.nii.gz").dataobj) > 0,
                   atlas=np.asarray(nib.load(path / "atlas.nii.gz").dataobj).astype(np.int16), regions=regions)

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.samples["split"].to_numpy() == split)

    def batch(self, rows: np.ndarray) -> np.ndarray:
        """float32 (B, 1, X, Y, Z) volumes for a batch of rows."""
        return np.asarray(self.images[rows], dtype=np.float32)[:, None]


def parse_list(text: str | None) -> list[str] | None:
    """A comma-separated option value as a list (None when not given)."""
    return None if not text else [t.strip() for t in text.split(",") if t.strip()]


@click.command("prepare")
@stage_options("bgs prepare")
def prepare_command(subjects_path, bfile, snps, voxel_size, val_fraction, test_fraction, image_dir, seed, out):
    """Resample and z-score T1 images, match genotypes, compute regional IDPs and split the cohort."""
    run_prepare(subjects_path, bfile, out, snps=parse_list(snps), voxel_size=voxel_size, val_fraction=val_fraction,
                test_fraction=test_fraction, image_dir=image_dir, seed=seed)
