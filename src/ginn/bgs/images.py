"""``ginn bgs prepare``: T1 images + PLINK genotypes -> the prepared imaging folder every later stage reads.

Images must be brain-extracted and registered to MNI space (as UK Biobank's ``T1_brain_to_MNI``). Every
file is checked before any work (exists, readable NIfTI header, one shape and affine across the cohort:
the odd file is the one named); each image is then resampled onto the template grid at ``--voxel-size``,
its registration checked (Pearson correlation with the template brain mask at least ``--min-mask-r``,
which a 40 mm shift falls below, and higher than that of the image flipped front-back or up-down, which
catches those flips; a left-right flip of a near-symmetric brain cannot be seen this way), and z-scored within the template brain mask (zero
outside), so scanner intensity scales do not leak into the genotype prediction. Any failure leaves no
output. Images come from the sheet's ``image`` column or, with ``--image-dir`` and a sheet of IDs, from
``<IID>.nii[.gz]`` (or ``<FID>_<IID>.nii[.gz]``) in that folder. Sheets may be tab/space or comma separated.

Negative controls: ``--n-controls`` label columns, each a real SNP's genotypes permuted across subjects
(seeded), so they follow the SNPs' class frequencies but carry no image signal. Every model and baseline
fits them like SNPs; their scores are the null that ``bgs associate`` refers each SNP's statistic to.

Layout of ``PREP/``::

    images.npy      float16 (n_subjects, X, Y, Z) z-scored volumes, memory-mapped
    samples.tsv     FID IID image sex split (train / val / test: multilabel-stratified on genotypes)
    genotypes.tsv   FID IID + one column per SNP: A1 dosage 0/1/2, NA missing
    controls.tsv    FID IID + one column per negative control (control001 ...): permuted genotypes
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
from ..files import atomic_outputs, first_repeated, provenance_record, read_table, write_json, write_tsv
from ..genotypes import GenotypeSource, genotype_input
from ..qc import variant_stats
from .templates import Grid, Template, load_template, resample_to_grid
from ..contract import stage_default, stage_options

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_SEX_CODES = {"1": "male", "2": "female", "m": "male", "f": "female", "male": "male", "female": "female"}


def read_sheet(path: str | Path, required: list[str], what: str) -> pd.DataFrame:
    """A sheet with a header row: tab/space separated, or comma separated (``.csv`` or commas in the header)."""
    path = Path(path)
    if not path.is_file():
        raise GinnError(path, f"{what} file not found")
    with open(path, encoding="utf-8", errors="replace") as fh:
        header = fh.readline()
    if path.suffix.lower() != ".csv" and ("," not in header or "\t" in header or " " in header.strip()):
        return read_table(path, required=required, what=what)
    try:
        table = pd.read_csv(path, dtype=str, na_values=["NA", "nan", "NaN", "."], keep_default_na=False,
                            skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise GinnError(path, f"cannot parse comma-separated {what} sheet: {str(exc).splitlines()[0]}") from None
    table.columns = [c.strip() for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise GinnError(path, f"{what} sheet lacks column(s) {', '.join(missing)} (has {', '.join(table.columns)})")
    return table


def _image_in_folder(folder: Path, fid: str, iid: str) -> str:
    """The image of one subject in a folder of NIfTI files, by ID."""
    names = [f"{iid}.nii.gz", f"{iid}.nii", f"{fid}_{iid}.nii.gz", f"{fid}_{iid}.nii"]
    for name in names:
        if (folder / name).is_file():
            return str(folder / name)
    raise GinnError(folder, f"no image for subject {fid} {iid} (looked for {', '.join(names)})")


def read_subjects(path: str | Path, image_dir: str | Path | None = None) -> pd.DataFrame:
    """Subject table (FID IID image [sex]) with image paths resolved.

    Relative image paths are taken relative to the table's folder; with ``image_dir`` every image is
    looked up by file name in that folder (how a workflow engine stages files), or, when the sheet has
    no ``image`` column, by subject ID.
    """
    path = Path(path)
    table = read_sheet(path, ["IID"], "subject")
    if "image" not in table.columns and not image_dir:
        raise GinnError(path, "subject sheet has no image column; add one or give --image-dir with the images "
                              "named <IID>.nii.gz")
    if "FID" not in table.columns:
        table["FID"] = table["IID"]
    if table.duplicated(["FID", "IID"]).any():
        first = table[table.duplicated(["FID", "IID"])].iloc[0]
        raise GinnError(path, f"lists subject {first.FID} {first.IID} twice")
    if "image" not in table.columns:
        if not Path(image_dir).is_dir():
            raise GinnError(image_dir, "image folder not found")
        table["image"] = [_image_in_folder(Path(image_dir), f, i) for f, i in zip(table["FID"], table["IID"])]
    elif table["image"].isna().any():
        raise GinnError(path, f"subject {table.loc[table['image'].isna(), 'IID'].iloc[0]} has no image path")
    elif image_dir:
        table["image"] = [str(Path(image_dir) / Path(p).name) for p in table["image"]]
    else:  # relative to the table's folder; an absolute path stays as it is
        table["image"] = [str(path.parent / p) for p in table["image"]]
    shared = table["image"].duplicated(keep=False)
    if shared.any():
        first = table[shared & (table["image"] == table.loc[shared, "image"].iloc[0])]
        raise GinnError(path, f"subjects {first.FID.iloc[0]} {first.IID.iloc[0]} and {first.FID.iloc[1]} "
                              f"{first.IID.iloc[1]} share the image {first.image.iloc[0]}")
    table["sex"] = _sex_codes(table, path) if "sex" in table.columns else pd.NA
    return table[["FID", "IID", "image", "sex"]].reset_index(drop=True)


def _sex_codes(table: pd.DataFrame, path: Path) -> list:
    """male / female / NA of the sheet's sex column, from PLINK's 1 / 2 (0 and -9 unknown) or M / F words;
    any other code is a typo that would silently drop the subject's sex from the split and the analyses."""
    codes = []
    for fid, iid, value in zip(table["FID"], table["IID"], table["sex"]):
        text = "" if pd.isna(value) else str(value).strip().lower()
        if text in _SEX_CODES:
            codes.append(_SEX_CODES[text])
        elif text in ("", "0", "-9", "na", "nan", "unknown", "u"):
            codes.append(pd.NA)
        else:
            raise GinnError(path, f"subject {fid} {iid}: sex {value!r} is not 1/2, M/F or male/female "
                                  "(0, -9 or NA: unknown)")
    return codes


