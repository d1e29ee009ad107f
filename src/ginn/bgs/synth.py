"""``ginn bgs simulate``: a synthetic imaging-genetics cohort made offline from the shipped MNI template.

Each subject's T1 is the template (already registered to MNI space, as UK Biobank's ``T1_brain_to_MNI``)
with a smooth random deformation, intensity noise, a scanner gain per assessment centre and a mild
age-related intensity loss, plus two separately controlled sources of anatomy:

- **genotype -> brain**: for planted SNP ``k`` a standardised regional effect
  ``e_k = sqrt(snp_r2) * g_k + sqrt(1 - snp_r2) * z_k`` (``g_k`` the standardised allele dosage, ``z_k``
  non-genetic), so the SNP explains ``snp_r2`` of the region's variation; the region's volume changes by
  about ``region_volume_sd * e_k`` (radial expansion of a third of that), optionally also its intensity.
- **shared anatomy**: a genotype-free factor ``a`` scales the whole brain by ``1 + anatomy_sd * a``
  (residual brain size after linear registration), visible to every head and in total brain volume.

Cognition measure m = ``path_effect * e_k`` for the planted regions k = m mod 2 (fluid intelligence up,
reaction time down: the genotype -> brain -> cognition path)
+ ``anatomy_effect * a`` (the confounding shared-anatomy path) + age, sex, education, centre + N(0, 1).
Setting ``path_effect 0`` leaves only shared anatomy: then no SNP's score carries information about
cognition beyond what any head reading the brain carries. IDPs are what FreeSurfer would give: regional
volumes (mm^3, native space = MNI volume x head size^3) and total brain volume, so the IDP baseline sees
volumes, not the intensities the CNN sees.
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
_N_CENTRES = 3
_N_PCS = 2


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


def synthesize_subject(template: Template, effects: np.ndarray, anatomy: float, gain: float, age_z: float,
                       rng: np.random.Generator, *, soft: np.ndarray, components: list, intensity_effect: float,
                       region_volume_sd: float, anatomy_sd: float, deform_mm: float, noise: float
                       ) -> tuple[np.ndarray, np.ndarray, int]:
    """One subject's MNI-space T1, its atlas voxel counts per region id and its brain voxel count."""
    shape = template.grid.shape
    voxel = template.grid.voxel_size
    image = template.t1 * (1 + intensity_effect * np.tensordot(effects, soft, axes=1)) * (1 - 0.03 * age_z) * gain
    grid = np.indices(shape, dtype=np.float32)
    coords = grid.copy()
    sigma = _DEFORMATION_SMOOTHNESS_MM / voxel
    for axis in range(3):
        field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
        coords[axis] += field * (deform_mm / voxel / max(field.std(), 1e-6))
    for k, centre, radius in components:  # volume ~ radius^3: a third of the volume change per unit radius
        offset = grid - centre[:, None, None, None]
        weight = np.exp(-(offset ** 2).sum(axis=0) / (2 * radius ** 2))
        coords -= region_volume_sd / 3 * effects[k] * offset * weight  # sample nearer the centre: the region grows
    coords -= anatomy_sd * anatomy / (1 + anatomy_sd * anatomy) * (grid - template.brain_centre[:, None, None, None])
    warped = ndimage.map_coordinates(image, coords, order=1, mode="constant", cval=0.0)
    labels = ndimage.map_coordinates(template.atlas, coords, order=0, mode="constant", cval=0)
    brain = ndimage.map_coordinates(template.mask.view(np.uint8), coords, order=0, mode="constant", cval=0)
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=int(template.atlas.max()) + 1)
    warped *= 1 + 0.05 * rng.standard_normal()
    return (warped + noise * rng.standard_normal(shape)).astype(np.float32), counts, int(brain.sum())


