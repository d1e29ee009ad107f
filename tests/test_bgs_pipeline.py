"""End to end on a synthetic cohort (CPU size): planted SNPs are recovered, localised and associated.

300 subjects at 8 mm, 4 SNPs of which rs_bgs1 (bilateral superior frontal) and rs_bgs2 (bilateral lateral
occipital) are planted; a 40% held-out split gives 120 scored subjects, so a real effect is far beyond
the tolerances below while the seeded run takes about a minute of CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ginn.bgs.report import bgs_report_section
from ginn.cli import cli

PLANTED, UNPLANTED = ["rs_bgs1", "rs_bgs2"], ["rs_bgs3", "rs_bgs4"]
ALPHA = 0.05


def run(*args: str) -> None:
    result = CliRunner().invoke(cli, ["-q", "bgs", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bgs_e2e") / "bgs"
    root.mkdir()
    cohort, prep, model = root / "cohort", root / "prep", root / "model"
    run("simulate", "--n-subjects", "300", "--n-snps", "4", "--voxel-size", "8", "--intensity-effect", "0.3",
        "--nongenetic-sd", "0.3", "--seed", "3", "--out", str(cohort))
    run("prepare", "--subjects", str(cohort / "subjects.tsv"), "--bfile", str(cohort / "genotypes"), "--voxel-size",
        "8", "--val-fraction", "0.2", "--test-fraction", "0.4", "--seed", "3", "--out", str(prep))
    run("train", "--data", str(prep), "--arch", "sfcn-lite", "--width", "8", "--epochs", "6", "--batch-size", "16",
        "--lr", "3e-3", "--patience", "3", "--threads", "2", "--seed", "3", "--out", str(model))
    run("score", "--data", str(prep), "--model", str(model), "--out", str(root / "cnn.tsv"))
    run("saliency", "--data", str(prep), "--model", str(model), "--snps", "rs_bgs1", "--max-subjects", "40",
        "--n-samples", "8", "--no-subject-maps", "--out", str(root / "saliency"))
    for method in ("logistic", "svm"):
        run("idp", "--data", str(prep), "--method", method, "--out", str(root / f"idp-{method}.tsv"))
    scores = ["--scores", str(root / "cnn.tsv"), "--scores", str(root / "idp-logistic.tsv"),
              "--scores", str(root / "idp-svm.tsv")]
    run("associate", *scores, "--cognition", str(cohort / "cognition.tsv"), "--covar", str(cohort / "confounders.tsv"),
        "--out", str(root / "assoc.tsv"))
    run("results", "--metrics", str(root / "cnn.metrics.tsv"), "--metrics", str(root / "idp-logistic.metrics.tsv"),
        "--metrics", str(root / "idp-svm.metrics.tsv"), "--assoc", str(root / "assoc.tsv"),
        "--truth", str(cohort / "truth.tsv"), "--out", str(root / "results.tsv"))
    return root


def _table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t")


@pytest.mark.slow
def test_planted_snps_predicted_above_chance_unplanted_not(pipeline):
    metrics = _table(pipeline / "cnn.metrics.tsv").set_index("snp")
    for snp in PLANTED:
        # 95% CIs entirely above chance: balanced accuracy > 1/3 and expected-dosage correlation > 0
        assert metrics.loc[snp, "bacc_lo"] > metrics.loc[snp, "chance"], metrics.loc[snp]
        assert metrics.loc[snp, "r_lo"] > 0 and metrics.loc[snp, "r_p"] < ALPHA / 4, metrics.loc[snp]
    gate = _table(pipeline / "model" / "gate.tsv").set_index("snp")
    for snp in UNPLANTED:
        # the raw head's validation dosage correlation is not significant after Bonferroni over SNPs ...
        assert gate.loc[snp, "val_p"] >= ALPHA / 4 and not gate.loc[snp, "informative"]
        # ... and the held-out score is no better than chance
        assert not metrics.loc[snp, "bacc_lo"] > metrics.loc[snp, "chance"]
        assert not metrics.loc[snp, "r_lo"] > 0


@pytest.mark.slow
def test_group_saliency_peaks_in_the_planted_region(pipeline):
    truth = _table(pipeline / "cohort" / "truth.tsv").set_index("snp")
    region_ids = [int(i) for i in str(truth.loc["rs_bgs1", "region_id"]).split("+")]
    regions = _table(pipeline / "saliency" / "regions.tsv")
    overall = regions[(regions["snp"] == "rs_bgs1") & (regions["group"] == "all")]
    # the criterion: at least half of the group map's top-1% brain voxels inside the planted region
    assert overall.loc[overall["region_id"].isin(region_ids), "top1_share"].sum() >= 0.5
    assert overall.iloc[0]["region_id"] in region_ids  # the highest mean saliency is in the planted region
    assert (pipeline / "saliency" / "group" / "rs_bgs1_all.nii.gz").is_file()
    assert (pipeline / "saliency" / "figures" / "rs_bgs1.png").stat().st_size > 0


@pytest.mark.slow
def test_planted_scores_associate_with_cognition_unplanted_do_not(pipeline):
    assoc = _table(pipeline / "assoc.tsv")
    cnn = assoc[assoc["method"] == "cnn-sfcn-lite"]
    assert len(cnn) == 8  # 4 SNPs x 2 measures
    for snp in PLANTED:  # each planted SNP's score explains a cognition measure after Bonferroni over 8 tests
        assert cnn.loc[cnn["snp"] == snp, "significant"].any()
    unplanted = cnn[cnn["snp"].isin(UNPLANTED)]
    assert not unplanted["significant"].any()
    # nominal rate: at most 1 of the 4 unplanted tests at p < 0.05 (binomial(4, 0.05) tail P(>=2) = 0.014)
    assert (unplanted["p"].fillna(1) < ALPHA).sum() <= 1


@pytest.mark.slow
def test_idp_baselines_are_measured_on_the_same_subjects(pipeline):
    results = _table(pipeline / "results.tsv")
    assert set(results["method"]) == {"cnn-sfcn-lite", "idp-logistic", "idp-svm"}
    assert results.groupby("method")["n"].apply(lambda n: tuple(n)).nunique() == 1  # same held-out subjects
    cnn_ids = _table(pipeline / "cnn.tsv")[["FID", "IID"]].drop_duplicates()
    idp_ids = _table(pipeline / "idp-svm.tsv")[["FID", "IID"]].drop_duplicates()
    pd.testing.assert_frame_equal(cnn_ids.reset_index(drop=True), idp_ids.reset_index(drop=True))
    assert results["planted"].sum() == 2 * 3 and np.isfinite(results["balanced_accuracy"]).all()
    html = bgs_report_section(pipeline.parent)
    assert html.startswith('<section id="brain-genotype-scores">') and "idp-svm" in html
    assert html.count("data:image/png;base64,") == 2  # training curves + the saliency figure
