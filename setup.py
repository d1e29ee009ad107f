"""Builds ginn's C kernels; everything else about the package is in pyproject.toml.

Every ``src/ginn/_<name>.c`` is one extension module ``ginn._<name>`` (a small, dependency-free
kernel on buffers; its file says what it computes and which Python function is its oracle); the
``src/ginn/_*.h`` headers hold what several kernels share.
"""

import sys
from pathlib import Path

from setuptools import Extension, setup

KERNELS = sorted(Path("src/ginn").glob("_*.c"))
# Kernels may split their loops with OpenMP; on Linux torch's own libgomp then runs them (see
# _hidden_layer.c). Elsewhere the pragmas are skipped and the kernels run on one thread.
OPENMP = ["-fopenmp"] if sys.platform.startswith("linux") else []

HEADERS = [path.as_posix() for path in sorted(Path("src/ginn").glob("_*.h"))]

setup(ext_modules=[Extension(f"ginn.{path.stem}", [path.as_posix()], extra_compile_args=["-O3", "-std=c11", *OPENMP],
                             extra_link_args=OPENMP, depends=HEADERS)
                   for path in KERNELS])
