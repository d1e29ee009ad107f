"""``ginn bgs simulate``: a synthetic imaging-genetics cohort made offline from the shipped MNI template.

Each subject's T1 is the template with (1) a smooth random deformation and intensity noise, (2) a mild
age-related global intensity loss, and (3) for every planted SNP a regional effect ``e`` in its atlas
region set (a bare region name means both hemispheres): the set's intensity scales by
``1 + intensity_effect * e`` and each of its regions expands radially by ``volume_effect * e`` of its radius. ``e`` is the centred allele dosage plus subject-specific
non-genetic variation, so the brain carries information about the genotype (what the CNN must find)
and about more than the genotype. Each cognition measure depends on the planted regions' ``e`` plus age,
sex and noise, so planted SNPs' image-derived scores must associate with cognition; unplanted SNPs
have random genotypes that touch neither images nor cognition.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage
from tqdm import tqdm

from ..errors import GinnError
from ..files import atomic_outputs, provenance_record, write_json, write_tsv
from ..plink import new_fam, write_plink
from .templates import Template, load_template, region_ids
from ..contract import stage_options

log = logging.getLogger(__name__)

DEFAULT_REGIONS = "superiorfrontal,lateraloccipital"
MEASURES = ("fluid_intelligence", "reaction_time")
_DEFORMATION_SMOOTHNESS_MM = 12.0


def region_sets(template: Template, specs: list[str]) -> list[list[int]]:
    """Atlas ids of each planted region spec: ``name_L``, ``name_R``, ``a+b`` or a bare ``name`` (both sides)."""
    known = set(template.regions["region"])
    sets = []
    for spec in specs:
        names = []
        for part in spec.split("+"):
            if part not in known and f"{part}_L" not in known:
                raise GinnError(None, f"unknown atlas region {part!r} (e.g. superiorfrontal, insula_R)")
            names += [part] if part in known else [f"{part}_L", f"{part}_R"]
        sets.append(region_ids(template, names))
    return sets


def _planted_fields(template: Template, sets: list[list[int]]) -> tuple[np.ndarray, list[tuple[int, np.ndarray, float]]]:
    """Soft intensity mask per planted region set, and (set index, centre, radius) per atlas region in it."""
    soft, components = [], []
    for k, ids in enumerate(sets):
        soft.append(ndimage.gaussian_filter(np.isin(template.atlas, ids).astype(np.float32), 0.5))
        for rid in ids:
            inside = template.atlas == rid
            components.append((k, np.array(np.nonzero(inside)).mean(axis=1), (inside.sum() * 3 / (4 * np.pi)) ** (1 / 3)))
    return np.stack(soft), components


def synthesize_image(template: Template, effects: np.ndarray, age_z: float, rng: np.random.Generator, *,
                     soft: np.ndarray, components: list, intensity_effect: float,
                     volume_effect: float, deform_mm: float, noise: float) -> np.ndarray:
    """One subject's T1 on the template grid given its regional effects ``effects`` (one per region)."""
    shape = template.grid.shape
    voxel = template.grid.voxel_size
    image = template.t1 * (1 + intensity_effect * np.tensordot(effects, soft, axes=1)) * (1 - 0.03 * age_z)
    coords = np.indices(shape, dtype=np.float32)
    sigma = _DEFORMATION_SMOOTHNESS_MM / voxel
    for axis in range(3):
        field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
        coords[axis] += field * (deform_mm / voxel / max(field.std(), 1e-6))
    for k, centre, radius in components:
        offset = np.indices(shape, dtype=np.float32) - centre[:, None, None, None]
        weight = np.exp(-(offset ** 2).sum(axis=0) / (2 * radius ** 2))
        coords -= volume_effect * effects[k] * offset * weight  # sample nearer the centre: the region grows
    warped = ndimage.map_coordinates(image, coords, order=1, mode="constant", cval=0.0)
    warped *= 1 + 0.05 * rng.standard_normal()
    return (warped + noise * rng.standard_normal(shape)).astype(np.float32)


