"""Brain-genotype scores: building blocks against exact or independent oracles, CLI errors, determinism."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import torch
from click.testing import CliRunner
from sklearn.metrics import balanced_accuracy_score, f1_score
from statsmodels.stats.multitest import multipletests

from ginn.bgs.agreement import agreement_table
from ginn.bgs.associate import associate, calibrated_p, nested_f_test
from ginn.permtest import bh_qvalues
from ginn.bgs.images import BgsData, stratified_split, zscore_in_mask
from ginn.bgs.model import build_model, masked_cross_entropy, training_loss
from ginn.bgs.saliency import smoothgrad, top_voxels
from ginn.bgs.score import (brier_score, classwise_calibration_error, expected_calibration_error, genotype_metrics,
                            score_table)
from ginn.bgs.templates import Grid, load_template, resample_to_grid
from ginn.bgs.train import balanced_sampling_weights
from ginn.cli import cli
from ginn.qc import hwe_exact_pvalues

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
                     "--test-fraction", "0.2", "--n-controls", "12", "--out", str(root / "prep")])
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
    # negative controls: each is a SNP's genotypes permuted across subjects (same class counts, other order)
    assert data.control_names[:2] == ["control001", "control002"] and data.controls.shape == (40, 12)
    for k in range(12):
        source = data.genotypes[:, k % 3]
        assert sorted(data.controls[:, k]) == sorted(source)
    assert not all((data.controls[:, k] == data.genotypes[:, k % 3]).all() for k in range(12))
    # the simulated IDPs are volumes: regional volumes sum to less than total brain volume, all positive
    volumes = pd.read_csv(cohort / "cohort/idp.tsv", sep="\t")
    regional = volumes.drop(columns=["FID", "IID", "total_brain_volume"])
    assert (regional.to_numpy() >= 0).all() and (regional.sum(axis=1) < volumes["total_brain_volume"]).all()


def test_snp_table_describes_the_prepared_genotypes(cohort):
    """snps.tsv's missing rate, MAF and HWE p are those of the genotypes prepared (A1 dosages, -1 missing)."""
    data = BgsData.load(cohort / "prep")
    snps = pd.read_csv(cohort / "prep/snps.tsv", sep="\t")
    genotypes = data.genotypes
    n0, n1, n2 = ((genotypes == g).sum(axis=0) for g in (0, 1, 2))
    called = n0 + n1 + n2
    assert (called < len(genotypes)).any()  # the cohort has missing calls, so a mix-up of classes would show
    a1_freq = (n1 + 2 * n2) / (2 * called)
    np.testing.assert_allclose(snps["missing_rate"], (genotypes < 0).mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(snps["maf"], np.minimum(a1_freq, 1 - a1_freq), rtol=1e-5)
    np.testing.assert_allclose(snps["hwe_p"], hwe_exact_pvalues(n2, n1, n0), rtol=1e-5)


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


def test_control_heads_read_detached_features():
    """Control heads learn from the shared features but never change them: the features' gradient is the
    SNP heads' alone, and the SNP part of the loss does not depend on how many controls there are."""
    torch.manual_seed(0)
    with_controls = build_model({"arch": "sfcn-lite", "width": 4, "n_snps": 2, "n_controls": 5})
    alone = build_model({"arch": "sfcn-lite", "width": 4, "n_snps": 2})
    alone.load_state_dict({k: v for k, v in with_controls.state_dict().items() if not k.startswith("control_heads")})
    x = torch.randn(3, 1, 10, 12, 10)
    labels = torch.randint(0, 3, (3, 7))
    grads = []
    for model, used in ((with_controls, labels), (alone, labels[:, :2])):
        model.train()
        model.zero_grad()
        training_loss(model(x), used, 2).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    for name, grad in grads[1].items():
        torch.testing.assert_close(grads[0][name], grad)
    assert grads[0]["control_heads.weight"].abs().sum() > 0


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
    # per class by hand, same forecasts: class 0 bins p=0.9 (3 of 4 are 0) and p=0.5 (1 of 2) -> 4/6*0.15;
    # class 1 bins p=0.05 (1 of 4) and p=0.5 (0 of 2) -> (4*0.2 + 2*0.5)/6; class 2: p=0.05 and p=0 share the
    # first bin, where 1 of 6 is class 2 at mean p 0.2/6 -> |1/6 - 0.2/6|
    np.testing.assert_allclose(classwise_calibration_error(np.array([0, 0, 0, 1, 0, 2]), hand),
                               [4 / 6 * 0.15, (4 * 0.2 + 2 * 0.5) / 6, 0.8 / 6])
    assert metrics["macro_f1"] == pytest.approx(f1_score(truth, probabilities.argmax(1), average="macro"))


def test_calibrated_p_is_uniform_for_a_new_draw_from_the_null():
    """A new draw from the controls' distribution gets a uniform p whatever that distribution's mean and
    spread: 4000 draws of 100 controls + 1 test from N(1.5, 3^2). The rate at 0.05 has binomial SD 0.0034;
    0.035-0.065 is over 4 SD, so an error in the t predictive scaling (sqrt(1 + 1/K), K - 1 df) shows."""
    rng = np.random.default_rng(11)
    p = np.array([calibrated_p(float(rng.normal(1.5, 3)), rng.normal(1.5, 3, 100))[2] for _ in range(4000)])
    assert 0.035 < (p < 0.05).mean() < 0.065
    assert 0.08 < (p < 0.1).mean() < 0.12
    assert np.isnan(calibrated_p(1.0, rng.normal(size=5))[2])  # too few controls to call anything


def _scores_with_shared_anatomy(rng, n: int, n_controls: int, signal: float):
    """SCORES rows of one method and a cognition table: every head reads a shared anatomy factor that drives
    cognition (so every head 'associates' under plain OLS); SNP 'real' also carries ``signal``."""
    anatomy, path = rng.normal(size=n), rng.normal(size=n)
    cognition = anatomy + signal * path + rng.normal(size=n)
    heads = ["real", "null"] + [f"control{k:03d}" for k in range(n_controls)]
    dosage = np.stack([rng.normal(1.0, 0.3) * anatomy + rng.normal(size=n) for _ in heads], axis=1)
    dosage[:, 0] += path
    labels = rng.integers(0, 3, size=(n, len(heads)))
    probabilities = np.zeros((n, len(heads), 3))
    probabilities[..., 2] = 1 / (1 + np.exp(-dosage))  # expected dosage 2 p2: a monotone map of the score
    probabilities[..., 0] = 1 - probabilities[..., 2]
    samples = pd.DataFrame({"FID": [f"f{i}" for i in range(n)], "IID": [f"i{i}" for i in range(n)]})
    scores = score_table("cnn", samples, heads, 2, labels, probabilities)
    cognition = pd.DataFrame({"memory": cognition}, index=pd.MultiIndex.from_frame(samples))
    return scores, cognition


def test_association_is_referred_to_the_control_heads():
    rng = np.random.default_rng(12)
    scores, cognition = _scores_with_shared_anatomy(rng, 400, 100, signal=1.0)
    table = associate(scores, cognition, None, genotype_baseline=False).set_index("snp")
    # plain OLS calls the head without genotype signal associated (shared anatomy, even given the other
    # head's score, which reads the same anatomy) ...
    assert table.loc["null", "p_ols"] < 0.01
    # ... the calibrated test does not, and calls the head with signal beyond the controls
    assert not table.loc["null", "significant"] and table.loc["null", "p_calibrated"] > 0.01
    assert table.loc["real", "significant"] and table.loc["real", "p_calibrated"] < 1e-4
    assert table.loc["control000", "n_controls"] == 100 and not table["significant"][table["control"]].any()
    scores, cognition = _scores_with_shared_anatomy(rng, 400, 100, signal=0.0)
    assert not associate(scores, cognition, None, genotype_baseline=False)["significant"].any()


def test_agreement_of_identical_and_independent_runs():
    rng = np.random.default_rng(13)
    samples = pd.DataFrame({"FID": [f"f{i}" for i in range(300)], "IID": [f"i{i}" for i in range(300)]})
    labels = rng.integers(0, 3, size=(300, 1))
    first = score_table("cnn", samples, ["rs1"], 1, labels, rng.dirichlet([1, 1, 1], size=(300, 1)))
    other = score_table("cnn", samples, ["rs1"], 1, labels, rng.dirichlet([1, 1, 1], size=(300, 1)))
    same = agreement_table([first, first.copy()]).iloc[0]
    assert same["dosage_r_mean"] == pytest.approx(1) and same["kappa_mean"] == pytest.approx(1)
    assert same["bacc_sd"] == 0 and same["n_seeds"] == 2 and same["n"] == 300
    independent = agreement_table([first, other]).iloc[0]
    # independent random scores: r and kappa near 0 (SE about 1/sqrt(300) = 0.06; 0.2 is over 3 SE)
    assert abs(independent["dosage_r_mean"]) < 0.2 and abs(independent["kappa_mean"]) < 0.2


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
    q = bh_qvalues(p)
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
              "--batch-size", "8", "--threads", "1", "--seed", "7"]
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
    assert config["n_controls"] == 12 and "control_heads.weight" in states[0]


