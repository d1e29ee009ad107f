"""One thread count for every compute stage: the task's CPUs by default, never more."""

from __future__ import annotations

import os

import pytest
import torch
from threadpoolctl import threadpool_info

from ginn import threads as threads_mod
from ginn.threads import available_cpus, threads_default, use_threads


@pytest.fixture(autouse=True)
def _restore_threads(monkeypatch):
    monkeypatch.delenv(threads_mod.THREADS_ENV, raising=False)
    monkeypatch.delenv(threads_mod.NEXTFLOW_CPUS_ENV, raising=False)
    before = torch.get_num_threads()
    yield
    use_threads(before)


def test_default_is_the_cpus_this_process_may_use():
    assert available_cpus() == min(len(os.sched_getaffinity(0)), threads_mod._cgroup_cpus() or 10 ** 6)


def test_environment_sets_the_default_in_order(monkeypatch):
    monkeypatch.setenv(threads_mod.NEXTFLOW_CPUS_ENV, "3")
    assert available_cpus() == 3
    monkeypatch.setenv(threads_mod.THREADS_ENV, "5")
    assert available_cpus() == 5
    monkeypatch.setenv(threads_mod.THREADS_ENV, "zero")       # not a count: ignored
    assert available_cpus() == 3


def test_use_threads_sets_torch_and_blas():
    assert use_threads(1) == 1
    assert torch.get_num_threads() == 1
    assert all(pool["num_threads"] == 1 for pool in threadpool_info())


def test_threads_default_is_scoped():
    with threads_default(4):
        assert available_cpus() == 4
    assert threads_mod.THREADS_ENV not in os.environ


def test_tf32_setting_of_a_stage_does_not_leak_into_the_next():
    """Training allows TF32 on CUDA and scoring forbids it; torch's flags are process-wide, so each
    must be restored when its stage returns (``ginn run`` runs stages in one process)."""
    import torch

    from ginn.device import cuda_tf32

    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32

    @cuda_tf32(not before[0])
    def stage():
        return torch.backends.cuda.matmul.allow_tf32

    assert stage() is (not before[0])
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    with pytest.raises(RuntimeError), cuda_tf32(not before[0]):
        raise RuntimeError("a failing stage restores them too")
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
