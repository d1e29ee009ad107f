"""``ginn train`` and ``ginn tune``: one batched trainer for ensembles, permutations and CV folds.

:func:`train_networks` trains the K networks of a :class:`~ginn.model.GeneNetworkEnsemble` at once.
Network k has its own init seed, target column, L1 strengths and train/validation masks; all see the
same batch rows (one seeded data order for everybody) and the loss is the SUM over networks of each
network's masked mean squared error plus its L1 penalties. Networks share no parameters, so the
gradient, and therefore the Adam update (element-wise), of network k is exactly the one it would get
if trained alone on the same batches; batching changes the speed, not the result, up to float32
summation order. Each network keeps its best-validation weights and stops after ``patience`` epochs
without improvement; once at most half the networks in the batch still run, the survivors are
copied into a smaller module (with their Adam state) so stopped networks cost nothing.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from tqdm import tqdm

from .adam import Adam
from .dataset import Dataset
from .errors import GinnError
from .files import atomic_outputs, provenance_path, provenance_record, write_json
from .memory import keep_freed_memory
from .model import (GENE_HIDDEN, PREDICTOR_HIDDEN, AccumulatedStep, GeneNetworkEnsemble, GenotypeBatcher,
                    make_config, model_device, network_seed, predict,
                    predict_batches, save_ensemble)
from .targets import build_targets, null_model_prediction, parse_permutations
from .threads import use_threads
from .contract import stage_options
from .contract.stages import L1_DEFAULT
from .device import cuda_tf32, resolve_device
from .fused import KERNEL_TILE, FusedNetworks, batch_tiles, kernel_for

log = logging.getLogger(__name__)

# Seed-sequence tags: the data order and the validation split each get their own stream.
_ORDER_STREAM, _SPLIT_STREAM = 0x0D, 0x5A
# Without `ginn tune`, no penalty: on the simulated benchmark (10 genes, 14,000 training samples)
# 1e-4 already cost the m_i-10-1 gene MLPs ~0.1 of test R^2 and left linear gene layers unchanged.
DEFAULT_L1_GRID = (0.0, 1e-5, 1e-4, 1e-3)
# Activation memory one micro-batch of the torch path may take (large networks, GPUs; the fused
# kernel of ginn.fused keeps its own in cache); a 30,000-row batch of many networks is accumulated
# over micro-batches. On CPU small micro-batches are faster: their activations stay in the last-level
# cache and under glibc's 32 MiB mmap ceiling (see ginn.memory); 64 MiB measured best once the hidden
# layers' elementwise passes became C kernels (128 MiB before; 10 genes x 20 SNPs, K = 50 and 500,
# benchmarks/bench_trainer.py --micro-batch-mib). A GPU wants few, large launches.
# Networks per batched run on the CPU. Through the fused kernel 500 to 5,000 at once train at the same
# speed per network (1.0-1.35 ms per network-epoch, 14,019 rows x 10 genes x 20 SNPs, 2 threads); on
# the torch path 50 to 1,000 did (3.8-4.2 ms) and 2,000 or more slowed down (6.4-9.2 ms), their
# micro-batches shrunk to 64 rows against all networks' weights.
CPU_CHUNK_NETWORKS = 500
MICRO_BATCH_BYTES = {"cpu": 64 << 20, "cuda": 2 << 30}


PAPER_BATCH_SIZE = 30_000


def effective_batch_size(requested: int, n_train: int) -> int:
    """``requested`` rows per Adam step, or for 0 the paper's 30,000 capped at a tenth of the training
    rows: on UK Biobank (~300,000 training rows) that is the paper's setting, and on a smaller cohort
    every epoch still takes >= 10 steps, so patience (in epochs) never means only a handful of steps."""
    return requested if requested > 0 else max(1, min(PAPER_BATCH_SIZE, -(-n_train // 10)))


@dataclass
class TrainSettings:
    lr: float = 0.005
    batch_size: int = 0
    max_epochs: int = 500
    patience: int = 20
    seed: int = 0
    device: str = "cpu"
    progress: bool = True
    micro_batch_bytes: int | None = None       # None: MICRO_BATCH_BYTES of the device type


@dataclass
class NetworkPlan:
    """Everything that differs between the K networks of one batched run (arrays of length K)."""
    seeds: np.ndarray
    target_column: np.ndarray
    mask_column: np.ndarray
    l1_gene: np.ndarray
    l1_predictor: np.ndarray

    def __len__(self) -> int:
        return len(self.seeds)

    def subset(self, index: np.ndarray) -> "NetworkPlan":
        return NetworkPlan(*(getattr(self, f)[index] for f in self.__dataclass_fields__))


@dataclass
class TrainResult:
    model: GeneNetworkEnsemble          # best-validation weights of every network, on the CPU
    epochs: np.ndarray                  # epochs each network ran
    best_epoch: np.ndarray              # epoch (1-based) of its best validation MSE
    best_val_mse: np.ndarray
    history: list[np.ndarray] = field(default_factory=list)  # validation MSE per epoch (K,), NaN once stopped
    epoch_seconds: list[float] = field(default_factory=list)  # wall time of each epoch (training + validation)


def _micro_batch_rows(model: GeneNetworkEnsemble, budget: int) -> int:
    """Rows per micro-batch so that the autograd activations stay within ``budget`` bytes."""
    k, m, hg, h = model.n_networks, model.n_genes, model.gene_hidden, model.hidden
    # per network: hidden activations (kept for the backward) and their masked gradient (on CPU it
    # overwrites them, so half of that is spare there), the gene values and their gradient; per row:
    # the float genotypes and their int8 source
    floats_per_row = k * (2 * m * hg + 2 * h + 4 * m) + 2 * model.n_snps
    rows = budget // (4 * floats_per_row)
    # BLAS kernels run markedly faster (~1.5x here) when the row count is a multiple of their tile
    return max(64, rows - rows % 256 if rows >= 256 else rows - rows % 64)


def _masked_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Per-network sum of weighted squared errors, shape (K,)."""
    return ((pred - target) ** 2 * weight).sum(dim=1)