def _assert_clean_error(result, needle: str, out: Path):
    assert result.exit_code == 2
    message = result.output.strip().splitlines()
    assert len(message) == 1 and message[0].startswith("ginn bgs ") and ": error: " in message[0]
    assert needle in message[0]
    assert not out.exists()


def _bad_image(cohort: Path, tmp_path: Path, name: str, change) -> str:
    """A copy of subject 1's image with its voxel array changed by ``change`` (header and affine kept)."""
    img = nib.load(cohort / "cohort/images/s1.nii.gz")
    path = tmp_path / name
    nib.save(nib.Nifti1Image(change(np.asarray(img.dataobj)), img.affine), path)
    return str(path)


def _shift_40mm(data: np.ndarray) -> np.ndarray:
    shifted = np.zeros_like(data)
    shifted[:, 5:] = data[:, :-5]  # 5 voxels of 8 mm towards anterior
    return shifted


def test_bad_inputs_fail_with_one_line_and_no_output(cohort, tmp_path):
    """Each bad input: one line naming the right file, exit 2, no output; all found before any image is read."""
    subjects = pd.read_csv(cohort / "cohort/subjects.tsv", sep="\t")
    subjects["image"] = [str(cohort / "cohort" / p) for p in subjects["image"]]
    prepare = ["bgs", "prepare", "--bfile", str(cohort / "cohort/genotypes"), "--voxel-size", "8", "--n-controls", "10"]
    out = tmp_path / "prep"

    def check(table: pd.DataFrame, needle: str, name: str = "subjects.tsv", csv: bool = False, extra=()):
        path = tmp_path / name
        table.to_csv(path, sep="," if csv else "\t", index=False)
        _assert_clean_error(invoke(prepare + ["--subjects", str(path), "--out", str(out), *extra]), needle, out)

    missing = subjects.copy()
    missing.loc[35, "image"] = str(tmp_path / "nowhere.nii.gz")  # late in the sheet: still found before any work
    check(missing, "nowhere.nii.gz: image file not found")
    stranger = shutil.copy(subjects.image[0], tmp_path / "x9.nii.gz")
    check(pd.concat([subjects, subjects.iloc[[0]].assign(FID="x9", IID="x9", image=str(stranger))]), "not in the genotypes")
    wrong = tmp_path / "wrong.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((10, 10, 10), np.float32), np.diag([8.0, 8, 8, 1])), wrong)
    first_wrong = subjects.copy()
    first_wrong.loc[0, "image"] = str(wrong)  # the odd file first: the error names it, not the next one
    check(first_wrong, "wrong.nii.gz: image shape (10, 10, 10) differs from the cohort's")
    moved = subjects.copy()
    moved.loc[7, "image"] = _bad_image(cohort, tmp_path, "shifted.nii.gz", _shift_40mm)
    check(moved, "shifted.nii.gz: image correlates r=")
    flipped = subjects.copy()
    flipped.loc[9, "image"] = _bad_image(cohort, tmp_path, "flipped.nii.gz", lambda d: d[:, ::-1].copy())
    check(flipped, "flipped.nii.gz: image looks flipped anterior-posterior")
    check(subjects.drop(columns=["IID"]), "subjects.csv: subject sheet lacks column(s) IID", "subjects.csv", csv=True)
    check(subjects[["FID", "IID"]], "subjects.tsv: subject sheet has no image column")
    check(subjects[["FID", "IID"]].assign(IID=lambda t: t["IID"].where(t.index != 4, "s999")),
          "no image for subject", extra=["--image-dir", str(cohort / "cohort/images")])

    # a sex code outside PLINK's and the words, and one image given for two subjects, are sheet typos
    check(subjects.assign(sex=subjects["sex"].astype(str).where(subjects.index != 3, "7")),
          f"subject {subjects.FID[3]} {subjects.IID[3]}: sex '7' is not")
    check(subjects.assign(image=subjects["image"].where(subjects.index != 5, subjects.image[4])),
          f"subjects {subjects.FID[4]} {subjects.IID[4]} and {subjects.FID[5]} {subjects.IID[5]} share the image")

    # a SNP given twice would get two heads (and be tested twice)
    snp = (cohort / "cohort/genotypes.bim").read_text().split()[1]
    check(subjects, f"--snps: names {snp} twice", extra=["--snps", f"{snp},{snp}"])

    # a correlation threshold above 1 once blamed the first image for failing it
    check(subjects, "Invalid value for '--min-mask-r': 2.0 is not in the range 0<=x<=1",
          extra=["--min-mask-r", "2"])

    result = invoke(["bgs", "train", "--data", str(cohort / "cohort"), "--out", str(tmp_path / "model")])
    _assert_clean_error(result, "not a prepared imaging folder", tmp_path / "model")


