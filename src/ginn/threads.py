"""CPU threads of the compute stages: one ``--threads`` option, defaulting to the CPUs given to the task.

torch's own default is every core of the machine, and numpy's OpenBLAS starts its own pool on top:
on a shared machine or in a Nextflow task that reserved fewer CPUs both oversubscribe, and a busy
2-core machine ran ``ginn score`` 10x slower with torch's default than with one thread. Every
compute stage therefore calls :func:`use_threads` once with its ``--threads`` value.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

from .contract.stages import THREADS

# Default for every stage when set (``ginn run --threads`` sets it for the stages it runs).
THREADS_ENV = "GINN_THREADS"
# Exported by a Nextflow task that wants its ``task.cpus`` to be the default.
NEXTFLOW_CPUS_ENV = "NXF_TASK_CPUS"


def _positive_env(name: str) -> int | None:
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return None
    return value if value >= 1 else None


def _cgroup_cpus() -> int | None:
    """CPUs allowed by the cgroup's CPU quota (v2 ``cpu.max`` or v1 ``cfs_quota_us``), if any."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return max(1, math.ceil(quota / period)) if quota > 0 else None
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """CPUs given to this task: ``GINN_THREADS``, else ``NXF_TASK_CPUS``, else the smaller of the
    cgroup quota and the CPUs this process may run on."""
    for name in (THREADS_ENV, NEXTFLOW_CPUS_ENV):
        value = _positive_env(name)
        if value:
            return value
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:          # not Linux
        affinity = os.cpu_count() or 1
    quota = _cgroup_cpus()
    return min(affinity, quota) if quota else affinity


def use_threads(threads: int | None) -> int:
    """Set torch's intra-op threads and every BLAS pool to ``threads`` (default: :func:`available_cpus`)."""
    count = threads or available_cpus()
    torch.set_num_threads(count)
    threadpool_limits(count)
    return count


@contextlib.contextmanager
def threads_default(threads: int | None) -> Iterator[None]:
    """Make ``threads`` (if given) the default of every stage run inside the block, e.g. by ``ginn run``."""
    before = os.environ.get(THREADS_ENV)
    if threads:
        os.environ[THREADS_ENV] = str(threads)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(THREADS_ENV, None)
        else:
            os.environ[THREADS_ENV] = before


# --threads of every compute stage and of `ginn run`, as the stage contract defines it
threads_option = THREADS.click_decorator()