def _image_header(path: Path) -> tuple[tuple[int, ...], np.ndarray]:
    """Spatial shape and affine of a NIfTI file from its header alone."""
    if not path.is_file():
        raise GinnError(path, "image file not found")
    try:
        img = nib.load(path)
        shape, affine = tuple(int(n) for n in img.shape), np.asarray(img.affine, dtype=float)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise GinnError(path, f"cannot read NIfTI image: {str(exc).splitlines()[0]}") from None
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) != 3:
        raise GinnError(path, f"image has shape {shape}; expected a 3D volume")
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-6:
        raise GinnError(path, "image affine is singular or not finite")
    return shape, affine


def check_image_headers(paths: list[str]) -> tuple[int, ...]:
    """Check every image's header before any work; the cohort's shape and affine are the most common ones.

    Judging against the majority (not the first file) names the odd file, wherever it sits in the sheet.
    """
    headers = [_image_header(Path(p)) for p in tqdm(paths, desc="check headers", unit="image", disable=None)]
    keys = [(shape, tuple(np.round(affine, 3).ravel())) for shape, affine in headers]
    reference = max(set(keys), key=keys.count)
    for path, key, (shape, affine) in zip(paths, keys, headers):
        if key[0] != reference[0]:
            raise GinnError(path, f"image shape {shape} differs from the cohort's {reference[0]} "
                                  f"({keys.count(reference)} of {len(keys)} images); images must be registered "
                                  "to one template grid")
        if key != reference:
            raise GinnError(path, f"image affine differs from the cohort's ({keys.count(reference)} of {len(keys)} "
                                  f"images; voxel-to-world origin {affine[:3, 3].round(1).tolist()} vs "
                                  f"{np.array(reference[1]).reshape(4, 4)[:3, 3].round(1).tolist()}); images "
                                  "must be registered to one template grid")
    return reference[0]


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


FLIP_AXES = ((1, "anterior-posterior"), (2, "superior-inferior"))