def test_folder_of_images_with_a_sheet_of_ids_and_csv_sheets(cohort, tmp_path):
    """A folder of <IID>.nii.gz with a sheet of IDs, or a comma-separated sheet, prepare as the tab sheet does."""
    subjects = pd.read_csv(cohort / "cohort/subjects.tsv", sep="\t")
    subjects[["FID", "IID"]].to_csv(tmp_path / "ids.csv", index=False)
    subjects.to_csv(tmp_path / "sheet.csv", index=False)
    common = ["-q", "bgs", "prepare", "--bfile", str(cohort / "cohort/genotypes"), "--voxel-size", "8",
              "--val-fraction", "0.2", "--test-fraction", "0.2", "--n-controls", "12"]
    ids = invoke(common + ["--subjects", str(tmp_path / "ids.csv"), "--image-dir", str(cohort / "cohort/images"),
                           "--out", str(tmp_path / "from_ids")])
    assert ids.exit_code == 0, ids.output
    (tmp_path / "images").symlink_to(cohort / "cohort/images")  # the csv's relative paths resolve beside it
    csv = invoke(common + ["--subjects", str(tmp_path / "sheet.csv"), "--out", str(tmp_path / "from_csv")])
    assert csv.exit_code == 0, csv.output
    reference = np.load(cohort / "prep/images.npy")
    for name in ("from_ids", "from_csv"):
        np.testing.assert_array_equal(np.load(tmp_path / name / "images.npy"), reference)


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