@cuda_tf32(True)   # 10-bit-mantissa products: the training noise of Adam's minibatches is far larger
def train_networks(config: dict[str, Any], genotypes: np.ndarray, snp_mean: np.ndarray, targets: np.ndarray,
                   train_masks: np.ndarray, val_masks: np.ndarray, plan: NetworkPlan,
                   settings: TrainSettings) -> TrainResult:
    """Train ``len(plan)`` networks at once on the rows of ``genotypes`` (int8, N x P).

    ``targets`` is (N, D) and network k fits column ``plan.target_column[k]``; ``train_masks`` and
    ``val_masks`` are (S, N) bool and network k uses row ``plan.mask_column[k]`` of both. Batches
    run over the rows that any network trains on, in an order drawn from ``settings.seed`` alone.
    """
    device = torch.device(settings.device)
    if device.type == "cpu":
        keep_freed_memory()
    k_total = len(plan)
    model = GeneNetworkEnsemble({**config, "n_networks": k_total}, seeds=plan.seeds).to(device)
    best = [p.detach().clone() for p in model.parameters()]
    batcher = GenotypeBatcher(genotypes, snp_mean, config["gene_sizes"], device)
    targets_t = torch.from_numpy(np.asarray(targets, dtype=np.float32)).to(device)
    train_w = torch.from_numpy(np.asarray(train_masks, dtype=np.float32)).to(device)
    val_w = torch.from_numpy(np.asarray(val_masks, dtype=np.float32)).to(device)
    train_rows = np.flatnonzero(np.asarray(train_masks).any(axis=0))
    val_rows = torch.from_numpy(np.flatnonzero(np.asarray(val_masks).any(axis=0))).to(device)
    if len(train_rows) == 0:
        raise ValueError("no network has training rows")

    active = np.arange(k_total)                       # network id of each slot of `model`
    order_rng = np.random.default_rng([settings.seed, _ORDER_STREAM])
    best_val = np.full(k_total, np.inf)
    best_epoch = np.zeros(k_total, dtype=int)
    epochs = np.zeros(k_total, dtype=int)
    waited = np.zeros(k_total, dtype=int)
    done = np.zeros(k_total, dtype=bool)
    history: list[np.ndarray] = []
    epoch_seconds: list[float] = []
    optimizer = Adam(model.parameters(), settings.lr)

    def slot_tensors(ids: np.ndarray):
        idx = torch.from_numpy(plan.target_column[ids]).to(device)
        masks = torch.from_numpy(plan.mask_column[ids]).to(device)
        l1 = torch.tensor(np.stack([plan.l1_gene[ids], plan.l1_predictor[ids]], 1), dtype=torch.float32, device=device)
        return idx, masks, l1                                           # l1: (K, 2), gene and predictor

    target_idx, mask_idx, l1 = slot_tensors(active)
    micro_budget = settings.micro_batch_bytes or MICRO_BATCH_BYTES.get(device.type, MICRO_BATCH_BYTES["cuda"])
    micro = _micro_batch_rows(model, micro_budget)
    fused = kernel_for(model)
    bar = tqdm(range(1, settings.max_epochs + 1), desc="train", unit="epoch", disable=None if settings.progress else True)
    batch_size = effective_batch_size(settings.batch_size, len(train_rows))
    for epoch in bar:
        started = time.perf_counter()
        order = torch.from_numpy(train_rows[order_rng.permutation(len(train_rows))]).to(device)
        model.train()
        for start in range(0, len(order), batch_size):
            batch = order[start: start + batch_size]
            batch_masks = train_w.index_select(1, batch)
            counts = batch_masks.sum(dim=1).clamp(min=1.0)[mask_idx]
            # the kernel keeps its gradients' address tables while they stay in place
            optimizer.zero_grad(set_to_none=fused is None)
            if fused is not None:                                      # loss and penalty in one C pass
                fused.add_gradients(model, batch_tiles(batcher, batch), targets_t.index_select(0, batch).T, batch_masks,
                                    target_idx, mask_idx, 1.0 / counts, l1)
            else:
                step = AccumulatedStep(model)
                for part in batch.split(micro):
                    pred = step.forward(batcher.padded_t(part))
                    weight = train_w.index_select(1, part)[mask_idx]
                    target = targets_t.index_select(0, part)[:, target_idx].T
                    loss = (_masked_mse(pred, target, weight) / counts).sum()
                    loss.backward()
                step.backward()
                penalty = (l1[:, 0] * model.gene_weight_l1() + l1[:, 1] * model.predictor_weight_l1()).sum()
                penalty.backward()
            optimizer.step()

        val_mse = _validation_mse(model, batcher, targets_t, val_w, val_rows, target_idx, mask_idx, micro, fused)
        live = ~done[active]             # a stopped network may still sit in the batch until it shrinks
        epochs[active[live]] = epoch
        improved = live & (val_mse < best_val[active])
        best_val[active[improved]] = val_mse[improved]
        best_epoch[active[improved]] = epoch
        waited[active[live]] = np.where(improved[live], 0, waited[active[live]] + 1)
        done[active] |= waited[active] >= settings.patience
        if improved.any():
            slots = torch.from_numpy(np.flatnonzero(improved)).to(device)
            ids = torch.from_numpy(active[improved]).to(device)
            with torch.no_grad():
                for keep, param in zip(best, model.parameters()):
                    keep[ids] = param[slots]
        epoch_val = np.full(k_total, np.nan)
        epoch_val[active[live]] = val_mse[live]
        history.append(epoch_val)
        epoch_seconds.append(time.perf_counter() - started)

        running = ~done[active]
        bar.set_postfix(running=int(running.sum()), val=float(np.mean(best_val[active])))
        if not running.any():
            break
        if running.sum() <= len(active) // 2:
            model, optimizer = _keep_slots(model, optimizer, np.flatnonzero(running))
            active = active[running]
            target_idx, mask_idx, l1 = slot_tensors(active)
            micro = _micro_batch_rows(model, micro_budget)
    bar.close()

    final = GeneNetworkEnsemble({**config, "n_networks": k_total})
    with torch.no_grad():
        for param, keep in zip(final.parameters(), best):
            param.copy_(keep.cpu())
    return TrainResult(final, epochs, best_epoch, best_val, history, epoch_seconds)


