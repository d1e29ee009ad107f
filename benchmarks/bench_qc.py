"""Time `ginn qc` against `plink2` on one fileset, with the peak memory of each.

    python benchmarks/bench_qc.py --samples 10000 --variants 100000 [--workdir DIR]

The fileset comes from `plink2 --dummy` (random genotypes, 2% missing calls). Both tools apply the
same filters (--geno 0.05 --maf 0.01 --hwe 1e-6, no --mind) and write a filtered .bed. The two are
timed back to back --repeats times (the machine may be shared), with the load average printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, all threads) and peak resident MiB of one command,
    measured in a fresh child process. CPU time is the steadier measure on a loaded shared machine."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
             "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
             "print(time.perf_counter() - t, u.ru_utime + u.ru_stime, u.ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], check=True, capture_output=True, text=True).stdout
    seconds, cpu, kib = out.split()
    return float(seconds), float(cpu), float(kib) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--variants", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2, help="plink2 --threads")
    parser.add_argument("--repeats", type=int, default=3, help="back-to-back timing pairs")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_qc_"))
    work.mkdir(parents=True, exist_ok=True)
    plink2 = shutil.which("plink2")
    ginn = str(Path(sys.executable).with_name("ginn"))
    # ginn's bytecode, as an installed package has it: a source checkout run with PYTHONDONTWRITEBYTECODE
    # would otherwise compile every module on each run (50 ms) and time the compiler
    package = importlib.util.find_spec("ginn").submodule_search_locations[0]
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True)
    subprocess.run([plink2, "--dummy", str(args.samples), str(args.variants), "0.02", "acgt", "--seed", "1",
                    "--make-bed", "--out", str(work / "raw")], check=True, capture_output=True)
    filters = ["--geno", "0.05", "--maf", "0.01", "--hwe", "1e-6"]
    ginn_cmd = [ginn, "-q", "qc", "--bfile", str(work / "raw"), "--mind", "1", *filters, "--out", str(work / "ginn")]
    plink_cmd = [plink2, "--bfile", str(work / "raw"), *filters, "--threads", str(args.threads), "--make-bed",
                 "--out", str(work / "plink")]
    print(f"fileset: {args.samples} samples x {args.variants} variants "
          f"({(work / 'raw.bed').stat().st_size / 2**20:.0f} MiB .bed); load average before: {os.getloadavg()}")
    ratios, cpu_ratios, memory_ratios = [], [], []
    for rep in range(args.repeats):  # back to back, so both tools see the same load on a shared machine
        t_ginn, c_ginn, m_ginn = timed(ginn_cmd)
        t_plink, c_plink, m_plink = timed(plink_cmd)
        ratios.append(t_ginn / t_plink)
        cpu_ratios.append(c_ginn / c_plink)
        memory_ratios.append(m_ginn / m_plink)
        print(f"run {rep + 1}: ginn qc {t_ginn:6.2f} s wall {c_ginn:6.2f} s CPU peak {m_ginn:5.0f} MiB | plink2 "
              f"{t_plink:6.2f} s wall {c_plink:6.2f} s CPU peak {m_plink:5.0f} MiB (--threads {args.threads}) | "
              f"ratio {t_ginn / t_plink:.2f}x wall, {c_ginn / c_plink:.2f}x CPU, {m_ginn / m_plink:.2f}x memory | "
              f"load {os.getloadavg()[0]:.2f}")
    same = (work / "ginn.bim").read_text().split() == (work / "plink.bim").read_text().split()
    same_bed = (work / "ginn.bed").read_bytes() == (work / "plink.bed").read_bytes()
    print(f"ratio ginn/plink2 wall time: median {statistics.median(ratios):.2f}x (min {min(ratios):.2f}, "
          f"max {max(ratios):.2f}); CPU time: median {statistics.median(cpu_ratios):.2f}x; peak memory: median "
          f"{statistics.median(memory_ratios):.2f}x over {len(ratios)} back-to-back pairs; same passing variants: "
          f"{same}; identical .bed: {same_bed}")
    if args.workdir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
