"""ginn: genetics interpretable neural networks.

Gene-gene interaction detection with structured-sparse neural networks, Shapley interaction
scores between gene nodes, and permutation tests (Perm I) with maxT / FDR control.
"""



def __getattr__(name: str):
    """``ginn.__version__``, read from the package metadata when first asked for (importlib.metadata costs
    ~50 ms of start-up, which a stage's provenance record pays in the background instead)."""
    if name != "__version__":
        raise AttributeError(f"module 'ginn' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("ginn")
    except PackageNotFoundError:  # running from a source tree without installation
        value = "0.0.0+unknown"
    globals()["__version__"] = value
    return value
