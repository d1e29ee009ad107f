"""ginn qc against plink2 on data with planted missingness, rare variants and HWE violations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import plink2
from ginn.cli import cli
from ginn.genotypes import genotype_input
from ginn.qc import hwe_exact_pvalues


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