@torch.no_grad()
def _validation_mse(model, batcher, targets_t, val_w, val_rows, target_idx, mask_idx, micro,
                    fused: FusedNetworks | None) -> np.ndarray:
    model.eval()
    sse = torch.zeros(model.n_networks, dtype=torch.float64, device=targets_t.device)
    # the torch path rearranges the weights once, not per micro-batch (it copies every gene weight)
    weights = model.compute_weights() if fused is None else None
    for part in val_rows.split(fused.call_tiles * KERNEL_TILE if fused is not None else micro):
        if fused is not None:
            pred = fused.predictions(model, batch_tiles(batcher, part), len(part))
        else:
            pred = model.forward_padded(batcher.padded_t(part), weights)
        target = targets_t.index_select(0, part)[:, target_idx].T
        sse += _masked_mse(pred, target, val_w.index_select(1, part)[mask_idx]).double()
    count = val_w[mask_idx].sum(dim=1).double().clamp(min=1.0)
    return (sse / count).cpu().numpy()


def _keep_slots(model: GeneNetworkEnsemble, optimizer: Adam, slots: np.ndarray):
    """Shrink the batched model (and its Adam moments) to the networks still running."""
    index = torch.from_numpy(slots).to(model_device(model))
    smaller = model.select(index)
    return smaller, optimizer.select(smaller.parameters(), index)


