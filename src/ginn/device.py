"""The one torch-device resolver of both workflows (``--device`` of train, tune, score and ``ginn bgs``)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from .contract.spec import DEVICE_PATTERN
from .errors import GinnError


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; a CUDA device torch cannot see is an error."""
    import torch

    if not re.match(DEVICE_PATTERN, device):
        raise GinnError("--device", f"expected cpu, cuda, cuda:N or auto, not {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise GinnError("--device", f"{device} requested but this torch build sees no CUDA device")
    return device


@contextlib.contextmanager
def cuda_tf32(enabled: bool) -> Iterator[None]:
    """TF32 for CUDA matmuls and convolutions inside the block (or decorated call) only.

    The flags are process-wide in torch: set by one stage and left behind, they would change the
    numerics of the next stage run in the same process (``ginn run``, the in-memory API)."""
    import torch

    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
