"""``ginn bgs train``: fit the multi-task CNN to predict every SNP's genotype class from the T1 volume.

Masked cross-entropy skips missing calls per SNP; the negative-control heads of the prepared folder train
beside the SNP heads on detached features (``model.training_loss``). As in the method: AdamW, a
ReduceLROnPlateau schedule and early stopping, both on the validation mean balanced accuracy of the SNP
heads, keeping the best epoch; mixed precision on CUDA. Subjects are drawn with replacement with weights
inversely proportional to the summed frequency of their genotype classes across SNPs, so rare homozygotes
are seen as often as common ones. The draw of epoch e comes from ``default_rng([seed, e])``, so training
resumed from a checkpoint replays exactly the epochs an uninterrupted run would have.

There is no validation gate on the heads: every head is scored, and ``bgs associate`` refers each SNP's
statistic to the control heads' instead.

``MODEL/`` holds ``model.pt`` (best weights), ``config.json``, ``checkpoint.pt`` (last epoch with
optimizer and scheduler state), ``history.tsv`` (per epoch: losses, learning rate and per-SNP validation
balanced accuracy), ``curves.png`` and ``provenance.json``.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from pathlib import Path

import click
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import balanced_accuracy_score
from tqdm import tqdm

from ..errors import GinnError
from ..files import atomic_outputs, provenance_record, write_json, write_tsv
from .images import BgsData
from .model import build_model, predict_proba, save_trained, training_loss
from ..contract import stage_default, stage_options
from ..device import resolve_device
from ..threads import use_threads

log = logging.getLogger(__name__)

# Optimiser defaults. The method trains with AdamW, weight decay 8e-5, batch 20, ReduceLROnPlateau and early
# stopping on validation balanced accuracy, all kept. Its learning rate 5e-6 learned nothing in 13 epochs on
# CPU-sized synthetic data (sfcn-lite, 8 mm, 300 subjects: validation balanced accuracy stayed at chance);
# 1e-3 predicted both planted SNPs (held-out dosage r 0.57-0.66) where 1e-4 found one (README).
EPOCHS = stage_default("bgs train", "epochs")
BATCH_SIZE = stage_default("bgs train", "batch-size")
LR = stage_default("bgs train", "lr")
WEIGHT_DECAY = stage_default("bgs train", "weight-decay")
PATIENCE = stage_default("bgs train", "patience")
LR_FACTOR = 0.5
LR_PATIENCE = 4


def balanced_sampling_weights(genotypes: np.ndarray) -> np.ndarray:
    """Per-subject draw probability: inverse of the summed class counts of its genotypes across SNPs.

    A missing call counts as the SNP's most common class so it neither boosts nor hides a subject.
    """
    filled = genotypes.copy()
    for j in range(filled.shape[1]):
        called = filled[:, j][filled[:, j] >= 0]
        mode = np.bincount(called, minlength=3).argmax() if called.size else 0
        filled[filled[:, j] < 0, j] = mode
    counts = np.stack([np.bincount(filled[:, j], minlength=3) for j in range(filled.shape[1])])
    weights = 1.0 / counts[np.arange(filled.shape[1]), filled].sum(axis=1)
    return weights / weights.sum()


def per_snp_balanced_accuracy(genotypes: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Balanced accuracy of the arg-max class per SNP over called genotypes (NaN if none called)."""
    out = np.full(genotypes.shape[1], np.nan)
    for j in range(genotypes.shape[1]):
        called = genotypes[:, j] >= 0
        if called.any():
            out[j] = balanced_accuracy_score(genotypes[called, j], probabilities[called, j].argmax(axis=1))
    return out


def _validation(model, data: BgsData, rows: np.ndarray, batch_size: int, device: str) -> tuple[float, np.ndarray]:
    """SNP heads' validation cross-entropy and per-SNP balanced accuracy."""
    probabilities = predict_proba(model, data, rows, batch_size, device)[:, :len(data.snps)]
    genotypes = data.genotypes[rows]
    logp = np.log(np.clip(probabilities, 1e-12, 1))
    called = genotypes >= 0
    picked = np.take_along_axis(logp, np.clip(genotypes, 0, 2)[..., None].astype(np.int64), axis=2)[..., 0]
    loss = float(-(picked[called]).mean()) if called.any() else float("nan")
    return loss, per_snp_balanced_accuracy(genotypes, probabilities)


