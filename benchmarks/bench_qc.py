"""Time `ginn qc` against `plink2` on one fileset, with the peak memory of each.

    python benchmarks/bench_qc.py --samples 10000 --variants 100000 [--workdir DIR]

The fileset comes from `plink2 --dummy` (random genotypes, 2% missing calls). Both tools apply the
same filters (--geno 0.05 --maf 0.01 --hwe 1e-6, no --mind) and write a filtered .bed.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one command, measured in a fresh child process."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], check=True, capture_output=True, text=True).stdout
    seconds, kib = out.split()
    return float(seconds), float(kib) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--variants", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2, help="plink2 --threads")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_qc_"))
    work.mkdir(parents=True, exist_ok=True)
    plink2 = shutil.which("plink2")
    ginn = str(Path(sys.executable).with_name("ginn"))
    subprocess.run([plink2, "--dummy", str(args.samples), str(args.variants), "0.02", "acgt", "--seed", "1",
                    "--make-bed", "--out", str(work / "raw")], check=True, capture_output=True)
    filters = ["--geno", "0.05", "--maf", "0.01", "--hwe", "1e-6"]
    t_ginn, m_ginn = timed([ginn, "-q", "qc", "--bfile", str(work / "raw"), "--mind", "1", *filters,
                            "--out", str(work / "ginn")])
    t_plink, m_plink = timed([plink2, "--bfile", str(work / "raw"), *filters, "--threads", str(args.threads),
                              "--make-bed", "--out", str(work / "plink")])
    same = (work / "ginn.bim").read_text().split() == (work / "plink.bim").read_text().split()
    print(f"fileset: {args.samples} samples x {args.variants} variants "
          f"({(work / 'raw.bed').stat().st_size / 2**20:.0f} MiB .bed)")
    print(f"ginn qc : {t_ginn:7.2f} s  peak {m_ginn:7.0f} MiB")
    print(f"plink2  : {t_plink:7.2f} s  peak {m_plink:7.0f} MiB  (--threads {args.threads})")
    print(f"ratio ginn/plink2: {t_ginn / t_plink:.2f}x time, {m_ginn / m_plink:.2f}x memory; "
          f"same passing variants: {same}")
    if args.workdir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
