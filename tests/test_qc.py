"""ginn qc against plink2 on data with planted missingness, rare variants and HWE violations."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import plink2
from ginn.cli import cli
from ginn.files import hash_in_background, provenance_record, write_tsv
from ginn.genotypes import genotype_input
from ginn.plink import write_bim, write_fam
from ginn.qc import hwe_exact_pvalues, run_qc


def _plink_table(path, key="ID"):
    return pd.read_csv(path, sep="\t").rename(columns={"#CHROM": "CHROM"}).set_index(key)


def _agree_at_plink_precision(ours: np.ndarray, theirs: np.ndarray) -> bool:
    # plink2 prints 6 significant digits, so agreement can only be checked to the printed precision:
    # |ours - theirs| must be within half a unit of the 6th significant digit (<= 5e-6 relative), plus a
    # float-rounding hair. Our values are exact to ~1e-12 relative (checked against brute force below).
    # 10^floor(log10 v) is the unit of the leading digit, so half a unit of the 6th digit is 5e-6 of it.
    unit = 10.0 ** np.floor(np.log10(np.where(theirs == 0, 1.0, np.abs(theirs))))
    return bool(np.all(np.abs(ours - theirs) <= 5.0001e-6 * unit))


def test_hwe_exact_matches_brute_force_enumeration():
    # Independent oracle: the exact null distribution of the heterozygote count by direct enumeration
    # with Python integers (multinomial counts), no log-gamma arithmetic.
    from math import comb

    def brute(n_aa, n_ab, n_bb):
        n = n_aa + n_ab + n_bb
        n_a = 2 * n_aa + n_ab
        probs = {}
        for het in range(n_a % 2, min(n_a, 2 * n - n_a) + 1, 2):
            aa = (n_a - het) // 2
            bb = n - het - aa
            probs[het] = comb(n, aa) * comb(n - aa, het) * 2 ** het
        total = sum(probs.values())
        obs = probs[n_ab]
        return sum(v for v in probs.values() if v <= obs * (1 + 1e-7)) / total

    cases = [(10, 0, 10), (3, 14, 3), (50, 40, 10), (0, 1, 29), (100, 0, 1), (7, 7, 7), (0, 0, 5), (1, 60, 1)]
    ours = hwe_exact_pvalues(*np.array(cases).T)
    np.testing.assert_allclose(ours, [brute(*c) for c in cases], rtol=1e-10)


def test_qc_matches_plink2(qc_fileset, tmp_path):
    out = tmp_path / "q"
    result = CliRunner().invoke(cli, ["qc", "--bfile", str(qc_fileset), "--mind", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    plink2("--bfile", str(qc_fileset), "--freq", "--missing", "--hardy", "--out", str(tmp_path / "stats"))
    plink2("--bfile", str(qc_fileset), "--geno", "0.05", "--maf", "0.01", "--hwe", "1e-6",
           "--write-snplist", "--out", str(tmp_path / "pass"))
    table = pd.read_csv(str(out) + ".qc.tsv", sep="\t").set_index("snp")
    freq = _plink_table(tmp_path / "stats.afreq")
    vmiss = _plink_table(tmp_path / "stats.vmiss")
    hardy = _plink_table(tmp_path / "stats.hardy")
    ids = table.index
    maf = np.minimum(freq.loc[ids, "ALT_FREQS"], 1 - freq.loc[ids, "ALT_FREQS"]).to_numpy()
    assert _agree_at_plink_precision(table["maf"].to_numpy(), maf)
    assert _agree_at_plink_precision(table["missing_rate"].to_numpy(), vmiss.loc[ids, "F_MISS"].to_numpy())
    assert _agree_at_plink_precision(table["hwe_p"].to_numpy(), hardy.loc[ids, "P"].to_numpy())
    expected = set((tmp_path / "pass.snplist").read_text().split())
    assert set(table.index[table["pass"]]) == expected
    # the planted problems were actually exercised by the data
    assert (table.maf < 0.01).sum() > 5 and (table.hwe_p < 1e-6).sum() > 10 and (table.missing_rate > 0.05).sum() > 10
    # the written fileset holds exactly the passing variants, with the same genotypes as the input
    qc = genotype_input(bfile=out).open()
    raw = genotype_input(bfile=qc_fileset).open()
    assert list(qc.bim.snp) == sorted(expected, key=list(raw.bim.snp).index)
    keep = raw.bim.snp.isin(expected).to_numpy().nonzero()[0]
    np.testing.assert_array_equal(qc.read_variants(slice(None)), raw.read_variants(keep))


def test_copied_bed_rows_are_the_same_by_every_copy_path(qc_fileset, tmp_path, monkeypatch):
    """The passing .bed rows, copied in a background thread chunk by chunk (runs split at chunk edges), are the
    same whether the kernel copies them, cannot copy at all, or stops copying part way (reads and writes)."""
    import errno
    import os

    run_qc(genotype_input(bfile=qc_fileset), tmp_path / "kernel", mind=1, chunk_size=7)
    expected = (tmp_path / "kernel.bed").read_bytes()
    kernel_copy, calls = os.copy_file_range, []

    def fails_later(*args):
        calls.append(args)
        if len(calls) > 3:
            raise OSError(errno.EXDEV, "cross-device")
        return kernel_copy(*args)

    monkeypatch.setattr(os, "copy_file_range", fails_later)
    run_qc(genotype_input(bfile=qc_fileset), tmp_path / "partly", mind=1, chunk_size=7)
    monkeypatch.delattr(os, "copy_file_range")
    run_qc(genotype_input(bfile=qc_fileset), tmp_path / "copied", mind=1, chunk_size=7)
    run_qc(genotype_input(bfile=qc_fileset), tmp_path / "whole", mind=1)
    assert len(calls) > 3
    for name in ("partly", "copied", "whole"):
        assert (tmp_path / f"{name}.bed").read_bytes() == expected, name


def test_qc_sample_filter_matches_plink2(qc_fileset, tmp_path):
    out = tmp_path / "q"
    result = CliRunner().invoke(cli, ["qc", "--bfile", str(qc_fileset), "--out", str(out)])
    assert result.exit_code == 0, result.output
    plink2("--bfile", str(qc_fileset), "--mind", "0.05", "--geno", "0.05", "--maf", "0.01", "--hwe", "1e-6",
           "--make-just-fam", "--write-snplist", "--out", str(tmp_path / "p"))
    fam = pd.read_csv(tmp_path / "p.fam", sep=r"\s+", header=None)
    ours = genotype_input(bfile=out).open()
    assert list(ours.fam.iid) == list(fam[1].astype(str))
    assert len(ours.fam) < 600  # planted high-missingness samples were removed
    assert set(ours.bim.snp) == set((tmp_path / "p.snplist").read_text().split())


@pytest.mark.parametrize("damage, message", [
    ("truncate", "truncated"), ("magic", "wrong magic"), ("no_bim", ".bim file not found"),
    ("dup_snp", "duplicate SNP IDs"), ("extra_fam", "do not match"),
])
def test_qc_bad_inputs(qc_fileset, tmp_path, damage, message):
    prefix = tmp_path / "bad"
    for ext in ("bed", "bim", "fam"):
        (tmp_path / f"bad.{ext}").write_bytes((qc_fileset.parent / f"raw.{ext}").read_bytes())
    if damage == "truncate":
        data = (tmp_path / "bad.bed").read_bytes()
        (tmp_path / "bad.bed").write_bytes(data[:-7])
    elif damage == "magic":
        data = (tmp_path / "bad.bed").read_bytes()
        (tmp_path / "bad.bed").write_bytes(b"\x00\x00\x00" + data[3:])
    elif damage == "no_bim":
        (tmp_path / "bad.bim").unlink()
    elif damage == "dup_snp":
        lines = (tmp_path / "bad.bim").read_text().splitlines()
        lines[3] = lines[3].replace(lines[3].split("\t")[1], lines[2].split("\t")[1])
        (tmp_path / "bad.bim").write_text("\n".join(lines) + "\n")
    elif damage == "extra_fam":
        with open(tmp_path / "bad.fam", "a") as fh:
            fh.writelines(f"x{i} x{i} 0 0 0 -9\n" for i in range(4))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["qc", "--bfile", str(prefix), "--out", str(out)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "bad." in lines[0]
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob(".out*"))


def test_hwe_exact_at_biobank_counts_matches_brute_force():
    """Thousands of samples: the log-factorial table keeps p within 1e-7 of exact enumeration, also where the
    central mass cancels (p just above 1e-3) and in the summed tails far below it."""
    from fractions import Fraction
    from math import comb

    def brute(n_aa, n_ab, n_bb):
        n, n_a = n_aa + n_ab + n_bb, 2 * n_aa + n_ab
        probs = {het: comb(n, (n_a - het) // 2) * comb(n - (n_a - het) // 2, het) * 2 ** het
                 for het in range(n_a % 2, min(n_a, 2 * n - n_a) + 1, 2)}
        obs = probs[n_ab]  # integers far beyond floats: the tie margin 1e-7 and the ratio in exact arithmetic
        tail = sum(v for v in probs.values() if v * 10 ** 7 <= obs * (10 ** 7 + 1))
        return float(Fraction(tail, sum(probs.values())))

    cases = [(750, 1500, 750), (700, 1600, 700), (680, 1640, 680), (720, 1560, 720), (2600, 350, 50),
             (1500, 1200, 300), (1450, 1310, 240)]
    exact = [brute(*c) for c in cases]
    assert min(exact) < 1e-12 and any(1e-3 < p < 1e-2 for p in exact) and max(exact) == 1.0
    np.testing.assert_allclose(hwe_exact_pvalues(*np.array(cases).T), exact, rtol=1e-7)


def test_qc_imports_no_heavy_package(qc_fileset, tmp_path):
    """`ginn qc` is start-up bound on small inputs: it must not import pandas, scipy, torch or the other heavy
    stacks (nor tqdm, off a terminal)."""
    code = ("import sys\nfrom ginn.cli import cli\n"
            f"cli.main(['-q', 'qc', '--bfile', {str(qc_fileset)!r}, '--out', {str(tmp_path / 'q')!r}], "
            "standalone_mode=False)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'torch', 'sklearn', 'matplotlib', "
            "'xgboost', 'msprime', 'yaml', 'pandas', 'tqdm'}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "q.qc.tsv").exists() and done.stdout.strip() == "[]", done.stdout


def test_qc_starts_no_blas_thread_pool(qc_fileset, tmp_path):
    """`ginn qc` calls no BLAS: numpy comes in with OpenBLAS's pool at one thread (an idle pool spins), and the
    environment is left as it was for the processes it starts."""
    code = ("import os\nfrom ginn.cli import cli\n"
            f"cli.main(['-q', 'qc', '--bfile', {str(qc_fileset)!r}, '--out', {str(tmp_path / 'q')!r}], "
            "standalone_mode=False)\n"
            "from threadpoolctl import threadpool_info\n"
            "print([pool['num_threads'] for pool in threadpool_info() if pool['internal_api'] == 'openblas'], "
            "os.environ.get('OPENBLAS_NUM_THREADS'))\n")
    env = {name: value for name, value in os.environ.items() if name != "OPENBLAS_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("] ")[1].strip() == "None" and set(done.stdout.split("]")[0][1:].split(",")) <= {"1"}


@pytest.mark.parametrize("sep, header, na_rep", [("\t", True, "NA"), ("\t", False, ""), (" ", False, "")])
def test_table_writer_writes_what_to_csv_writes(tmp_path, sep, header, na_rep, monkeypatch):
    """write_tsv (and so the .bim/.fam writers) joins plain columns itself, byte for byte what pandas' to_csv
    writes; anything to_csv would quote goes to to_csv."""
    plain = pd.DataFrame({
        "text": pd.array(["a", None, "c-d"], dtype="str"), "obj": np.array(["x", "y", None], dtype=object),
        "int": [1, -2, 30], "float": [0.5, np.nan, 1.25e-7], "flag": [True, False, True],
        "whole": [1 / 3, np.inf, -2.0], "single": np.array([0.1, 2.5e9, 7], dtype=np.float32)})
    quoted = plain.assign(text=pd.array(["a b", "x\ty", 'q"'], dtype="str"))
    lone_empty = pd.DataFrame({"text": pd.array(["", "b"], dtype="str")})
    for name, table in (("plain", plain), ("quoted", quoted), ("lone", lone_empty)):
        ours, theirs = tmp_path / f"{name}.ours", tmp_path / f"{name}.theirs"
        table.to_csv(theirs, sep=sep, index=False, header=header, float_format="%.8g", na_rep=na_rep)
        write_tsv(ours, table, float_format="%.8g", sep=sep, header=header, na_rep=na_rep)
        assert ours.read_bytes() == theirs.read_bytes(), name

    def refuse(*args, **kwargs):
        raise AssertionError("plain columns went to to_csv")

    monkeypatch.setattr(pd.DataFrame, "to_csv", refuse)
    write_tsv(tmp_path / "fast.tsv", plain, float_format="%.8g", sep=sep, header=header, na_rep=na_rep)
    assert (tmp_path / "fast.tsv").read_bytes() == (tmp_path / "plain.theirs").read_bytes()


def test_plink_text_files_are_what_to_csv_writes(qc_fileset, tmp_path):
    source = genotype_input(bfile=qc_fileset).open()
    write_bim(tmp_path / "x.bim", source.bim)
    write_fam(tmp_path / "x.fam", source.fam)
    source.bim[list(source.bim.columns)].to_csv(tmp_path / "y.bim", sep="\t", header=False, index=False)
    source.fam.to_csv(tmp_path / "y.fam", sep=" ", header=False, index=False)
    assert (tmp_path / "x.bim").read_bytes() == (tmp_path / "y.bim").read_bytes()
    assert (tmp_path / "x.fam").read_bytes() == (tmp_path / "y.fam").read_bytes()


def test_background_checksums_are_the_files_current_ones(tmp_path):
    """Input checksums computed while a stage runs are used only for files unchanged since they started."""
    import hashlib

    from ginn import files

    same, changed = tmp_path / "same.bin", tmp_path / "changed.bin"
    same.write_bytes(b"a" * 5_000_000)
    changed.write_bytes(b"b" * 5_000_000)
    hash_in_background([same, changed])
    files._BACKGROUND[str(changed)].done.wait()  # its old content hashed, then
    changed.write_bytes(b"c" * 5_000_001)  # rewritten while the stage ran
    record = provenance_record("qc", {}, inputs={"same": same, "changed": changed})
    assert record["inputs"]["same"]["sha256"] == hashlib.sha256(b"a" * 5_000_000).hexdigest()
    assert record["inputs"]["changed"]["sha256"] == hashlib.sha256(b"c" * 5_000_001).hexdigest()
    # a record asked for before the thread reached a file (a tiny stage) waits for it, then uses it
    late = tmp_path / "late.bin"
    late.write_bytes(b"d" * 1000)
    hash_in_background([late])
    assert provenance_record("qc", {}, inputs={"late": late})["inputs"]["late"]["sha256"] == \
        hashlib.sha256(b"d" * 1000).hexdigest()


def test_sex_chromosome_variants_are_flagged(tmp_path, caplog):
    """ginn's counts assume diploid autosomes; variants on X/Y/XY/MT pass QC but are named in a warning."""
    from conftest import make_fileset
    from ginn.qc import run_qc

    prefix = make_fileset(tmp_path / "x", n_samples=120, n_variants=40, chrom="X")
    with caplog.at_level("WARNING", logger="ginn.qc"):
        run_qc(genotype_input(bfile=prefix), tmp_path / "out")
    assert any("40 variants on X, Y, XY or MT" in record.getMessage() for record in caplog.records)
    caplog.clear()
    autosomal = make_fileset(tmp_path / "a", n_samples=120, n_variants=40, chrom="2")
    with caplog.at_level("WARNING", logger="ginn.qc"):
        run_qc(genotype_input(bfile=autosomal), tmp_path / "out2")
    assert not any("treated as autosomal" in record.getMessage() for record in caplog.records)
