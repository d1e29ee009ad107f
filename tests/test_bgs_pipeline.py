"""End to end on synthetic cohorts (CPU size): the calibrated association test separates the two paths.

One set of 400 subjects at 8 mm with 4 SNPs, of which rs_bgs1 (superior frontal) and rs_bgs2 (lateral
occipital) act on their region; the cohort is simulated twice with the same seed, so images and genotypes
are identical and only cognition differs: (a) ``path``: genotype -> region -> cognition (fluid intelligence
from rs_bgs1's region, reaction time from rs_bgs2's), no shared-anatomy path; (b) ``anatomy``: only a
genotype-free global brain-size factor drives cognition. One CNN is trained (the images are the same), with
100 negative-control heads; a 40% held-out split scores 160 subjects. Effects are far larger than real SNP
effects (snp_r2 0.5, 30% regional volume and intensity change per SD, path effect 1.5 noise SDs): a
CPU-sized cohort detects nothing smaller. Training with the default learning rate and schedule. The module
took 25 min at load average 12-19 on the 2 shared cores (training is most of it: 1.7-4 min at load 4-10).
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ginn.cli import cli

PLANTED, UNPLANTED = ["rs_bgs1", "rs_bgs2"], ["rs_bgs3", "rs_bgs4"]
CNN = "cnn-sfcn-lite"
ALPHA = 0.05
# The controls' false-positive rate is measured over 100 heads x 2 measures = 200 calibrated tests; at a true
# rate of 0.05 its binomial SD is 0.015, so the window [0.01, 0.10] is over 2.5 SD wide either side.
FPR_WINDOW = (0.01, 0.10)
COHORT = ["--n-subjects", "400", "--n-snps", "4", "--voxel-size", "8", "--snp-r2", "0.5", "--region-volume-sd",
          "0.3", "--intensity-effect", "0.3", "--seed", "3"]


def run(*args: str) -> None:
    result = CliRunner().invoke(cli, ["-q", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bgs_e2e")
    out = root / "bgs"
    out.mkdir()
    run("bgs", "simulate", *COHORT, "--path-effect", "1.5", "--anatomy-effect", "0", "--out", str(root / "path"))
    run("bgs", "simulate", *COHORT, "--path-effect", "0", "--anatomy-effect", "1.0", "--out", str(root / "anatomy"))
    prep, model = root / "prep", out / "model"
    run("bgs", "prepare", "--subjects", str(root / "path/subjects.tsv"), "--bfile", str(root / "path/genotypes"),
        "--voxel-size", "8", "--test-fraction", "0.4", "--out", str(prep))
    run("bgs", "train", "--data", str(prep), "--arch", "sfcn-lite", "--width", "8", "--epochs", "20", "--threads", "2",
        "--out", str(model))
    run("bgs", "score", "--data", str(prep), "--model", str(model), "--out", str(out / "cnn.tsv"))
    run("bgs", "saliency", "--data", str(prep), "--model", str(model), "--snps", ",".join(PLANTED),
        "--no-subject-maps", "--out", str(out / "saliency"))
    run("bgs", "idp", "--data", str(prep), "--method", "logistic", "--idp", str(root / "path/idp.tsv"),
        "--out", str(out / "idp-logistic.tsv"))
    for scenario in ("path", "anatomy"):
        run("bgs", "associate", "--scores", str(out / "cnn.tsv"), "--scores", str(out / "idp-logistic.tsv"),
            "--cognition", str(root / scenario / "cognition.tsv"), "--covar", str(root / scenario / "confounders.tsv"),
            "--out", str(root / f"{scenario}.assoc.tsv"))
    run("bgs", "results", "--metrics", str(out / "cnn.metrics.tsv"), "--metrics", str(out / "idp-logistic.metrics.tsv"),
        "--assoc", str(root / "path.assoc.tsv"), "--truth", str(root / "path/truth.tsv"),
        "--out", str(out / "results.tsv"))
    return root


def _table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t")


def _control_fpr(assoc: pd.DataFrame, method: str) -> float:
    controls = assoc[(assoc["method"] == method) & assoc["control"]]
    assert len(controls) == 200
    return float((controls["p_calibrated"] < ALPHA).mean())


@pytest.mark.slow
def test_scenarios_share_images_and_genotypes(pipeline):
    for name in ("genotypes.bed", "idp.tsv", "confounders.tsv"):
        assert filecmp.cmp(pipeline / "path" / name, pipeline / "anatomy" / name, shallow=False), name
    for name in ("images/s1.nii.gz", "images/s400.nii.gz"):
        images = [np.asarray(nib.load(pipeline / scenario / name).dataobj) for scenario in ("path", "anatomy")]
        np.testing.assert_array_equal(*images)


@pytest.mark.slow
def test_planted_snps_predicted_above_chance_unplanted_not(pipeline):
    metrics = _table(pipeline / "bgs/cnn.metrics.tsv").set_index("snp")
    for snp in PLANTED:  # 95% CIs entirely above chance
        assert metrics.loc[snp, "bacc_lo"] > metrics.loc[snp, "chance"] and metrics.loc[snp, "r_lo"] > 0, metrics.loc[snp]
    for snp in UNPLANTED:
        assert not metrics.loc[snp, "r_lo"] > 0 and not metrics.loc[snp, "bacc_lo"] > metrics.loc[snp, "chance"]


@pytest.mark.slow
def test_genotype_brain_cognition_path_passes_the_calibrated_test(pipeline):
    assoc = _table(pipeline / "path.assoc.tsv")
    cnn = assoc[(assoc["method"] == CNN) & ~assoc["control"]]
    assert len(cnn) == 8  # 4 SNPs x 2 measures
    for snp, measure in zip(PLANTED, ("fluid_intelligence", "reaction_time")):  # each drives one measure
        row = cnn[(cnn["snp"] == snp) & (cnn["measure"] == measure)].iloc[0]
        assert row["significant"], row  # Bonferroni over 8 tests of the control-calibrated p
    assert not cnn.loc[cnn["snp"].isin(UNPLANTED), "significant"].any()
    assert FPR_WINDOW[0] <= _control_fpr(assoc, CNN) <= FPR_WINDOW[1]


@pytest.mark.slow
def test_shared_anatomy_alone_passes_no_score(pipeline):
    assoc = _table(pipeline / "anatomy.assoc.tsv")
    for method in (CNN, "idp-logistic", "genotype"):
        part = assoc[assoc["method"] == method]
        assert not part["significant"].any(), part[~part["control"]]
        assert FPR_WINDOW[0] <= _control_fpr(assoc, method) <= FPR_WINDOW[1]
    # without the controls the shared anatomy would pass: plain OLS p < 0.05 for far more than 5% of the
    # control heads (binomial(200, 0.05) exceeds 0.10 with probability < 0.3%)
    controls = assoc[(assoc["method"] == CNN) & assoc["control"]]
    assert (controls["p_ols"] < ALPHA).mean() > 0.10


@pytest.mark.slow
def test_saliency_ranks_the_planted_region_in_the_top_three(pipeline):
    truth = _table(pipeline / "path/truth.tsv").set_index("snp")
    regions = _table(pipeline / "bgs/saliency/regions.tsv")
    for snp in PLANTED:
        planted = {int(i) for i in str(truth.loc[snp, "region_id"]).split("+")}
        ranked = regions[(regions["snp"] == snp) & (regions["group"] == "all")].sort_values(
            "mean_saliency", ascending=False)
        assert planted & set(ranked["region_id"].head(3)), ranked.head(5)  # an atlas region of the planted set
    assert (pipeline / "bgs/saliency/figures/rs_bgs1.png").stat().st_size > 0


@pytest.mark.slow
def test_report_from_the_cli_shows_the_imaging_section(pipeline, tmp_path):
    out = tmp_path / "report.html"
    run("report", "--outdir", str(pipeline), "--out", str(out))
    page = out.read_text()
    assert '<section id="brain-genotype-scores">' in page and "idp-logistic" in page and "control_fpr" in page
    # training curves, two reliability plots, two saliency figures
    assert page.count("data:image/png;base64,") >= 5
