"""Multi-task 3D CNNs mapping a T1 volume to one 3-class genotype head per SNP.

``resnet10-se`` is the paper's network: a MedicalNet-style 3D ResNet-10 (7^3 stem with stride 2, max
pooling, four basic-block stages of 64/128/256/512 channels, the last two dilated instead of strided)
with squeeze-and-excitation on each block, global average pooling to 512 features. ``sfcn-lite`` is a
small SFCN-style stack (conv-BN-pool-ReLU blocks, 1x1 conv, global average pooling) for CPU work.

All SNP heads are one ``Linear`` to 3*S outputs, reshaped to (batch, S, 3): one matrix multiply instead
of S small ones, and the per-SNP softmax probabilities are the brain-genotype scores. Negative-control heads
(one ``Linear`` to 3*K) read the same pooled features through a stop-gradient: they learn permuted labels
from whatever the shared features carry without shaping those features, so a control's score is what a
head without genotype signal makes of the shared anatomy, and the SNP heads train exactly as without them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import GinnError
from ..files import load_weights, write_json

ARCHITECTURES = ("resnet10-se", "sfcn-lite")
N_CLASSES = 3


class SqueezeExcite3d(nn.Module):
    """Channel re-weighting from globally pooled activations (Hu et al. 2018)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.gate = nn.Sequential(nn.Linear(channels, hidden, bias=False), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, channels, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.gate(x.mean(dim=(2, 3, 4)))
        return x * weights[:, :, None, None, None]


class SEBasicBlock3d(nn.Module):
    """Two 3^3 convolutions with batch norm, SE gating before the residual sum."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv3d(in_channels, channels, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm3d(channels)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm3d(channels)
        self.se = SqueezeExcite3d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity() if stride == 1 and in_channels == channels else nn.Sequential(
            nn.Conv3d(in_channels, channels, 1, stride=stride, bias=False), nn.BatchNorm3d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        return self.relu(out + self.shortcut(x))


class MultiTaskCNN(nn.Module):
    """A feature extractor to ``n_features`` pooled features plus batched per-SNP 3-class heads."""

    def __init__(self, features: nn.Module, n_features: int, n_snps: int, n_controls: int = 0):
        super().__init__()
        self.features = features
        self.n_snps = n_snps
        self.n_controls = n_controls
        self.heads = nn.Linear(n_features, N_CLASSES * n_snps)
        self.control_heads = nn.Linear(n_features, N_CLASSES * n_controls) if n_controls else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, n_snps + n_controls, 3): SNP heads, then control heads."""
        pooled = self.features(x).mean(dim=(2, 3, 4))
        logits = self.heads(pooled)
        if self.control_heads is not None:
            logits = torch.cat([logits, self.control_heads(pooled.detach())], dim=1)
        return logits.view(-1, self.n_snps + self.n_controls, N_CLASSES)


def resnet10_se_features(width: int = 64) -> tuple[nn.Module, int]:
    channels = [width, 2 * width, 4 * width, 8 * width]
    layers = nn.Sequential(
        nn.Conv3d(1, channels[0], 7, stride=2, padding=3, bias=False), nn.BatchNorm3d(channels[0]),
        nn.ReLU(inplace=True), nn.MaxPool3d(3, stride=2, padding=1),
        SEBasicBlock3d(channels[0], channels[0]),
        SEBasicBlock3d(channels[0], channels[1], stride=2),
        SEBasicBlock3d(channels[1], channels[2], dilation=2),
        SEBasicBlock3d(channels[2], channels[3], dilation=4))
    return layers, channels[3]


def sfcn_lite_features(width: int = 16) -> tuple[nn.Module, int]:
    channels = [width, 2 * width, 4 * width, 4 * width]
    blocks: list[nn.Module] = []
    previous = 1
    for c in channels:
        blocks += [nn.Conv3d(previous, c, 3, padding=1, bias=False), nn.BatchNorm3d(c), nn.MaxPool3d(2, ceil_mode=True),
                   nn.ReLU(inplace=True)]
        previous = c
    blocks += [nn.Conv3d(previous, 2 * previous, 1, bias=False), nn.BatchNorm3d(2 * previous), nn.ReLU(inplace=True)]
    return nn.Sequential(*blocks), 2 * previous


def build_model(config: dict[str, Any]) -> MultiTaskCNN:
    """The network described by a JSON-able config: ``arch``, ``n_snps``, optional ``n_controls``, ``width``."""
    arch = config["arch"]
    if arch == "resnet10-se":
        features, n_features = resnet10_se_features(config.get("width", 64))
    elif arch == "sfcn-lite":
        features, n_features = sfcn_lite_features(config.get("width", 16))
    else:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    return MultiTaskCNN(features, n_features, config["n_snps"], config.get("n_controls", 0))


def masked_cross_entropy(logits: torch.Tensor, genotypes: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the called genotypes of all SNPs; missing calls (-1) are skipped."""
    return nn.functional.cross_entropy(logits.reshape(-1, N_CLASSES).float(), genotypes.reshape(-1).long(),
                                       ignore_index=-1)


def training_loss(logits: torch.Tensor, labels: torch.Tensor, n_snps: int) -> torch.Tensor:
    """SNP heads' masked cross-entropy plus, as a separate mean, the control heads' (their own weights only).

    Two means, so the number of controls changes neither the SNP heads' gradient scale nor the features'.
    """
    loss = masked_cross_entropy(logits[:, :n_snps], labels[:, :n_snps])
    if logits.shape[1] > n_snps and (labels[:, n_snps:] >= 0).any():
        loss = loss + masked_cross_entropy(logits[:, n_snps:], labels[:, n_snps:])
    return loss


def save_trained(folder, model: MultiTaskCNN, config: dict[str, Any]) -> None:
    """``model.pt`` (state dict) and ``config.json`` in a model folder."""
    torch.save(model.state_dict(), Path(folder) / "model.pt")
    write_json(Path(folder) / "config.json", config)


def load_trained(folder, device: str = "cpu") -> tuple[MultiTaskCNN, dict[str, Any]]:
    """The trained network (eval mode) and its config from a ``ginn bgs train`` folder."""
    folder = Path(folder)
    for name in ("model.pt", "config.json"):
        if not (folder / name).is_file():
            raise GinnError(folder, f"not a trained model folder (no {name}); run `ginn bgs train`")
    try:
        config = json.loads((folder / "config.json").read_text())
        model = build_model(config)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise GinnError(folder / "config.json", f"malformed model description: {exc}") from None
    load_weights(model, folder / "model.pt")
    return model.to(device).eval(), config


@torch.no_grad()
def predict_proba(model: MultiTaskCNN, data, rows, batch_size: int = 16, device: str = "cpu"):
    """Softmax class probabilities (n_rows, n_snps, 3) as float64 numpy for rows of a prepared dataset."""
    model.eval()
    out = []
    for start in range(0, len(rows), batch_size):
        x = torch.from_numpy(data.batch(rows[start:start + batch_size])).to(device)
        out.append(torch.softmax(model(x).float(), dim=-1).cpu().numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, model.n_snps + model.n_controls, N_CLASSES))