def simulate_cohort(out: str | Path, *, n_subjects: int = 200, n_snps: int = 6, regions: str = DEFAULT_REGIONS,
                    voxel_size: float = 2.0, intensity_effect: float = 0.15, volume_effect: float = 0.1,
                    nongenetic_sd: float = 0.5, cognition_effect: float = 1.0, deform_mm: float = 2.0,
                    noise: float = 0.05, missing_rate: float = 0.01, seed: int = 1) -> pd.DataFrame:
    """Write the cohort folder ``out`` (see the command's help) and return its truth table."""
    region_names = [r.strip() for r in regions.split(",") if r.strip()]
    if not 1 <= len(region_names) <= n_snps:
        raise GinnError(None, f"--regions names {len(region_names)} planted regions; need 1 to --n-snps ({n_snps})")
    if n_subjects < 20:
        raise GinnError(None, f"--n-subjects {n_subjects} is too small (at least 20)")
    template = load_template(voxel_size)
    sets = region_sets(template, region_names)
    soft, components = _planted_fields(template, sets)
    rng = np.random.default_rng(seed)
    n_planted = len(region_names)
    maf = rng.uniform(0.3, 0.5, n_snps)
    dosages = rng.binomial(2, maf[:, None], size=(n_snps, n_subjects)).astype(np.int8)
    centred = dosages[:n_planted] - 2 * maf[:n_planted, None]
    effects = (centred + nongenetic_sd * rng.standard_normal(centred.shape)).T  # (N, planted)
    missing = rng.random(dosages.shape) < missing_rate
    observed = np.where(missing, -1, dosages).astype(np.int8)
    sex = rng.integers(1, 3, n_subjects)  # PLINK coding: 1 male, 2 female
    age = rng.uniform(45, 80, n_subjects)
    age_z = (age - 62.5) / 10
    fam = new_fam(n_subjects).assign(sex=sex.astype(str))
    snps = [f"rs_bgs{j + 1}" for j in range(n_snps)]
    bim = pd.DataFrame({"chrom": "1", "snp": snps, "cm": 0, "pos": 1_000_000 + 100_000 * np.arange(n_snps),
                        "a1": "A", "a2": "G"})
    weights = np.array([[1.0] * n_planted, [(-1.0) ** j for j in range(n_planted)]]) * cognition_effect
    cognition = effects @ weights.T - 0.3 * age_z[:, None] + 0.2 * (sex[:, None] - 1.5) \
        + rng.standard_normal((n_subjects, len(MEASURES)))
    out = Path(out)
    ids_table = pd.DataFrame({"FID": fam["fid"], "IID": fam["iid"]})
    with atomic_outputs() as outputs:
        folder = outputs.folder(out)
        (folder / "images").mkdir()
        images = []
        for i in tqdm(range(n_subjects), desc="simulate", unit="subject", disable=None):
            image = synthesize_image(template, effects[i], float(age_z[i]), rng, soft=soft, components=components,
                                     intensity_effect=intensity_effect,
                                     volume_effect=volume_effect, deform_mm=deform_mm, noise=noise)
            name = f"images/{fam['iid'][i]}.nii.gz"
            nib.save(nib.Nifti1Image(image, template.grid.affine), folder / name)
            images.append(name)
        with atomic_outputs() as inside:  # committed into the folder before the folder itself
            write_plink(inside, folder / "genotypes", observed, bim, fam)
        write_tsv(folder / "subjects.tsv", ids_table.assign(image=images, sex=sex))
        write_tsv(folder / "confounders.tsv", ids_table.assign(age=age.round(2), sex=sex))
        write_tsv(folder / "cognition.tsv", ids_table.assign(**dict(zip(MEASURES, cognition.T))))
        truth = bim[["snp", "chrom", "pos", "a1", "a2"]].assign(
            maf=maf.round(4), planted=np.arange(n_snps) < n_planted,
            region=region_names + ["NA"] * (n_snps - n_planted),
            region_id=["+".join(map(str, ids)) for ids in sets] + ["NA"] * (n_snps - n_planted))
        write_tsv(folder / "truth.tsv", truth)
        params = dict(n_subjects=n_subjects, n_snps=n_snps, regions=regions, voxel_size=voxel_size,
                      intensity_effect=intensity_effect, volume_effect=volume_effect, nongenetic_sd=nongenetic_sd,
                      cognition_effect=cognition_effect, deform_mm=deform_mm, noise=noise,
                      missing_rate=missing_rate, out=str(out))
        write_json(folder / "provenance.json", provenance_record("bgs simulate", params, seed=seed))
    log.info("bgs simulate: %d subjects, %d SNPs (%d planted) at %g mm in %s", n_subjects, n_snps, n_planted,
             voxel_size, out)
    return truth


@click.command("simulate")
@stage_options("bgs simulate")
def simulate_command(out, **params):
    """Simulate T1 images, genotypes and cognition with planted SNP effects in atlas regions."""
    simulate_cohort(out, **params)
