"""``ginn bgs saliency``: where in the brain each SNP's score comes from.

Per subject and SNP, SmoothGrad (Smilkov et al. 2017) over vanilla gradients: the mean absolute
gradient of the true genotype class's logit over ``--n-samples`` copies of the volume with Gaussian
noise of ``--noise`` times the volume's intensity range (max - min; SmoothGrad's definition, so the level
means the same on any intensity scale; default 0.01 as the method), a missing genotype using the predicted class.
Maps are written on the prepared grid in MNI space. Group maps average subject maps normalised to a
maximum of 1 (so each subject weighs the same), over correctly predicted subjects as in the paper:
overall, per predicted class and per sex. ``regions.tsv`` ranks atlas regions per group map by mean
saliency and by their share of the map's top-1% brain voxels.

``SAL/``: subjects/<snp>/<FID>_<IID>.nii.gz, group/<snp>_<group>.nii.gz (group = all, class0/1/2,
male, female), regions.tsv (snp group n_subjects region region_id n_voxels mean_saliency
saliency_share top1_share), figures/<snp>.png, provenance.json.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
import nibabel as nib
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ..errors import GinnError
from ..files import atomic_outputs, provenance_record, write_json, write_tsv
from .images import BgsData, parse_list
from .model import MultiTaskCNN, load_trained, predict_proba
from .score import check_model_matches
from ..contract import stage_options
from ..device import resolve_device
from ..threads import use_threads

log = logging.getLogger(__name__)

TOP_FRACTION = 0.01


def smoothgrad(model: MultiTaskCNN, volumes: torch.Tensor, snp: int, target_classes: torch.Tensor, *,
               n_samples: int, noise: float, generator: torch.Generator) -> np.ndarray:
    """Mean |d logit[snp, target] / d input| over noisy copies, for a batch of (B, 1, X, Y, Z) volumes.

    Each noisy pass perturbs all B volumes at once; in eval mode every volume's logits depend on that
    volume only, so one backward pass of the summed target logits yields all B gradients.
    """
    span = (volumes.amax(dim=(1, 2, 3, 4)) - volumes.amin(dim=(1, 2, 3, 4))).view(-1, 1, 1, 1, 1)
    picked = torch.arange(len(volumes), device=volumes.device)
    total = torch.zeros_like(volumes)
    for _ in range(n_samples):
        noisy = volumes + noise * span * torch.randn(volumes.shape, generator=generator).to(volumes.device)
        noisy.requires_grad_(True)
        logits = model(noisy)[picked, snp, target_classes]
        (grad,) = torch.autograd.grad(logits.sum(), noisy)
        total += grad.abs()
    return (total / n_samples)[:, 0].cpu().numpy()


def top_voxels(saliency: np.ndarray, mask: np.ndarray, fraction: float = TOP_FRACTION) -> np.ndarray:
    """Boolean map of the top ``fraction`` of brain voxels by saliency (at least one voxel)."""
    values = saliency[mask]
    k = max(int(round(fraction * values.size)), 1)
    threshold = np.partition(values, values.size - k)[values.size - k]
    return mask & (saliency >= threshold)


def region_table(saliency: np.ndarray, data: BgsData) -> pd.DataFrame:
    """Per atlas region: voxels, mean saliency, share of total saliency and of the top-1% voxels."""
    top = top_voxels(saliency, data.mask)
    labels = data.atlas.ravel()
    size = int(labels.max()) + 1
    counts = np.bincount(labels, minlength=size)
    sums = np.bincount(labels, weights=saliency.ravel(), minlength=size)
    tops = np.bincount(labels, weights=top.ravel().astype(float), minlength=size)
    ids = data.regions["region_id"].to_numpy()
    ids = ids[(ids < size) & (counts[np.minimum(ids, size - 1)] > 0)]
    table = pd.DataFrame({"region_id": ids, "n_voxels": counts[ids], "mean_saliency": sums[ids] / counts[ids],
                          "saliency_share": sums[ids] / saliency[data.mask].sum(),
                          "top1_share": tops[ids] / top.sum()})
    names = data.regions.set_index("region_id")["region"]
    return table.assign(region=names.loc[table["region_id"]].to_numpy()).sort_values("mean_saliency", ascending=False)


def _plot_group_map(saliency: np.ndarray, template: np.ndarray, snp: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    peak = np.unravel_index(np.argmax(saliency), saliency.shape)
    shown = np.ma.masked_less(saliency, np.percentile(saliency[saliency > 0], 90) if (saliency > 0).any() else 0)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    views = [("sagittal", np.s_[peak[0], :, :]), ("coronal", np.s_[:, peak[1], :]), ("axial", np.s_[:, :, peak[2]])]
    for ax, (name, index) in zip(axes, views):
        ax.imshow(template[index].T, cmap="gray", origin="lower")
        ax.imshow(shown[index].T, cmap="hot", origin="lower", alpha=0.8, vmin=0, vmax=saliency.max())
        ax.set_title(f"{name} through the peak", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"SmoothGrad saliency, {snp} (top 10% of voxels, correctly predicted subjects)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_saliency(data_path: str | Path, model_path: str | Path, out: str | Path, *, snps: list[str] | None = None,
                 split: str = "test", max_subjects: int | None = None, n_samples: int = 20, noise: float = 0.01,
                 subject_maps: bool = True, batch_size: int = 16, device: str = "auto", seed: int = 1) -> pd.DataFrame:
    data = BgsData.load(data_path)
    device = resolve_device(device)
    model, config = load_trained(model_path, device)
    check_model_matches(config, data, model_path)
    chosen = snps or data.snps
    unknown = [s for s in chosen if s not in data.snps]
    if unknown:
        raise GinnError(model_path, f"SNP {unknown[0]} is not one the model predicts")
    rows = data.rows(split)[:max_subjects]
    if not len(rows):
        raise GinnError(data_path, f"no subject in split {split!r}")
    predicted = predict_proba(model, data, rows, device=device).argmax(axis=2)
    template = np.asarray(nib.load(data.path / "template.nii.gz").dataobj, dtype=np.float32)
    sex = data.samples["sex"].to_numpy()[rows]
    tables = []
    out = Path(out)
    with atomic_outputs() as outputs:
        folder = outputs.folder(out)
        for name in ("subjects", "group", "figures"):
            (folder / name).mkdir()
        for snp in chosen:
            j = data.snps.index(snp)
            truth = data.genotypes[rows, j]
            target = np.where(truth >= 0, truth, predicted[:, j])
            normalised = np.zeros((len(rows),) + data.grid.shape, dtype=np.float32)
            if subject_maps:
                (folder / "subjects" / snp).mkdir()
            generator = torch.Generator().manual_seed(int(np.random.default_rng([seed, j]).integers(2**62)))
            for start in tqdm(range(0, len(rows), batch_size), desc=f"saliency {snp}", unit="batch", disable=None):
                chunk = rows[start:start + batch_size]
                volumes = torch.from_numpy(data.batch(chunk)).to(device)
                targets = torch.from_numpy(target[start:start + batch_size].astype(np.int64)).to(device)
                maps = smoothgrad(model, volumes, j, targets, n_samples=n_samples, noise=noise, generator=generator)
                for k, (row, saliency) in enumerate(zip(chunk, np.where(data.mask, maps, 0).astype(np.float32))):
                    if subject_maps:
                        fid, iid = data.samples.iloc[row][["FID", "IID"]]
                        nib.save(nib.Nifti1Image(saliency, data.grid.affine),
                                 folder / "subjects" / snp / f"{fid}_{iid}.nii.gz")
                    normalised[start + k] = saliency / max(float(saliency.max()), 1e-30)
            correct = (predicted[:, j] == truth) & (truth >= 0)
            groups = {"all": correct, **{f"class{c}": correct & (predicted[:, j] == c) for c in range(3)},
                      "male": correct & (sex == "male"), "female": correct & (sex == "female")}
            for group, members in groups.items():
                if not members.any():
                    continue
                mean_map = normalised[members].mean(axis=0)
                nib.save(nib.Nifti1Image(mean_map, data.grid.affine), folder / "group" / f"{snp}_{group}.nii.gz")
                tables.append(region_table(mean_map, data).assign(snp=snp, group=group, n_subjects=int(members.sum())))
                if group == "all":
                    _plot_group_map(mean_map, template, snp, folder / "figures" / f"{snp}.png")
        columns = ["snp", "group", "n_subjects", "region", "region_id", "n_voxels", "mean_saliency",
                   "saliency_share", "top1_share"]
        table = pd.concat(tables, ignore_index=True)[columns] if tables else pd.DataFrame(columns=columns)
        write_tsv(folder / "regions.tsv", table)
        params = dict(data=str(data_path), model=str(model_path), snps=chosen, split=split, max_subjects=max_subjects,
                      n_samples=n_samples, noise=noise, subject_maps=subject_maps, batch_size=batch_size, out=str(out))
        write_json(folder / "provenance.json", provenance_record(
            "bgs saliency", params, inputs={"data": data_path, "model": model_path}, seed=seed))
    log.info("bgs saliency: %d subjects x %d SNPs", len(rows), len(chosen))
    return table


@click.command("saliency")
@stage_options("bgs saliency")
def saliency_command(data_path, model_path, snps, out, **params):
    """SmoothGrad saliency maps per subject, group maps and a per-region table for each SNP."""
    use_threads(params.pop("threads"))
    run_saliency(data_path, model_path, out, snps=parse_list(snps, "--snps"), **params)