# ---- metrics ---------------------------------------------------------------------------------------

def _mse_r2(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """MSE and R^2 = 1 - SSE/SST (SST about the rows' own mean)."""
    if len(target) == 0:
        return math.nan, math.nan
    sse = float(np.sum((pred.astype(np.float64) - target) ** 2))
    sst = float(np.sum((target - target.mean()) ** 2))
    return sse / len(target), (1.0 - sse / sst) if sst > 0 else math.nan


def network_metrics(train_pred: np.ndarray, test_pred: np.ndarray, train_targets: np.ndarray,
                    test_targets: np.ndarray, train_masks: np.ndarray, val_masks: np.ndarray,
                    plan: NetworkPlan) -> list[dict[str, float]]:
    """Per network train/val/test MSE and R^2 on its own target column and rows."""
    rows = []
    for k in range(len(plan)):
        col, mask = plan.target_column[k], plan.mask_column[k]
        record = {}
        for part, pred, target, keep in (("train", train_pred[k], train_targets[:, col], train_masks[mask]),
                                         ("val", train_pred[k], train_targets[:, col], val_masks[mask]),
                                         ("test", test_pred[k], test_targets[:, col], None)):
            chosen = slice(None) if keep is None else keep
            record[f"{part}_mse"], record[f"{part}_r2"] = _mse_r2(pred[chosen], target[chosen].astype(np.float64))
        rows.append(record)
    return rows


# ---- shared pieces of the two commands --------------------------------------------------------------

def validation_split(n_train: int, fraction: float, seed: int, stream: tuple[int, ...] = ()) -> np.ndarray:
    """Seeded bool mask of the training rows held out for early stopping (``stream`` tells apart the
    splits of one seed, e.g. one per CV fold)."""
    if not 0 < fraction < 1:
        raise GinnError("--val-fraction", f"must be between 0 and 1, not {fraction}")
    n_val = int(round(fraction * n_train))
    if n_val < 1 or n_val >= n_train:
        raise GinnError("--val-fraction", f"{fraction} of {n_train} training samples leaves no train or no validation rows")
    val = np.zeros(n_train, dtype=bool)
    val[np.random.default_rng([seed, _SPLIT_STREAM, *stream]).choice(n_train, n_val, replace=False)] = True
    return val


def model_config(dataset: Dataset, model_kind: str, predictor_hidden: int, gene_layer: str) -> dict[str, Any]:
    hidden = 0 if model_kind == "main" else predictor_hidden
    return make_config(dataset.gene_sizes, 1, predictor_hidden=hidden, gene_hidden=GENE_HIDDEN, gene_layer=gene_layer)


def train_in_chunks(config, genotypes, snp_mean, targets, train_masks, val_masks, plan: NetworkPlan,
                    settings: TrainSettings, chunk: int | None) -> TrainResult:
    """Train the plan in chunks of at most ``chunk`` networks (same data order in every chunk); by default
    all at once on a GPU, :data:`CPU_CHUNK_NETWORKS` at a time on the CPU."""
    chunk = chunk or (len(plan) if torch.device(settings.device).type == "cuda" else CPU_CHUNK_NETWORKS)
    parts = []
    for start in range(0, len(plan), chunk):
        sub = plan.subset(np.arange(start, min(start + chunk, len(plan))))
        if len(plan) > chunk:
            log.info("networks %d-%d of %d", start + 1, start + len(sub), len(plan))
        parts.append(train_networks(config, genotypes, snp_mean, targets, train_masks, val_masks, sub, settings))
    if len(parts) == 1:
        return parts[0]
    n_epochs = max(len(p.history) for p in parts)
    history = [np.concatenate([p.history[e] if e < len(p.history) else np.full(len(p.epochs), np.nan)
                               for p in parts]) for e in range(n_epochs)]
    return TrainResult(GeneNetworkEnsemble.concat([p.model for p in parts]),
                       *(np.concatenate([getattr(p, f) for p in parts]) for f in ("epochs", "best_epoch", "best_val_mse")),
                       history)


def validation_curve(result: TrainResult, k: int) -> list[float]:
    """Network k's validation MSE per epoch until it stopped."""
    curve = np.array([epoch[k] for epoch in result.history], dtype=float)
    return curve[~np.isnan(curve)].round(6).tolist()


def read_hparams(path: str | Path) -> dict[str, float]:
    """The L1 strengths chosen by ``ginn tune`` (keys ``l1_gene`` and ``l1_predictor``)."""
    path = Path(path)
    if not path.is_file():
        raise GinnError(path, "hyper-parameter file not found (make one with `ginn tune`)")
    try:
        hparams = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GinnError(path, f"not valid JSON: {exc}") from None
    if not isinstance(hparams, dict):
        raise GinnError(path, "expected a JSON object with l1_gene and l1_predictor")
    missing = [key for key in ("l1_gene", "l1_predictor") if key not in hparams]
    if missing:
        raise GinnError(path, f"hyper-parameter file lacks {', '.join(missing)}")
    for key in ("l1_gene", "l1_predictor"):
        value = hparams[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < math.inf:
            raise GinnError(path, f"{key} must be a finite number >= 0, not {value!r}")
    return {"l1_gene": float(hparams["l1_gene"]), "l1_predictor": float(hparams["l1_predictor"])}


# ---- ginn train --------------------------------------------------------------------------------------

def run_train(data, out, *, model_kind="interaction", members=50, hparams=None, l1_gene=None, l1_predictor=None,
              target="observed", permutations=None, null_model=None, predictor_hidden=PREDICTOR_HIDDEN,
              gene_layer="mlp", val_fraction=0.2, chunk_networks=None, seed=0,
              settings: TrainSettings | None = None) -> dict[str, Any]:
    """Train ``members`` networks per target dataset in one batched run and write MODELS/."""
    settings = settings or TrainSettings(seed=seed)
    settings.seed = seed
    perm_ids = None if target == "observed" else parse_permutations(permutations)
    if target == "observed" and permutations is not None:
        raise GinnError("--permutations", "only applies to permuted targets (--target perm-I/perm-T/perm-R)")
    if target in ("perm-I", "perm-R") and null_model is None:
        raise GinnError("--null-model", f"--target {target} needs --null-model DIR (a `ginn train --model main` ensemble)")
    l1 = read_hparams(hparams) if hparams else {"l1_gene": L1_DEFAULT, "l1_predictor": L1_DEFAULT}
    l1 = {"l1_gene": l1["l1_gene"] if l1_gene is None else l1_gene,
          "l1_predictor": l1["l1_predictor"] if l1_predictor is None else l1_predictor}
    dataset = Dataset.load(data)
    config = model_config(dataset, model_kind, predictor_hidden, gene_layer)
    null_pred = null_model_prediction(null_model, dataset) if null_model and target != "perm-T" else None
    targets, names = build_targets(dataset.target, dataset.is_test, target, seed, perm_ids, null_pred)

    train_idx, test_idx = dataset.train_idx, dataset.test_idx
    val = validation_split(len(train_idx), val_fraction, seed)
    train_masks, val_masks = (~val)[None, :], val[None, :]
    networks = []
    for name in names:
        for member in range(members):
            networks.append({"dataset": name, "member": member, "seed": network_seed(seed, member), **l1})
    plan = NetworkPlan(seeds=np.array([n["seed"] for n in networks], dtype=np.int64),
                       target_column=np.repeat(np.arange(len(names)), members),
                       mask_column=np.zeros(len(networks), dtype=int),
                       l1_gene=np.full(len(networks), l1["l1_gene"]),
                       l1_predictor=np.full(len(networks), l1["l1_predictor"]))
    log.info("train: %d %s networks (%d datasets x %d members) on %d samples, %d SNPs, %d genes",
             len(plan), model_kind, len(names), members, len(train_idx), dataset.n_snps, dataset.n_genes)
    genotypes = np.asarray(dataset.genotypes[train_idx])
    result = train_in_chunks(config, genotypes, dataset.snp_mean, targets[train_idx], train_masks, val_masks,
                             plan, settings, chunk_networks)

    batcher = GenotypeBatcher(genotypes, dataset.snp_mean, config["gene_sizes"])
    train_pred = predict_batches(result.model, batcher.padded_t, np.arange(len(train_idx)))
    test_pred = predict(result.model, dataset, test_idx)
    per_network = network_metrics(train_pred, test_pred, targets[train_idx], targets[test_idx],
                                  train_masks, val_masks, plan)
    for record, net, k in zip(per_network, networks, range(len(plan))):
        record.update({**net, "epochs": int(result.epochs[k]), "best_epoch": int(result.best_epoch[k])})
        if net["dataset"] == "observed":  # curves for the report; permuted copies would only bloat the file
            record["history"] = {"val_mse": validation_curve(result, k)}
    ensembles = []
    for column, name in enumerate(names):
        members_k = plan.target_column == column
        mse, r2 = _mse_r2(test_pred[members_k].mean(axis=0), targets[test_idx, column].astype(np.float64))
        ensembles.append({"dataset": name, "members": int(members_k.sum()), "test_mse": mse, "test_r2": r2})
    metrics = {"model": model_kind, "target": target, "networks": per_network, "ensembles": ensembles}

    params = {"data": str(data), "out": str(out), "model": model_kind, "members": members, "hparams": hparams,
              **l1, "target": target, "permutations": permutations, "null_model": null_model,
              "predictor_hidden": config["predictor_hidden"], "gene_layer": gene_layer,
              "val_fraction": val_fraction, "chunk_networks": chunk_networks, "lr": settings.lr,
              "batch_size": settings.batch_size, "max_epochs": settings.max_epochs,
              "patience": settings.patience, "device": settings.device}
    inputs = {"data": data, **({"hparams": hparams} if hparams else {}), **({"null_model": null_model} if null_model else {})}
    with atomic_outputs() as outputs:
        folder = outputs.folder(out)
        save_ensemble(folder, result.model, networks, extra={
            "model": model_kind, "target": target, "datasets": names, "seed": seed,
            "genes": dataset.genes, "null_model": None if null_model is None else str(null_model)})
        write_json(folder / "metrics.json", metrics)
        write_json(folder / "provenance.json", provenance_record("train", params, inputs=inputs, seed=seed))
    for record in ensembles[:3]:
        log.info("train: %s ensemble of %d: test R2 %.4f", record["dataset"], record["members"], record["test_r2"])
    return metrics


@click.command("train")
@stage_options("train")
def train_command(data, model_kind, predictor_hidden, gene_layer, lr, batch_size, max_epochs, patience,
                  val_fraction, device, chunk_networks, seed, threads, members, hparams, l1_gene, l1_predictor,
                  target, permutations, null_model, out):
    """Train a deep ensemble (and permuted-target ensembles) as one batched run.

    Every (target dataset, member) pair is one network; member m starts from a seed derived from
    (--seed, m) only, so observed and permuted ensembles share their initialisations.
    """
    use_threads(threads)
    settings = TrainSettings(lr=lr, batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                             device=resolve_device(device))
    run_train(data, out, model_kind=model_kind, members=members, hparams=hparams, l1_gene=l1_gene,
              l1_predictor=l1_predictor, target=target, permutations=permutations, null_model=null_model,
              predictor_hidden=predictor_hidden, gene_layer=gene_layer, val_fraction=val_fraction,
              chunk_networks=chunk_networks, seed=seed, settings=settings)


# ---- ginn tune ---------------------------------------------------------------------------------------

def cv_folds(n_rows: int, folds: int, seed: int) -> np.ndarray:
    """Seeded fold number of each training row; fold sizes differ by at most one."""
    if not 2 <= folds <= n_rows:
        raise GinnError("--folds", f"need 2 <= folds <= {n_rows} training samples, not {folds}")
    return np.random.default_rng([seed, _SPLIT_STREAM, folds]).permutation(np.arange(n_rows) % folds)


def run_tune(data, out, *, model_kind="interaction", folds=5, l1_grid=DEFAULT_L1_GRID, l1_predictor_grid=None,
             members=1, predictor_hidden=PREDICTOR_HIDDEN, gene_layer="mlp", val_fraction=0.2,
             chunk_networks=None, seed=0, settings: TrainSettings | None = None) -> dict[str, Any]:
    """K-fold CV of the L1 strengths on the training samples as ONE batched run of
    folds x grid x members networks; writes the chosen strengths and the CV curve to ``out``."""
    settings = settings or TrainSettings(seed=seed)
    settings.seed = seed
    dataset = Dataset.load(data)
    config = model_config(dataset, model_kind, predictor_hidden, gene_layer)
    train_idx = dataset.train_idx
    fold_of = cv_folds(len(train_idx), folds, seed)
    train_masks = np.zeros((folds, len(train_idx)), dtype=bool)
    val_masks = np.zeros_like(train_masks)
    for f in range(folds):
        rest = np.flatnonzero(fold_of != f)
        early = validation_split(len(rest), val_fraction, seed, stream=(f,))
        train_masks[f, rest[~early]] = True
        val_masks[f, rest[early]] = True
    grid = ([(g, g) for g in l1_grid] if l1_predictor_grid is None
            else [(g, p) for g in l1_grid for p in l1_predictor_grid])
    cells = [(f, point, member) for f in range(folds) for point in range(len(grid)) for member in range(members)]
    plan = NetworkPlan(seeds=np.array([network_seed(seed, m) for _, _, m in cells], dtype=np.int64),
                       target_column=np.zeros(len(cells), dtype=int),
                       mask_column=np.array([f for f, _, _ in cells]),
                       l1_gene=np.array([grid[p][0] for _, p, _ in cells]),
                       l1_predictor=np.array([grid[p][1] for _, p, _ in cells]))
    log.info("tune: %d folds x %d L1 settings x %d members = %d networks in one batched run",
             folds, len(grid), members, len(plan))
    genotypes = np.asarray(dataset.genotypes[train_idx])
    y = dataset.target[train_idx][:, None]
    result = train_in_chunks(config, genotypes, dataset.snp_mean, y, train_masks, val_masks, plan, settings,
                             chunk_networks)
    batcher = GenotypeBatcher(genotypes, dataset.snp_mean, config["gene_sizes"])
    pred = predict_batches(result.model, batcher.padded_t, np.arange(len(train_idx)))

    curve = []
    cell_index = np.array([[f, p] for f, p, _ in cells])
    for p, (l1g, l1p) in enumerate(grid):
        fold_mse = []
        for f in range(folds):
            chosen = (cell_index[:, 0] == f) & (cell_index[:, 1] == p)
            held = fold_of == f
            fold_mse.append(_mse_r2(pred[chosen][:, held].mean(axis=0), y[held, 0].astype(np.float64))[0])
        curve.append({"l1_gene": l1g, "l1_predictor": l1p, "fold_mse": fold_mse,
                      "mean_mse": float(np.mean(fold_mse)), "se_mse": float(np.std(fold_mse, ddof=1) / np.sqrt(folds)),
                      "mean_epochs": float(result.best_epoch[cell_index[:, 1] == p].mean())})
    best = min(curve, key=lambda row: row["mean_mse"])
    hparams = {"l1_gene": best["l1_gene"], "l1_predictor": best["l1_predictor"], "model": model_kind,
               "predictor_hidden": config["predictor_hidden"], "gene_layer": gene_layer, "folds": folds,
               "members": members, "seed": seed, "cv": curve}
    params = {"data": str(data), "out": str(out), "model": model_kind, "folds": folds, "l1_grid": list(l1_grid),
              "l1_predictor_grid": None if l1_predictor_grid is None else list(l1_predictor_grid),
              "members": members, "predictor_hidden": config["predictor_hidden"], "gene_layer": gene_layer,
              "val_fraction": val_fraction, "lr": settings.lr, "batch_size": settings.batch_size,
              "max_epochs": settings.max_epochs, "patience": settings.patience, "device": settings.device}
    with atomic_outputs() as outputs:
        write_json(outputs.file(out), hparams)
        write_json(outputs.file(provenance_path(out)), provenance_record("tune", params, inputs={"data": data}, seed=seed))
    log.info("tune: chosen l1_gene %g, l1_predictor %g (CV MSE %.4f)", best["l1_gene"], best["l1_predictor"], best["mean_mse"])
    return hparams


@click.command("tune")
@stage_options("tune")
def tune_command(data, model_kind, predictor_hidden, gene_layer, lr, batch_size, max_epochs, patience, val_fraction,
                 device, chunk_networks, seed, threads, folds, l1_grid, l1_predictor_grid, members, out):
    """Choose the L1 strengths by K-fold cross-validation on the training samples, batched."""
    use_threads(threads)
    settings = TrainSettings(lr=lr, batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                             device=resolve_device(device))
    run_tune(data, out, model_kind=model_kind, folds=folds, l1_grid=l1_grid, l1_predictor_grid=l1_predictor_grid,
             members=members, predictor_hidden=predictor_hidden, gene_layer=gene_layer, val_fraction=val_fraction,
             chunk_networks=chunk_networks, seed=seed, settings=settings)