def simulate_cohort(out: str | Path, *, n_subjects: int = 200, n_snps: int = 6, regions: str = DEFAULT_REGIONS,
                    voxel_size: float = 2.0, snp_r2: float = 0.02, region_volume_sd: float = 0.1,
                    intensity_effect: float = 0.0, anatomy_sd: float = 0.03, path_effect: float = 0.3,
                    anatomy_effect: float = 0.3, deform_mm: float = 2.0, noise: float = 0.05,
                    missing_rate: float = 0.01, seed: int = 1) -> pd.DataFrame:
    """Write the cohort folder ``out`` (see the command's help) and return its truth table."""
    region_names = [r.strip() for r in regions.split(",") if r.strip()]
    if not 1 <= len(region_names) <= n_snps:
        raise GinnError(None, f"--regions names {len(region_names)} planted regions; need 1 to --n-snps ({n_snps})")
    if n_subjects < 20:
        raise GinnError(None, f"--n-subjects {n_subjects} is too small (at least 20)")
    if not 0 <= snp_r2 <= 1:
        raise GinnError(None, f"--snp-r2 {snp_r2} is not a fraction of variance in [0, 1]")
    template = load_template(voxel_size)
    sets = region_sets(template, region_names)
    soft, components = _planted_fields(template, sets)
    rng = np.random.default_rng(seed)
    n_planted = len(region_names)
    maf = rng.uniform(0.3, 0.5, n_snps)
    dosages = rng.binomial(2, maf[:, None], size=(n_snps, n_subjects)).astype(np.int8)
    standardised = (dosages[:n_planted] - 2 * maf[:n_planted, None]) / np.sqrt(2 * maf[:n_planted, None]
                                                                              * (1 - maf[:n_planted, None]))
    effects = (np.sqrt(snp_r2) * standardised
               + np.sqrt(1 - snp_r2) * rng.standard_normal(standardised.shape)).T  # (N, planted), unit variance
    anatomy = rng.standard_normal(n_subjects)
    missing = rng.random(dosages.shape) < missing_rate
    observed = np.where(missing, -1, dosages).astype(np.int8)
    sex = rng.integers(1, 3, n_subjects)  # PLINK coding: 1 male, 2 female
    age = rng.uniform(45, 80, n_subjects)
    age_z = (age - 62.5) / 10
    centre = rng.integers(1, _N_CENTRES + 1, n_subjects)
    gain = 1 + 0.1 * (centre - 2)  # scanner intensity scale per centre (prepare's z-scoring removes it)
    education = rng.normal(15, 3, n_subjects).round(0)
    head_size = np.exp(0.07 * rng.standard_normal(n_subjects))  # native / MNI linear scale
    pcs = rng.standard_normal((n_subjects, _N_PCS))
    fam = new_fam(n_subjects).assign(sex=sex.astype(str))
    snps = [f"rs_bgs{j + 1}" for j in range(n_snps)]
    bim = pd.DataFrame({"chrom": "1", "snp": snps, "cm": 0, "pos": 1_000_000 + 100_000 * np.arange(n_snps),
                        "a1": "A", "a2": "G"})
    region_weights = np.zeros((len(MEASURES), n_planted))  # measure x planted: measure m <- regions k = m mod M
    for k in range(n_planted):
        region_weights[k % len(MEASURES), k] = 1.0 if k % len(MEASURES) == 0 else -1.0  # slower with a larger region
    cognition = (path_effect * effects @ region_weights.T + anatomy_effect * anatomy[:, None] * [1.0, -1.0]
                 - 0.3 * age_z[:, None] + 0.2 * (sex[:, None] - 1.5) + 0.1 * (education[:, None] - 15)
                 + 0.1 * (centre[:, None] - 2) + rng.standard_normal((n_subjects, len(MEASURES))))
    out = Path(out)
    ids_table = pd.DataFrame({"FID": fam["fid"], "IID": fam["iid"]})
    present = template.regions[template.regions["region_id"].isin(np.unique(template.atlas[template.atlas > 0]))]
    voxel_mm3 = voxel_size ** 3
    volumes = np.empty((n_subjects, len(present)))
    brain_volume = np.empty(n_subjects)
    with atomic_outputs() as outputs:
        folder = outputs.folder(out)
        (folder / "images").mkdir()
        images = []
        for i in tqdm(range(n_subjects), desc="simulate", unit="subject", disable=None):
            image, counts, brain = synthesize_subject(
                template, effects[i], float(anatomy[i]), float(gain[i]), float(age_z[i]), rng, soft=soft,
                components=components, intensity_effect=intensity_effect, region_volume_sd=region_volume_sd,
                anatomy_sd=anatomy_sd, deform_mm=deform_mm, noise=noise)
            native = voxel_mm3 * head_size[i] ** 3
            volumes[i] = counts[present["region_id"].to_numpy()] * native
            brain_volume[i] = brain * native
            name = f"images/{fam['iid'][i]}.nii.gz"
            nib.save(nib.Nifti1Image(image, template.grid.affine), folder / name)
            images.append(name)
        with atomic_outputs() as inside:  # committed into the folder before the folder itself
            write_plink(inside, folder / "genotypes", observed, bim, fam)
        write_tsv(folder / "subjects.tsv", ids_table.assign(image=images, sex=sex))
        write_tsv(folder / "confounders.tsv", ids_table.assign(
            age=age.round(2), sex=sex, head_size=head_size.round(4), centre=[f"c{c}" for c in centre],
            education=education, **{f"PC{k + 1}": pcs[:, k].round(4) for k in range(_N_PCS)}))
        write_tsv(folder / "cognition.tsv", ids_table.assign(**dict(zip(MEASURES, cognition.T))))
        write_tsv(folder / "idp.tsv", pd.concat([ids_table, pd.DataFrame(volumes.round(0), columns=present["region"]),
                                                pd.DataFrame({"total_brain_volume": brain_volume.round(0)})], axis=1))
        truth = bim[["snp", "chrom", "pos", "a1", "a2"]].assign(
            maf=maf.round(4), planted=np.arange(n_snps) < n_planted,
            region=region_names + ["NA"] * (n_snps - n_planted),
            region_id=["+".join(map(str, ids)) for ids in sets] + ["NA"] * (n_snps - n_planted))
        write_tsv(folder / "truth.tsv", truth)
        params = dict(n_subjects=n_subjects, n_snps=n_snps, regions=regions, voxel_size=voxel_size, snp_r2=snp_r2,
                      region_volume_sd=region_volume_sd, intensity_effect=intensity_effect, anatomy_sd=anatomy_sd,
                      path_effect=path_effect, anatomy_effect=anatomy_effect, deform_mm=deform_mm, noise=noise,
                      missing_rate=missing_rate, out=str(out))
        write_json(folder / "provenance.json", provenance_record("bgs simulate", params, seed=seed))
    log.info("bgs simulate: %d subjects, %d SNPs (%d planted) at %g mm in %s", n_subjects, n_snps, n_planted,
             voxel_size, out)
    return truth


@click.command("simulate")
@stage_options("bgs simulate")
def simulate_command(out, **params):
    """Simulate T1 images, genotypes, volume IDPs and cognition with planted SNP effects in atlas regions."""
    simulate_cohort(out, **params)
