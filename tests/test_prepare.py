"""ginn prepare: phenotype residualisation, inverse-normal transform, PCs, split, compact storage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from conftest import make_fileset
from ginn.cli import cli
from ginn.dataset import Dataset
from ginn.files import atomic_outputs
from ginn.genotypes import genotype_input
from ginn.plink import new_fam, write_plink
from ginn.prepare import genotype_pcs, inverse_normal_transform


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    prefix = make_fileset(root / "geno", n_samples=400, n_variants=60, seed=9)
    fam = genotype_input(bfile=prefix).open().fam
    rng = np.random.default_rng(3)
    age = rng.uniform(30, 70, len(fam))
    sex = rng.choice(["M", "F"], len(fam))
    y = 0.05 * age + (sex == "M") * 0.8 + rng.standard_normal(len(fam))
    pheno = pd.DataFrame({"FID": fam.fid, "IID": fam.iid, "HDL": y.round(4).astype(str)})
    pheno.loc[[6, 7, 11], "HDL"] = "NA"
    pheno.iloc[5:].to_csv(root / "pheno.tsv", sep="\t", index=False)  # 5 genotyped samples lack a row
    pd.DataFrame({"FID": fam.fid, "IID": fam.iid, "age": age.round(2), "sex": sex}).to_csv(
        root / "covar.tsv", sep="\t", index=False)
    snps = genotype_input(bfile=prefix).open().bim.snp
    mapping = pd.DataFrame({"snp": list(snps[:20]) + list(snps[15:40]), "gene": ["GA"] * 20 + ["GB"] * 25})
    mapping.to_csv(root / "map.tsv", sep="\t", index=False)
    return root, prefix


def _prepare(root, prefix, out, *extra):
    return CliRunner().invoke(cli, ["prepare", "--bfile", str(prefix), "--map", str(root / "map.tsv"),
                                    "--pheno", str(root / "pheno.tsv"), "--pheno-name", "HDL", "--out", str(out),
                                    *extra])


def test_prepare_dataset(cohort, tmp_path):
    root, prefix = cohort
    out = tmp_path / "data"
    result = _prepare(root, prefix, out, "--covar", str(root / "covar.tsv"), "--covar-name", "age,sex",
                      "--pcs", "3", "--seed", "4")
    assert result.exit_code == 0, result.output
    data = Dataset.load(out)
    assert data.genotypes.dtype == np.int8 and isinstance(data.genotypes, np.memmap)
    assert data.n_samples == 400 - 5 - 3 and data.meta["counts"]["n_missing_phenotype"] == 3
    assert data.meta["counts"]["n_without_phenotype"] == 5
    assert data.genes == ["GA", "GB"] and list(data.gene_sizes) == [20, 25]  # 5 SNPs shared by both genes
    assert data.is_test.sum() == round(0.3 * data.n_samples)
    # the target is an inverse-normal transform: ranks preserved, normal scores, free of the covariates
    assert stats.shapiro(data.target).pvalue > 0.5
    raw = pd.read_csv(root / "covar.tsv", sep="\t").set_index("IID").loc[data.samples.iid]
    assert abs(np.corrcoef(data.target, raw.age)[0, 1]) < 0.05
    assert abs(np.corrcoef(data.target, raw.sex == "M")[0, 1]) < 0.05
    # genotypes equal the fileset's, in gene order with the shared SNPs duplicated
    fileset = genotype_input(bfile=prefix).open()
    keep = fileset.fam.iid.isin(data.samples.iid).to_numpy().nonzero()[0]
    idx = pd.Series(range(fileset.n_variants), index=fileset.bim.snp)[data.snps.snp].to_numpy()
    np.testing.assert_array_equal(np.asarray(data.genotypes), fileset.read_sample_major(idx, keep))
    # same seed -> identical dataset
    again = tmp_path / "again"
    _prepare(root, prefix, again, "--covar", str(root / "covar.tsv"), "--covar-name", "age,sex", "--pcs", "3",
             "--seed", "4")
    for name in ("genotypes.npy", "target.npy", "is_test.npy"):
        assert (out / name).read_bytes() == (again / name).read_bytes()
    assert (out / "provenance.json").exists()


def test_inverse_normal_transform_is_blom():
    values = np.array([3.0, 1.0, 2.0, 2.0, 10.0])
    expected = stats.norm.ppf((stats.rankdata(values) - 0.375) / 5.25)
    np.testing.assert_allclose(inverse_normal_transform(values), expected)


def test_genotype_pcs_match_exact_svd(tmp_path):
    # Three subpopulations with diverged allele frequencies: the structure PCs are meant to capture.
    rng = np.random.default_rng(8)
    base = rng.uniform(0.1, 0.5, 300)
    freqs = np.clip(base + rng.normal(0, 0.08, (3, 300)), 0.02, 0.98)
    population = rng.integers(0, 3, 450)
    dosages = rng.binomial(2, freqs[population]).astype(np.int8)
    dosages[rng.random(dosages.shape) < 0.01] = -1
    bim = pd.DataFrame({"chrom": "1", "snp": [f"v{i}" for i in range(300)], "cm": "0",
                        "pos": np.arange(300) * 100 + 1, "a1": "A", "a2": "G"})
    with atomic_outputs() as out:
        write_plink(out, tmp_path / "structured", dosages.T, bim, new_fam(450))
    fileset = genotype_input(bfile=tmp_path / "structured").open()
    pcs = genotype_pcs(fileset, np.arange(450), 2, seed=1, chunk_size=64)
    g = dosages.astype(float)
    called = g >= 0
    mean = np.where(called, g, 0).sum(0) / called.sum(0)
    z = np.where(called, g - mean, 0)
    z /= np.sqrt((z ** 2).mean(0))
    u = np.linalg.svd(z, full_matrices=False)[0][:, :2]
    # Same subspace: the cosines of the principal angles are 1. With a clear spectral gap after the
    # structure PCs, randomized SVD with 8 power iterations is accurate far below 1e-6.
    cosines = np.linalg.svd(u.T @ pcs, compute_uv=False)
    np.testing.assert_allclose(cosines, 1.0, atol=1e-6)


@pytest.mark.parametrize("pheno_text, name, message", [
    ("A B HDL\n1 2 3\n", "HDL", "FID and IID"),
    ("FID IID HDL\nzz zz 1.0\nyy yy 2.0\n", "HDL", "no sample of"),
    ("FID IID HDL\ns1 s1 high\ns2 s2 1.0\n", "HDL", "not numeric"),
    ("FID IID LDL\ns1 s1 1.0\n", "HDL", "no column HDL"),
])
def test_prepare_bad_phenotypes(cohort, tmp_path, pheno_text, name, message):
    root, prefix = cohort
    pheno = tmp_path / "bad_pheno.tsv"
    pheno.write_text(pheno_text)
    out = tmp_path / "data"
    result = CliRunner().invoke(cli, ["prepare", "--bfile", str(prefix), "--map", str(root / "map.tsv"),
                                      "--pheno", str(pheno), "--pheno-name", name, "--pcs", "0", "--out", str(out)])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert message in result.output and "bad_pheno.tsv" in result.output
    assert not out.exists() and not list(tmp_path.glob(".data*"))


def test_categorical_covariate_and_plink_missing_codes(tmp_path):
    """PLINK 2 conventions in covariate files: a non-numeric column is categorical, one indicator per level
    with the first (sorted) level as reference; -9 and NA are missing and drop the sample (counted)."""
    from ginn.prepare import read_sample_table

    (tmp_path / "covar.tsv").write_text("FID IID site age\n"
                                        "a a leeds 30\nb b oxford 40\nc c bristol -9\nd d NA 50\n"
                                        "e e oxford 60\nf f bristol NA\n")
    table = read_sample_table(tmp_path / "covar.tsv", ["site", "age"], "covariate")
    assert list(table.columns) == ["site_leeds", "site_oxford", "age"]  # bristol is the reference level
    assert table.loc[("a", "a")].tolist() == [1.0, 0.0, 30.0]
    assert table.loc[("c", "c"), "site_leeds"] == 0 and np.isnan(table.loc[("c", "c"), "age"])  # -9 missing
    assert table.loc[("d", "d")][["site_leeds", "site_oxford"]].isna().all()                    # NA missing
    assert np.isnan(table.loc[("f", "f"), "age"])
