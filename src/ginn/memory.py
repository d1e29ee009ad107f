"""Process-wide memory settings for the torch-heavy stages (training, Shapley scoring)."""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory() -> None:
    """Ask glibc's malloc to keep freed blocks of up to 32 MiB for reuse rather than hand them back
    to the kernel.

    Training steps and Shapley blocks allocate and free the same tensors again and again; memory
    handed back returns as fresh pages, and faulting them in cost ~20% of a CPU training step and
    over half of Monte-Carlo scoring time (``benchmarks/bench_trainer.py``, ``bench_shapley.py``).
    No-op where the C library is not glibc.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)     # glibc's ceiling on 64-bit systems
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)