def mask_correlations(volume: np.ndarray, mask: np.ndarray) -> list[float]:
    """Pearson r of a resampled volume with the template brain mask, then with the volume flipped along
    each of :data:`FLIP_AXES` (= the mask flipped: one standardisation of the volume serves all)."""
    values = volume.astype(np.float64)
    sd = values.std()
    if sd == 0:
        return [0.0] * (1 + len(FLIP_AXES))
    z = (values - values.mean()) / sd
    m = mask.astype(np.float64)
    m = (m - m.mean()) / m.std()
    return [float(np.vdot(z, other) / z.size) for other in (m, *(np.flip(m, axis) for axis, _ in FLIP_AXES))]


def check_registration(path: str | Path, volume: np.ndarray, mask: np.ndarray, min_mask_r: float) -> None:
    """A resampled image must overlap the MNI brain mask, and better than its own front-back or up-down flip."""
    r, *flipped = mask_correlations(volume, mask)
    if r < min_mask_r:
        raise GinnError(path, f"image correlates r={r:.2f} with the MNI brain mask (< {min_mask_r}); it is not a "
                              "brain-extracted T1 registered to MNI space (shifted or another template?)")
    for (_, name), r_flipped in zip(FLIP_AXES, flipped):
        if r_flipped > r:
            raise GinnError(path, f"image looks flipped {name}: flipping it back matches the MNI brain mask "
                                  f"better (r={r_flipped:.2f} vs {r:.2f})")


def prepare_volume(path: str | Path, template: Template, min_mask_r: float) -> np.ndarray:
    """Load, resample onto the template grid, check registration and z-score one subject's image."""
    data, affine = load_volume(path)
    resampled = resample_to_grid(data, affine, template.grid)
    check_registration(path, resampled, template.mask, min_mask_r)
    return zscore_in_mask(resampled, template.mask)


def permuted_controls(genotypes: np.ndarray, n_controls: int, seed: int) -> np.ndarray:
    """(N, n_controls) labels: control k is SNP k mod S's genotypes in a seeded random subject order."""
    rng = np.random.default_rng([seed, 404])
    n, n_snps = genotypes.shape
    return np.stack([genotypes[rng.permutation(n), k % n_snps] for k in range(n_controls)], axis=1
                    ).astype(np.int8) if n_controls else np.zeros((n, 0), np.int8)


def control_names(n_controls: int) -> list[str]:
    return [f"control{k + 1:03d}" for k in range(n_controls)]


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
    # per-SNP calls with 0, 1, 2 copies of A1 and missing, the order qc.variant_stats takes
    stats = variant_stats(np.stack([(genotypes == g).sum(axis=0) for g in (0, 1, 2, -1)], axis=1))
    info = fileset.bim.iloc[snp_index][["snp", "chrom", "pos", "a1", "a2"]].reset_index(drop=True)
    return genotypes, info.assign(**{name: stats[name] for name in ("missing_rate", "maf", "hwe_p")})


def _save_nifti(path: Path, data: np.ndarray, grid: Grid) -> None:
    nib.save(nib.Nifti1Image(data, grid.affine), path)