def test_gpu_check_script_dry_run():
    """The GPU check runs the training step it times; --dry-run does so on the CPU at 8 mm."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root / "src"), OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(root / "benchmarks/bgs_gpu_check.py"), "--dry-run"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith("8 mm grid ") and " volumes/s, peak memory " in line and "100 controls" in line


def test_registration_correlations_equal_numpy_pearson_of_the_flipped_volumes():
    """One standardisation serves the three registration checks: r with the mask equals np.corrcoef of
    the volume, and r with the flipped mask equals np.corrcoef of the flipped volume."""
    from ginn.bgs.images import mask_correlations

    rng = np.random.default_rng(0)
    mask = np.zeros((20, 24, 18), bool)
    mask[4:15, 3:20, 2:12] = True
    volume = mask * rng.random(mask.shape) + 0.1 * rng.random(mask.shape)
    volume[:, :5] *= 3
    expected = [np.corrcoef(v.ravel(), mask.ravel().astype(float))[0, 1]
                for v in (volume, np.flip(volume, 1), np.flip(volume, 2))]
    assert np.allclose(mask_correlations(volume, mask), expected, rtol=0, atol=1e-12)
    assert mask_correlations(np.ones(mask.shape), mask) == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("damage,needle", [
    (lambda m: (m / "model.pt").write_bytes(b""), "model.pt: cannot load weights: the file is empty or cut short"),
    (lambda m: (m / "model.pt").write_bytes(b"garbage"), "model.pt: cannot load weights: not a torch weights file"),
    (lambda m: (m / "config.json").write_text("{"), "config.json: malformed model description"),
    (lambda m: (m / "config.json").write_text('{"arch": "sfcn-lite", "width": 4, "n_snps": 2}'),
     "model.pt: cannot load weights: Error(s) in loading state_dict"),
])
def test_a_damaged_model_folder_is_one_line_naming_the_file(cohort, tmp_path, damage, needle):
    from ginn.bgs.model import build_model, save_trained

    config = {"arch": "sfcn-lite", "width": 4, "n_snps": 3}
    save_trained(tmp_path, build_model(config), config)
    damage(tmp_path)
    out = tmp_path / "scores.tsv"
    result = invoke(["bgs", "score", "--data", str(cohort / "prep"), "--model", str(tmp_path), "--out", str(out)])
    _assert_clean_error(result, needle, out)