def training_step(model, optimizer, scaler, x: torch.Tensor, labels: torch.Tensor, use_amp: bool) -> torch.Tensor:
    """One AdamW step on the SNP + control loss, in float16 autocast on CUDA; returns the loss."""
    with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
        loss = training_loss(model(x), labels, model.n_snps)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def _plot_curves(history: pd.DataFrame, snps: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot(history["epoch"], history["train_loss"], label="train")
    left.plot(history["epoch"], history["val_loss"], label="validation")
    left.set(xlabel="epoch", ylabel="masked cross-entropy", title="loss")
    left.legend()
    for snp in snps:
        right.plot(history["epoch"], history[f"val_bacc_{snp}"], label=snp)
    right.axhline(1 / 3, color="grey", linestyle=":", label="chance")
    right.set(xlabel="epoch", ylabel="balanced accuracy", title="validation, per SNP")
    right.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _save_checkpoint(path: Path, state: dict) -> None:
    """Write the resumable training state atomically (a crash mid-write leaves the previous one)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def run_train(data_path: str | Path, out: str | Path, *, arch: str = "resnet10-se", width: int | None = None,
              epochs: int = EPOCHS, batch_size: int = BATCH_SIZE, lr: float = LR, weight_decay: float = WEIGHT_DECAY,
              patience: int = PATIENCE, balanced: bool = True, device: str = "auto",
              checkpoint: str | Path | None = None, seed: int = 1) -> pd.DataFrame:
    """Train and write ``MODEL/``; returns the per-epoch history."""
    data = BgsData.load(data_path)
    device = resolve_device(device)
    train_rows, val_rows = data.rows("train"), data.rows("val")
    if len(train_rows) < 2 or len(val_rows) < 1:
        raise GinnError(data_path, "needs at least 2 training and 1 validation subjects")
    config = {"arch": arch, "n_snps": len(data.snps), "snps": data.snps, "n_controls": len(data.control_names),
              "controls": data.control_names, "shape": list(data.grid.shape), "voxel_size": data.grid.voxel_size}
    if width:
        config["width"] = width
    torch.manual_seed(seed)
    model = build_model(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=LR_FACTOR,
                                                           patience=LR_PATIENCE)
    labels = data.labels
    use_amp = device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    weights = balanced_sampling_weights(data.genotypes[train_rows]) if balanced else None
    history: list[dict] = []
    best = {"bacc": -np.inf, "loss": np.inf, "epoch": -1, "state": copy.deepcopy(model.state_dict())}
    start_epoch = 0
    checkpoint = Path(checkpoint) if checkpoint else None
    if checkpoint and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, best, start_epoch = state["history"], state["best"], state["epoch"] + 1
        log.info("bgs train: resuming from %s at epoch %d", checkpoint, start_epoch)

    def training_state() -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "history": history,
                "best": best, "config": config, "epoch": history[-1]["epoch"] if history else -1}

    out = Path(out)
    with atomic_outputs() as outputs:
        folder = outputs.folder(out)
        for epoch in range(start_epoch, epochs):
            if epoch - best["epoch"] > patience:
                break
            started = time.perf_counter()
            rng = np.random.default_rng([seed, epoch])
            order = rng.choice(train_rows, size=len(train_rows), replace=True, p=weights) if balanced \
                else rng.permutation(train_rows)
            model.train()
            losses = []
            batches = range(0, len(order), batch_size)
            for start in tqdm(batches, desc=f"epoch {epoch}", unit="batch", leave=False, disable=None):
                rows = order[start:start + batch_size]
                if len(rows) < 2:  # batch norm needs two volumes
                    continue
                targets = torch.from_numpy(labels[rows]).to(device)
                if not (targets[:, :model.n_snps] >= 0).any():
                    continue
                x = torch.from_numpy(data.batch(rows)).to(device)
                losses.append(training_step(model, optimizer, scaler, x, targets, use_amp).item())
            seconds = time.perf_counter() - started
            val_loss, val_bacc = _validation(model, data, val_rows, batch_size, device)
            mean_bacc = float(np.nanmean(val_bacc))
            history.append({"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], "train_loss": float(np.mean(losses)),
                            "val_loss": val_loss, "val_bacc_mean": mean_bacc, "seconds": seconds,
                            "volumes_per_s": len(order) / seconds,
                            **{f"val_bacc_{s}": b for s, b in zip(data.snps, val_bacc)}})
            log.info("bgs train: epoch %d train loss %.4f val loss %.4f val bacc %.3f", epoch,
                     history[-1]["train_loss"], val_loss, history[-1]["val_bacc_mean"])
            scheduler.step(mean_bacc)
            if (mean_bacc, -val_loss) > (best["bacc"], -best["loss"]):  # the loss breaks ties of the accuracy
                best = {"bacc": mean_bacc, "loss": val_loss, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
            if checkpoint:
                _save_checkpoint(checkpoint, training_state())
        torch.save(training_state(), folder / "checkpoint.pt")
        model.load_state_dict(best["state"])
        config.update(best_epoch=best["epoch"], best_val_bacc=best["bacc"], best_val_loss=best["loss"],
                      epochs_run=len(history))
        save_trained(folder, model, config)
        table = pd.DataFrame(history)
        write_tsv(folder / "history.tsv", table)
        _plot_curves(table, data.snps, folder / "curves.png")
        params = dict(data=str(data_path), arch=arch, width=width, epochs=epochs, batch_size=batch_size, lr=lr,
                      weight_decay=weight_decay, patience=patience, balanced=balanced, device=device,
                      amp=use_amp, out=str(out))
        write_json(folder / "provenance.json", provenance_record(
            "bgs train", params, inputs={"data": data_path}, seed=seed,
            extra={"best_epoch": best["epoch"], "best_val_bacc": best["bacc"]}))
    log.info("bgs train: best epoch %d (val balanced accuracy %.3f) of %d", best["epoch"], best["bacc"], len(history))
    return table


@click.command("train")
@stage_options("bgs train")
def train_command(data_path, out, **params):
    """Train the multi-task 3D CNN predicting each SNP's genotype class from T1 volumes."""
    use_threads(params.pop("threads"))
    run_train(data_path, out, **params)
