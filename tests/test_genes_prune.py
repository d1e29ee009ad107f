"""ginn map-genes and ginn prune: annotation formats, overlaps, bad inputs, the variance rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import make_fileset
from ginn.cli import cli
from ginn.prune import ld_matrix, select_by_ld_score

# Real GRCh37 coordinates (glist-hg19): TOMM40 19:45394476-45406946, APOE 19:45409038-45412650,
# APOC1 19:45417920-45422606, PCSK9 1:55505148-55530526.
GLIST = "19 45394476 45406946 TOMM40\n19 45409038 45412650 APOE\n19 45417920 45422606 APOC1\n" \
        "1 55505148 55530526 PCSK9\n2 100 200 NOSNPGENE\n"


@pytest.fixture(scope="module")
def apoe_fileset(tmp_path_factory):
    # 120 SNPs every 500 bp from 19:45,380,000 cover TOMM40, APOE and APOC1 with their 10 kb flanks.
    return make_fileset(tmp_path_factory.mktemp("apoe") / "apoe", n_samples=300, n_variants=120, seed=5,
                        chrom="19", start=45_380_000, spacing=500)


def _map(fileset, tmp_path, genes_text, name="genes.txt", extra=()):
    genes = tmp_path / name
    genes.write_text(genes_text)
    out = tmp_path / "map.tsv"
    result = CliRunner().invoke(cli, ["map-genes", "--bfile", str(fileset), "--genes", str(genes), "--out", str(out),
                                      *extra])
    return result, out


def test_map_genes_windows_overlaps_and_report(apoe_fileset, tmp_path):
    result, out = _map(apoe_fileset, tmp_path, GLIST)
    assert result.exit_code == 0, result.output
    mapping = pd.read_csv(out, sep="\t")
    bim = pd.read_csv(str(apoe_fileset) + ".bim", sep="\t", header=None, names=["c", "snp", "cm", "pos", "a1", "a2"])
    pos = bim.set_index("snp")["pos"]
    for gene, start, end in [("TOMM40", 45394476, 45406946), ("APOE", 45409038, 45412650),
                             ("APOC1", 45417920, 45422606)]:
        expected = set(bim.snp[(bim.pos >= start - 10_000) & (bim.pos <= end + 10_000)])
        assert set(mapping.snp[mapping.gene == gene]) == expected
    shared = set(mapping.snp[mapping.gene == "TOMM40"]) & set(mapping.snp[mapping.gene == "APOE"])
    assert shared, "flanked TOMM40 and APOE overlap: a SNP in both must belong to both"
    assert all(pos[mapping.snp[mapping.gene == g]].is_monotonic_increasing for g in ("TOMM40", "APOE"))
    report = pd.read_csv(str(out).replace(".tsv", ".genes.tsv"), sep="\t").set_index("gene")
    assert report.loc["PCSK9", "n_snps"] == 0 and report.loc["NOSNPGENE", "n_snps"] == 0
    assert "2 gene(s) have no SNP" in result.output  # reported on stderr


def test_map_genes_formats_agree(apoe_fileset, tmp_path):
    ref, out = _map(apoe_fileset, tmp_path, GLIST)
    expected = pd.read_csv(out, sep="\t")
    rows = [line.split() for line in GLIST.strip().splitlines()]
    bed = "".join(f"chr{c}\t{int(s) - 1}\t{e}\t{g}\n" for c, s, e, g in rows)
    gtf = "".join(f'chr{c}\tsrc\tgene\t{s}\t{e}\t.\t+\t.\tgene_id "ID{g}"; gene_name "{g}";\n'
                  f'chr{c}\tsrc\texon\t{s}\t{e}\t.\t+\t.\tgene_id "ID{g}"; gene_name "{g}";\n' for c, s, e, g in rows)
    tsv = "chrom\tstart\tend\tgene\n" + "".join(f"{c}\t{s}\t{e}\t{g}\n" for c, s, e, g in rows)
    for text, name in [(bed, "genes.bed"), (gtf, "genes.gtf"), (tsv, "genes.tsv")]:
        result, out = _map(apoe_fileset, tmp_path, text, name)
        assert result.exit_code == 0, result.output
        pd.testing.assert_frame_equal(pd.read_csv(out, sep="\t"), expected)


@pytest.mark.parametrize("genes_text, extra, message", [
    ("", (), "gene annotation is empty"),
    ("chrUn_gl000220 1 100 A\nscaffold9 5 50 B\n", (), "no gene is on a known chromosome"),
    ("19 x 100 A\n", (), "not integers"),
    ("5 1 100 FARAWAY\n", (), "no SNP of"),
])
def test_map_genes_bad_inputs(apoe_fileset, tmp_path, genes_text, extra, message):
    result, out = _map(apoe_fileset, tmp_path, genes_text, extra=extra)
    assert result.exit_code == 2
    assert message in result.output and "genes.txt" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_map_genes_keep_genes_unknown_symbol(apoe_fileset, tmp_path):
    panel = tmp_path / "panel.txt"
    panel.write_text("APOE\nNOTAGENE\n")
    result, out = _map(apoe_fileset, tmp_path, GLIST, extra=("--keep-genes", str(panel)))
    assert result.exit_code == 2 and "panel.txt" in result.output and "NOTAGENE" in result.output


def _explained_share_oracle(dosages, chosen):
    """Share of total standardised variance in the span of the chosen SNPs, by least squares."""
    g = dosages.astype(float)
    z = (g - g.mean(0)) / g.std(0)
    fitted = z[:, chosen] @ np.linalg.lstsq(z[:, chosen], z, rcond=None)[0]
    return (fitted ** 2).sum() / (z ** 2).sum()


def test_ld_score_selection_explains_requested_variance():
    rng = np.random.default_rng(1)
    # 3 LD blocks of 6 SNPs: each SNP copies its block's founder haplotype with 5% mismatch.
    founders = rng.binomial(2, 0.3, size=(800, 3))
    dosages = np.repeat(founders, 6, axis=1)
    noise = rng.random(dosages.shape) < 0.05
    dosages[noise] = rng.binomial(2, 0.3, size=noise.sum())
    ld = ld_matrix(dosages.astype(np.int8))
    chosen, share = select_by_ld_score(ld, 0.9)
    assert share >= 0.9
    np.testing.assert_allclose(share, _explained_share_oracle(dosages, chosen), rtol=1e-9)
    assert np.argmax((ld ** 2).sum(0)) in chosen  # the first pick is the top LD-score SNP
    assert len(chosen) < ld.shape[0]  # correlated SNPs are pruned
    # keeping everything explains everything; one SNP less would not reach the target
    all_chosen, all_share = select_by_ld_score(ld, 1.0)
    np.testing.assert_allclose(all_share, 1.0, rtol=1e-9)
    fewer, _ = select_by_ld_score(ld, 0.9)
    assert _explained_share_oracle(dosages, fewer[:-1]) < 0.9 or len(fewer) == 1


def test_ld_score_selection_keeps_one_of_identical_snps():
    rng = np.random.default_rng(2)
    base = rng.binomial(2, 0.4, size=(500, 1))
    dosages = np.hstack([base, base, base, 2 - base]).astype(np.int8)  # perfect LD, one flipped
    chosen, share = select_by_ld_score(ld_matrix(dosages), 0.9)
    assert len(chosen) == 1 and share == pytest.approx(1.0)


def test_prune_drops_genes_removed_by_qc(apoe_fileset, tmp_path):
    mapping = tmp_path / "map.tsv"
    mapping.write_text("snp\tgene\n" + "".join(f"rs5_{i}\tAPOE\n" for i in range(20, 60))
                       + "gone1\tLOSTGENE\ngone2\tLOSTGENE\n")
    out = tmp_path / "pruned.tsv"
    result = CliRunner().invoke(cli, ["prune", "--bfile", str(apoe_fileset), "--map", str(mapping),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "LOSTGENE" in result.output
    pruned = pd.read_csv(out, sep="\t")
    assert set(pruned.gene) == {"APOE"} and 0 < len(pruned) <= 40
    summary = pd.read_csv(tmp_path / "pruned.genes.tsv", sep="\t")
    assert (summary.variance_explained >= 0.9).all()
