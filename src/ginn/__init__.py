"""ginn: genetics interpretable neural networks.

Gene-gene interaction detection with structured-sparse neural networks, Shapley interaction
scores between gene nodes, and permutation tests (Perm I) with maxT / FDR control.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ginn")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
