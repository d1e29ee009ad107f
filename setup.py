"""Builds ginn's C kernels; everything else about the package is in pyproject.toml.

Every ``src/ginn/_<name>.c`` is one extension module ``ginn._<name>`` (a small, dependency-free
kernel on buffers; its file says what it computes and which Python function is its oracle).
"""

from pathlib import Path

from setuptools import Extension, setup

KERNELS = sorted(Path("src/ginn").glob("_*.c"))

setup(ext_modules=[Extension(f"ginn.{path.stem}", [path.as_posix()], extra_compile_args=["-O3", "-std=c11"])
                   for path in KERNELS])
