"""Brain-genotype scores: building blocks against exact or independent oracles, CLI errors, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import torch
from click.testing import CliRunner
from sklearn.metrics import balanced_accuracy_score
from statsmodels.stats.multitest import multipletests

from ginn.bgs.associate import benjamini_hochberg, nested_f_test
from ginn.bgs.images import BgsData, stratified_split, zscore_in_mask
from ginn.bgs.model import build_model, masked_cross_entropy
from ginn.bgs.saliency import smoothgrad, top_voxels
from ginn.bgs.score import brier_score, expected_calibration_error, genotype_metrics, informative_heads
from ginn.bgs.templates import Grid, load_template, resample_to_grid
from ginn.bgs.train import balanced_sampling_weights
from ginn.cli import cli

VOXEL = 8.0


def invoke(args: list[str]):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """A 40-subject cohort at 8 mm and its prepared folder (a few seconds)."""
    root = tmp_path_factory.mktemp("bgs_small")
    result = invoke(["-q", "bgs", "simulate", "--n-subjects", "40", "--n-snps", "3", "--voxel-size", "8",
                     "--regions", "superiorfrontal", "--seed", "5", "--out", str(root / "cohort")])
    assert result.exit_code == 0, result.output
    result = invoke(["-q", "bgs", "prepare", "--subjects", str(root / "cohort/subjects.tsv"), "--bfile",
                     str(root / "cohort/genotypes"), "--voxel-size", "8", "--val-fraction", "0.2",
                     "--test-fraction", "0.2", "--out", str(root / "prep")])
    assert result.exit_code == 0, result.output
    return root


def test_template_is_shipped_and_aligned():
    template = load_template(VOXEL)
    assert template.t1.shape == template.grid.shape == template.mask.shape == template.atlas.shape
    # the atlas lies inside the brain mask and covers its cortex: >= 40% of brain voxels carry a label
    assert (template.atlas[~template.mask] == 0).all()
    assert (template.atlas[template.mask] > 0).mean() > 0.4
    # template brighter inside the brain than outside (grey/white matter vs background)
    assert template.t1[template.mask].mean() > 5 * template.t1[~template.mask].mean()


def test_resample_identity_and_zscore():
    rng = np.random.default_rng(0)
    grid = Grid(shape=(6, 7, 5), affine=np.diag([4.0, 4.0, 4.0, 1.0]))
    volume = rng.normal(size=grid.shape).astype(np.float32)
    np.testing.assert_allclose(resample_to_grid(volume, grid.affine, grid), volume, atol=1e-5)
    mask = np.zeros(grid.shape, bool)
    mask[1:5, 1:6, 1:4] = True
    z = zscore_in_mask(volume * 3 + 7, mask)
    assert abs(z[mask].mean()) < 1e-5 and abs(z[mask].std() - 1) < 1e-5 and (z[~mask] == 0).all()


def test_prepared_folder(cohort):
    data = BgsData.load(cohort / "prep")
    assert data.images.shape == (40,) + data.grid.shape and data.images.dtype == np.float16
    volume = np.asarray(data.images[0], dtype=np.float32)
    assert abs(volume[data.mask].mean()) < 0.01 and abs(volume[data.mask].std() - 1) < 0.01
    assert data.snps == ["rs_bgs1", "rs_bgs2", "rs_bgs3"]
    truth = pd.read_csv(cohort / "cohort/genotypes.fam", sep=" ", header=None)
    assert list(data.samples["IID"]) == list(truth[1])
    assert set(data.samples["sex"]) <= {"male", "female"}
    idp = pd.read_csv(cohort / "prep/idp.tsv", sep="\t")
    assert len(idp) == 40 and "superiorfrontal_L" in idp.columns


def test_stratified_split_keeps_class_proportions():
    rng = np.random.default_rng(1)
    genotypes = rng.binomial(2, [0.2, 0.4, 0.5], size=(1000, 3)).astype(np.int8)
    split = stratified_split(genotypes, 0.1, 0.1, seed=3)
    assert [(split == s).sum() for s in ("train", "val", "test")] == pytest.approx([800, 100, 100], abs=3)
    for j in range(3):
        overall = np.bincount(genotypes[:, j], minlength=3) / 1000
        test = np.bincount(genotypes[split == "test", j], minlength=3) / 100
        assert np.abs(test - overall).max() < 0.03  # iterative stratification: within a few subjects
    np.testing.assert_array_equal(split, stratified_split(genotypes, 0.1, 0.1, seed=3))


@pytest.mark.parametrize("arch,features", [("resnet10-se", 512), ("sfcn-lite", 128)])
def test_models_give_one_three_class_head_per_snp(arch, features):
    torch.manual_seed(0)
    model = build_model({"arch": arch, "n_snps": 5}).eval()
    assert model.heads.in_features == features and model.heads.out_features == 15
    logits = model(torch.randn(2, 1, 21, 26, 23))
    assert logits.shape == (2, 5, 3)


def test_masked_cross_entropy_skips_missing_calls():
    logits = torch.randn(4, 3, 3)
    genotypes = torch.tensor([[0, 1, -1], [2, -1, -1], [1, 1, 0], [-1, 2, 2]])
    called = genotypes >= 0
    expected = torch.nn.functional.cross_entropy(logits[called], genotypes[called])
    assert torch.allclose(masked_cross_entropy(logits, genotypes), expected)


def test_balanced_sampling_equalises_classes():
    rng = np.random.default_rng(2)
    genotypes = rng.binomial(2, 0.2, size=(3000, 1)).astype(np.int8)
    weights = balanced_sampling_weights(genotypes)
    mass = [weights[genotypes[:, 0] == c].sum() for c in range(3)]
    np.testing.assert_allclose(mass, 1 / 3, atol=1e-9)  # one SNP: exactly a third of the draws per class


def test_genotype_metrics_against_sklearn_and_hand_values():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3)) + 1.5 * np.eye(3)[truth]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    metrics = genotype_metrics(truth, probabilities, np.random.default_rng(0))
    assert metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truth, probabilities.argmax(1)))
    assert metrics["bacc_lo"] < metrics["balanced_accuracy"] < metrics["bacc_hi"]
    dosage = probabilities[:, 1] + 2 * probabilities[:, 2]
    assert metrics["dosage_r"] == pytest.approx(np.corrcoef(dosage, truth)[0, 1])
    # calibration oracles: a confident correct forecast has ECE 0 and Brier 0; uniform has Brier 2/3
    sure = np.eye(3)[truth]
    assert expected_calibration_error(truth, sure) == 0 and brier_score(truth, sure) == 0
    assert brier_score(truth, np.full((400, 3), 1 / 3)) == pytest.approx(2 / 3)
    # two bins by hand: conf 0.9 (3 of 4 right) and conf 0.5 (1 of 2 right) -> (4*0.15 + 2*0) / 6
    hand = np.array([[0.9, 0.05, 0.05]] * 4 + [[0.5, 0.5, 0.0]] * 2)
    assert expected_calibration_error(np.array([0, 0, 0, 1, 0, 2]), hand) == pytest.approx(0.1)


def test_informative_heads_gate():
    rng = np.random.default_rng(4)
    genotypes = rng.integers(0, 3, size=(200, 2)).astype(np.int8)
    probabilities = rng.dirichlet([1, 1, 1], size=(200, 2))
    probabilities[:, 0] = np.eye(3)[genotypes[:, 0]] * 0.6 + 0.4 / 3  # informative head
    gate = informative_heads(genotypes, probabilities, alpha=0.05)
    assert list(gate["informative"]) == [True, False]


def test_nested_f_test_matches_statsmodels():
    rng = np.random.default_rng(5)
    n = 150
    covariates = rng.normal(size=(n, 3))
    extra = rng.dirichlet([1, 1, 1], size=n)[:, [0, 2]]
    y = covariates @ [0.5, -0.2, 0.1] + 0.8 * extra[:, 0] + rng.normal(size=n)
    reduced = sm.add_constant(covariates)
    full_fit = sm.OLS(y, np.column_stack([reduced, extra])).fit()
    f_stat, p, df_diff = full_fit.compare_f_test(sm.OLS(y, reduced).fit())
    ours = nested_f_test(y, reduced, extra)
    assert ours["f_stat"] == pytest.approx(f_stat) and ours["p"] == pytest.approx(p) and ours["df_num"] == df_diff
    assert ours["delta_r2"] == pytest.approx(full_fit.rsquared - sm.OLS(y, reduced).fit().rsquared)


def test_benjamini_hochberg_matches_statsmodels():
    p = np.array([0.001, 0.2, np.nan, 0.03, 0.04, 0.9])
    expected = multipletests(p[~np.isnan(p)], method="fdr_bh")[1]
    q = benjamini_hochberg(p)
    np.testing.assert_allclose(q[~np.isnan(p)], expected)
    assert np.isnan(q[2])


def test_smoothgrad_of_a_linear_model_is_its_weight_magnitude():
    """For logits linear in the input every gradient equals the weights, whatever the noise."""

    class Linear(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.randn(6, 4, 5, 6, generator=torch.Generator().manual_seed(0))  # (SNP x class, voxels)
            self.n_snps = 2

        def forward(self, x):
            flat = x.flatten(1)
            return (flat @ self.weight.flatten(1).T).view(-1, 2, 3)

    model = Linear()
    volumes = torch.randn(2, 1, 4, 5, 6)
    maps = smoothgrad(model, volumes, snp=1, target_classes=torch.tensor([0, 2]), n_samples=3, noise=0.2,
                      generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(maps[0], model.weight[3 + 0].abs().numpy(), rtol=1e-5)  # SNP 1, class 0
    np.testing.assert_allclose(maps[1], model.weight[3 + 2].abs().numpy(), rtol=1e-5)  # SNP 1, class 2
    assert top_voxels(maps[0], np.ones(maps[0].shape, bool), fraction=0.05).sum() == 6


def test_training_is_seeded_and_resumes_exactly(cohort, tmp_path):
    common = ["-q", "bgs", "train", "--data", str(cohort / "prep"), "--arch", "sfcn-lite", "--width", "4",
              "--batch-size", "8", "--threads", "1", "--gate-alpha", "0", "--seed", "7"]
    assert invoke(common + ["--epochs", "2", "--out", str(tmp_path / "a")]).exit_code == 0
    assert invoke(common + ["--epochs", "2", "--out", str(tmp_path / "b")]).exit_code == 0
    checkpoint = tmp_path / "resume.pt"
    assert invoke(common + ["--epochs", "1", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "c1")]).exit_code == 0
    assert invoke(common + ["--epochs", "2", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "c")]).exit_code == 0
    states = [torch.load(tmp_path / name / "model.pt") for name in ("a", "b", "c")]
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key  # same seed -> identical weights
        assert torch.equal(states[0][key], states[2][key]), key  # resumed run == uninterrupted run
    history = pd.read_csv(tmp_path / "a" / "history.tsv", sep="\t")
    assert list(history["epoch"]) == [0, 1] and (tmp_path / "a" / "curves.png").stat().st_size > 0
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["snps"] == ["rs_bgs1", "rs_bgs2", "rs_bgs3"] and (tmp_path / "a" / "provenance.json").is_file()


def _assert_clean_error(result, needle: str, out: Path):
    assert result.exit_code == 2
    message = result.output.strip().splitlines()
    assert len(message) == 1 and message[0].startswith("ginn bgs ") and ": error: " in message[0]
    assert needle in message[0]
    assert not out.exists()


def test_bad_inputs_fail_with_one_line_and_no_output(cohort, tmp_path):
    subjects = pd.read_csv(cohort / "cohort/subjects.tsv", sep="\t")
    subjects["image"] = [str(cohort / "cohort" / p) for p in subjects["image"]]
    prepare = ["bgs", "prepare", "--bfile", str(cohort / "cohort/genotypes"), "--voxel-size", "8"]
    out = tmp_path / "prep"

    missing = subjects.copy()
    missing.loc[3, "image"] = str(tmp_path / "nowhere.nii.gz")
    missing.to_csv(tmp_path / "missing.tsv", sep="\t", index=False)
    result = invoke(prepare + ["--subjects", str(tmp_path / "missing.tsv"), "--out", str(out)])
    _assert_clean_error(result, "nowhere.nii.gz: image file not found", out)

    stranger = pd.concat([subjects, subjects.iloc[[0]].assign(FID="x9", IID="x9")])
    stranger.to_csv(tmp_path / "stranger.tsv", sep="\t", index=False)
    result = invoke(prepare + ["--subjects", str(tmp_path / "stranger.tsv"), "--out", str(out)])
    _assert_clean_error(result, "not in the genotypes", out)

    wrong = tmp_path / "wrong.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((10, 10, 10), np.float32), np.diag([8.0, 8, 8, 1])), wrong)
    reshaped = subjects.copy()
    reshaped.loc[5, "image"] = str(wrong)
    reshaped.to_csv(tmp_path / "reshaped.tsv", sep="\t", index=False)
    result = invoke(prepare + ["--subjects", str(tmp_path / "reshaped.tsv"), "--out", str(out)])
    _assert_clean_error(result, "differs from the cohort's", out)

    result = invoke(["bgs", "train", "--data", str(cohort / "cohort"), "--out", str(tmp_path / "model")])
    _assert_clean_error(result, "not a prepared imaging folder", tmp_path / "model")


@pytest.mark.parametrize("method", ["lightgbm", "svm"])
def test_idp_baseline_writes_scores_for_the_test_split(cohort, tmp_path, method):
    out = tmp_path / f"idp-{method}.tsv"
    assert invoke(["-q", "bgs", "idp", "--data", str(cohort / "prep"), "--method", method, "--out", str(out)]).exit_code == 0
    scores = pd.read_csv(out, sep="\t")
    samples = pd.read_csv(cohort / "prep/samples.tsv", sep="\t")
    assert set(scores["IID"]) == set(samples.loc[samples["split"] == "test", "IID"])
    # probabilities are written with 6 significant digits: three roundings of at most 5e-7 each
    np.testing.assert_allclose(scores[["p0", "p1", "p2"]].sum(axis=1), 1, atol=1.5e-6)
    metrics = pd.read_csv(tmp_path / f"idp-{method}.metrics.tsv", sep="\t")
    assert list(metrics["snp"]) == ["rs_bgs1", "rs_bgs2", "rs_bgs3"] and metrics["method"].eq(f"idp-{method}").all()
