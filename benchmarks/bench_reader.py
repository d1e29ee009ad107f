"""Genotype decoding speed and memory: ginn's reader vs pandas-plink, on one plink2 --dummy fileset.

    python benchmarks/bench_reader.py --samples 10000 --variants 20000

ginn reads the .bed through plink2's own library (pgenlib) into int8 allele counts; pandas-plink
returns a dask/xarray array of float32 (or float64) that is computed here in full. pandas-plink 2.2.x
cannot read a fileset under pandas 3 at all (it passes read_csv's removed delim_whitespace); the script
says so when that happens.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np


def measure(label: str, read) -> np.ndarray:
    tracemalloc.start()
    start = time.perf_counter()
    values = read()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label:28s} {seconds:7.2f} s   peak traced {peak / 2**20:8.0f} MiB   dtype {values.dtype}")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--variants", type=int, default=20_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_reader_"))
    subprocess.run([shutil.which("plink2"), "--dummy", str(args.samples), str(args.variants), "0.02", "--seed", "1",
                    "--make-bed", "--out", str(work / "d")], check=True, capture_output=True)
    from ginn.genotypes import genotype_input

    fileset = genotype_input(bfile=work / "d").open()
    ours = measure("ginn (int8, variant-major)", lambda: fileset.read_variants(slice(None)))
    try:
        from pandas_plink import read_plink1_bin
    except ImportError:
        print("pandas-plink not installed; pip install pandas-plink to compare")
        return
    try:
        theirs = measure("pandas-plink (computed)", lambda: read_plink1_bin(str(work / "d.bed"), verbose=False).values)
    except TypeError as exc:  # pandas-plink 2.2.x passes delim_whitespace, which pandas 3 removed
        print(f"pandas-plink cannot read the fileset with this pandas: {exc}")
        return
    # pandas-plink counts the .bim's first allele too (dosage of a0) with NaN for missing.
    same = np.array_equal(np.where(np.isnan(theirs), -1, theirs).astype(np.int8), ours.T)
    print(f"identical genotypes: {same}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
