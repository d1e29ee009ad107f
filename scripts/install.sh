#!/usr/bin/env bash
# Create the project environment from nothing: system tools (plink2 for the statistics cross-checks,
# chromium for the report rendering test), a venv with the CPU build of torch, and ginn itself.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v plink2 >/dev/null || need+=(plink2)
command -v chromium >/dev/null || need+=(chromium)
command -v java >/dev/null || need+=(default-jre-headless)
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
# torch 2.13.0 is pinned so pip takes the CPU wheel; a plain `torch` would pull several GB of CUDA.
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[test]"