def run_prepare(subjects_path: str | Path, bfile: str | Path, out: str | Path, *, snps: list[str] | None = None,
                voxel_size: float = stage_default("bgs prepare", "voxel-size"),
                val_fraction: float = stage_default("bgs prepare", "val-fraction"),
                test_fraction: float = stage_default("bgs prepare", "test-fraction"),
                n_controls: int = stage_default("bgs prepare", "n-controls"),
                min_mask_r: float = stage_default("bgs prepare", "min-mask-r"), image_dir: str | Path | None = None,
                seed: int = stage_default("bgs prepare", "seed")) -> Path:
    """Write the prepared imaging folder (see the module docstring)."""
    subjects_path = Path(subjects_path)
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise GinnError(None, "--val-fraction and --test-fraction must be in (0, 1) and sum below 1")
    if n_controls < 0:
        raise GinnError(None, f"--n-controls {n_controls} is negative")
    subjects = read_subjects(subjects_path, image_dir)
    fileset = genotype_input(bfile=bfile).open()
    genotypes, snp_table = match_genotypes(subjects, subjects_path, fileset, snps)
    if subjects["sex"].isna().all():
        fam = fileset.fam.set_index(["fid", "iid"])["sex"]
        subjects["sex"] = [_SEX_CODES.get(fam.loc[(f, i)], pd.NA) for f, i in zip(subjects.FID, subjects.IID)]
    source_shape = check_image_headers(list(subjects["image"]))
    template = load_template(voxel_size)
    n_regions = int(template.regions["region_id"].max())
    controls = permuted_controls(genotypes, n_controls, seed)
    out = Path(out)
    with atomic_outputs() as outputs:
        folder = outputs.folder(out)
        images = np.lib.format.open_memmap(folder / "images.npy", mode="w+", dtype=np.float16,
                                           shape=(len(subjects),) + template.grid.shape)
        idp = np.empty((len(subjects), n_regions))
        for i, path in enumerate(tqdm(subjects["image"], desc="prepare", unit="image", disable=None)):
            volume = prepare_volume(path, template, min_mask_r)
            images[i] = volume
            idp[i] = regional_means(volume, template.atlas, n_regions)
        images.flush()
        del images
        split = stratified_split(genotypes, val_fraction, test_fraction, seed)
        ids = subjects[["FID", "IID"]]
        write_tsv(folder / "samples.tsv", subjects.assign(split=split))
        write_tsv(folder / "genotypes.tsv", pd.concat(
            [ids, pd.DataFrame(np.where(genotypes < 0, np.nan, genotypes), columns=snp_table["snp"])], axis=1))
        write_tsv(folder / "controls.tsv", pd.concat(
            [ids, pd.DataFrame(np.where(controls < 0, np.nan, controls), columns=control_names(n_controls))], axis=1))
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
                "controls": control_names(n_controls), "split_counts": {s: int((split == s).sum()) for s in SPLITS},
                "source_image_shape": list(source_shape)}
        write_json(folder / "meta.json", meta)
        params = dict(subjects=str(subjects_path), bfile=str(bfile), snps=snps, voxel_size=voxel_size,
                      val_fraction=val_fraction, test_fraction=test_fraction, n_controls=n_controls,
                      min_mask_r=min_mask_r, image_dir=image_dir, out=str(out))
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
    controls: np.ndarray          # int8 (N, K) negative-control labels (permuted genotypes), -1 missing
    control_names: list[str]
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
        names = meta.get("controls", [])
        controls = (read_table(path / "controls.tsv", required=names, what="controls")[names]
                    .apply(pd.to_numeric).fillna(-1).to_numpy(np.int8) if names else np.zeros((len(table), 0), np.int8))
        images = np.load(path / "images.npy", mmap_mode="r")
        if images.shape[0] != len(samples) or list(images.shape[1:]) != meta["shape"]:
            raise GinnError(path / "images.npy", f"shape {images.shape} does not match samples.tsv/meta.json")
        regions = read_table(path / "regions.tsv", required=["region_id", "region"], what="regions")
        regions["region_id"] = regions["region_id"].astype(int)
        return cls(path=path, images=images, samples=samples, genotypes=genotypes, snps=meta["snps"],
                   controls=controls, control_names=names,
                   grid=Grid(shape=tuple(meta["shape"]), affine=np.asarray(meta["affine"])),
                   mask=np.asarray(nib.load(path / "mask.nii.gz").dataobj) > 0,
                   atlas=np.asarray(nib.load(path / "atlas.nii.gz").dataobj).astype(np.int16), regions=regions)

    @property
    def heads(self) -> list[str]:
        """Names of every predicted label: the SNPs, then the negative controls."""
        return self.snps + self.control_names

    @property
    def labels(self) -> np.ndarray:
        """int8 (N, S + K) genotype classes of every head, -1 missing."""
        return np.concatenate([self.genotypes, self.controls], axis=1)

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.samples["split"].to_numpy() == split)

    def batch(self, rows: np.ndarray) -> np.ndarray:
        """float32 (B, 1, X, Y, Z) volumes for a batch of rows."""
        return np.asarray(self.images[rows], dtype=np.float32)[:, None]


def parse_list(text: str | None, flag: str) -> list[str] | None:
    """A comma-separated option value as a list (None when not given); an item given twice is refused: a typo
    for another, and its head, measure or confounder would be counted twice."""
    items = None if not text else [t.strip() for t in text.split(",") if t.strip()]
    repeated = first_repeated(items or [])
    if repeated is not None:
        raise GinnError(flag, f"names {repeated} twice")
    return items


@click.command("prepare")
@stage_options("bgs prepare")
def prepare_command(subjects_path, bfile, snps, out, **params):
    """Check every image, resample and z-score them, match genotypes, add negative controls and split."""
    run_prepare(subjects_path, bfile, out, snps=parse_list(snps, "--snps"), **params)
