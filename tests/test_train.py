"""The batched trainer: equivalence with one-at-a-time training, per-network early stopping,
permuted targets, the train/tune commands and their bad inputs, and recovery on simulated data."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ginn import fused
from ginn.cli import cli
from ginn.dataset import Dataset
from ginn.errors import GinnError
from ginn.model import (GeneNetworkEnsemble, GenotypeBatcher, load_ensemble, make_config, network_seed, predict,
                        predict_batches)
from ginn.targets import build_targets, parse_permutations, permutation
from ginn.train import NetworkPlan, TrainSettings, read_hparams, train_networks, validation_split

from _train_data import tiny_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Networks trained in one batch differ from the same networks trained alone only by float32
# summation order inside the batched matrix products (~1e-7 relative per operation; measured
# here: <= 2e-8 after ~20 Adam steps of 4 batches), so 1e-5 on predictions of size ~1 leaves room
# for other BLAS builds, while any real coupling between networks (a shared statistic, a wrong
# mask or target column, mixed-up Adam state) changes predictions by 1e-2 or more.
BATCH_EQUIVALENCE_TOL = 1e-5


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return Dataset.load(tiny_dataset(tmp_path_factory.mktemp("train") / "data"))


def _run(data: Dataset, plan: NetworkPlan, targets: np.ndarray, train_masks, val_masks, config=None, **settings):
    config = config or make_config(data.gene_sizes, 1, predictor_hidden=16)
    genotypes = np.asarray(data.genotypes[data.train_idx])
    options = {"max_epochs": 40, "patience": 5, "batch_size": 100, "seed": 7, "progress": False, **settings}
    return train_networks(config, genotypes, data.snp_mean, targets, train_masks, val_masks, plan,
                          TrainSettings(**options))


def _train_predictions(data: Dataset, model) -> np.ndarray:
    batcher = GenotypeBatcher(np.asarray(data.genotypes[data.train_idx]), data.snp_mean, data.gene_sizes)
    return predict_batches(model, batcher.padded_t, np.arange(len(data.train_idx)))


@pytest.mark.parametrize("hidden", [16, 20], ids=["torch-path", "fused-kernel"])
def test_batch_of_eight_equals_eight_networks_trained_alone(data, hidden):
    """H = 16 runs torch's batched products, H = 20 the fused C kernel (ginn.fused). The kernel's gradient
    of a network does not depend on the others at all (tests/test_fused.py), but Adam's fused update
    rounds an element differently in its vector body and its scalar tail (<= 1.2e-7 here; with
    torch's per-tensor Adam the networks come out bit-identical)."""
    config = make_config(data.gene_sizes, 1, predictor_hidden=hidden)
    assert fused.applies(GeneNetworkEnsemble(config)) == (hidden % 10 == 0)
    n = len(data.train_idx)
    val = validation_split(n, 0.2, seed=1)
    y = data.target[data.train_idx]
    targets = np.stack([y] + [y[np.random.default_rng(k).permutation(n)] for k in range(3)], axis=1)
    plan = NetworkPlan(seeds=np.array([network_seed(3, m) for m in range(8)]),
                       target_column=np.array([0, 1, 2, 3, 0, 1, 2, 3]),
                       mask_column=np.zeros(8, dtype=int),
                       l1_gene=np.array([0, 1e-4, 1e-3, 0, 1e-4, 0, 1e-3, 1e-5]),
                       l1_predictor=np.array([0, 0, 1e-4, 1e-3, 1e-5, 1e-4, 0, 1e-3]))
    batched = _run(data, plan, targets, (~val)[None], val[None], config)
    together = _train_predictions(data, batched.model)
    for k in range(8):
        alone = _run(data, plan.subset(np.array([k])), targets, (~val)[None], val[None], config)
        assert alone.epochs[0] == batched.epochs[k] and alone.best_epoch[0] == batched.best_epoch[k]
        np.testing.assert_allclose(_train_predictions(data, alone.model)[0], together[k],
                                   atol=BATCH_EQUIVALENCE_TOL, rtol=0)
    # networks did train (away from their init) and did not all stop at the same epoch
    assert len(set(batched.best_epoch.tolist())) > 1


def test_each_network_early_stops_on_its_own_mask_and_target(data):
    n = len(data.train_idx)
    y = data.target[data.train_idx]
    noise = np.random.default_rng(5).normal(size=n).astype(np.float32)
    targets = np.stack([y, noise], axis=1)
    val_a, val_b = validation_split(n, 0.2, seed=1), validation_split(n, 0.2, seed=2)
    train = ~(val_a | val_b)
    plan = NetworkPlan(seeds=np.array([1, 1]), target_column=np.array([0, 1]), mask_column=np.array([0, 1]),
                       l1_gene=np.zeros(2), l1_predictor=np.zeros(2))
    masks = (np.stack([train, train]), np.stack([val_a, val_b]))
    result = _run(data, plan, targets, *masks, max_epochs=200, patience=4)
    # each stops exactly `patience` epochs after its own best epoch, and they stop apart
    np.testing.assert_array_equal(result.epochs, result.best_epoch + 4)
    assert result.epochs[0] != result.epochs[1]
    # the kept weights are those of each network's best validation epoch, on its own val rows
    pred = _train_predictions(data, result.model)
    for k, (val, column) in enumerate(((val_a, 0), (val_b, 1))):
        mse = np.mean((pred[k, val] - targets[val, column]) ** 2)
        assert mse == pytest.approx(result.best_val_mse[k], rel=1e-5)
        assert np.nanmin(np.array(result.history)[:, k]) == pytest.approx(result.best_val_mse[k], rel=1e-12)
    # trained alone, each network stops at the same epoch with the same weights: the one stopping
    # first (and the batch shrinking around the other) changes nothing for its neighbour
    for k in range(2):
        alone = _run(data, plan.subset(np.array([k])), targets, *masks, max_epochs=200, patience=4)
        assert alone.epochs[0] == result.epochs[k]
        np.testing.assert_allclose(_train_predictions(data, alone.model)[0], pred[k],
                                   atol=BATCH_EQUIVALENCE_TOL, rtol=0)


def test_permuted_targets_are_reproducible_from_seed_and_index():
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    y_hat = 0.5 * y + rng.normal(scale=0.1, size=50)
    is_test = rng.random(50) < 0.3
    many, names = build_targets(y, is_test, "perm-I", seed=9, permutations=[2, 3, 4], null_prediction=y_hat)
    one, _ = build_targets(y, is_test, "perm-I", seed=9, permutations=[3], null_prediction=y_hat)
    assert names == ["perm-2", "perm-3", "perm-4"]
    np.testing.assert_array_equal(many[:, 1], one[:, 0])
    order = permutation(is_test, 9, 3)
    assert np.all(is_test[order] == is_test) and sorted(order) == list(range(50))
    np.testing.assert_allclose(one[:, 0], y_hat + (y - y_hat)[order], rtol=1e-6)
    perm_t, _ = build_targets(y, is_test, "perm-T", seed=9, permutations=[3])
    perm_r, _ = build_targets(y, is_test, "perm-R", seed=9, permutations=[3], null_prediction=y_hat)
    np.testing.assert_allclose(perm_t[:, 0], y[order], rtol=1e-6)
    np.testing.assert_allclose(perm_r[:, 0], (y - y_hat)[order], rtol=1e-6, atol=1e-7)
    assert not np.allclose(permutation(is_test, 10, 3), order)
    with pytest.raises(GinnError, match="--null-model"):
        build_targets(y, is_test, "perm-I", seed=9, permutations=[1])


@pytest.mark.parametrize("text", ["5-2", "0-3", "a-b", "1-2-3", ""])
def test_bad_permutation_ranges(text):
    with pytest.raises(GinnError):
        parse_permutations(text)
    assert parse_permutations("3-5") == [3, 4, 5] and parse_permutations("7") == [7]


def _cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


FAST = ["--max-epochs", 4, "--patience", 2, "--predictor-hidden", 8, "--seed", 3]


def test_train_command_writes_a_reloadable_reproducible_ensemble(data, tmp_path):
    out = tmp_path / "models"
    result = _cli("train", "--data", data.path, "--members", 2, *FAST, "--out", out)
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"ensemble.pt", "ensemble.json", "metrics.json", "provenance.json"}
    model, networks = load_ensemble(out)
    assert [n["member"] for n in networks] == [0, 1] and networks[1]["seed"] == network_seed(3, 1)
    metrics = json.loads((out / "metrics.json").read_text())
    record = metrics["networks"][0]
    for key in ("train_mse", "val_mse", "test_mse", "train_r2", "val_r2", "test_r2", "epochs", "l1_gene", "l1_predictor"):
        assert key in record
    test_pred = predict(model, data, data.test_idx)
    y_test = data.target[data.test_idx]
    assert record["test_mse"] == pytest.approx(np.mean((test_pred[0] - y_test) ** 2), rel=1e-5)
    again = tmp_path / "again"
    assert _cli("train", "--data", data.path, "--members", 2, *FAST, "--out", again).exit_code == 0
    np.testing.assert_array_equal(predict(load_ensemble(again)[0], data), predict(model, data))
    # networks trained in memory-sized chunks are the networks trained all at once
    chunked = tmp_path / "chunked"
    assert _cli("train", "--data", data.path, "--members", 2, "--chunk-networks", 1, *FAST, "--out", chunked).exit_code == 0
    np.testing.assert_allclose(predict(load_ensemble(chunked)[0], data), predict(model, data),
                               atol=BATCH_EQUIVALENCE_TOL, rtol=0)
    # each member's validation curve (for the report) covers the epochs it ran, chunked or not
    chunked_metrics = json.loads((chunked / "metrics.json").read_text())
    for whole, part in zip(metrics["networks"], chunked_metrics["networks"]):
        assert len(whole["history"]["val_mse"]) == whole["epochs"]
        assert min(whole["history"]["val_mse"]) == pytest.approx(whole["val_mse"], rel=1e-4)
        np.testing.assert_allclose(whole["history"]["val_mse"], part["history"]["val_mse"], rtol=1e-4)


def test_perm_i_uses_the_main_effect_null_model(data, tmp_path):
    null = tmp_path / "null"
    assert _cli("train", "--data", data.path, "--model", "main", "--members", 2, *FAST, "--out", null).exit_code == 0
    perms = tmp_path / "perms"
    result = _cli("train", "--data", data.path, "--members", 2, "--target", "perm-I", "--permutations", "4-5",
                  "--null-model", null, *FAST, "--out", perms)
    assert result.exit_code == 0, result.output
    info = json.loads((perms / "ensemble.json").read_text())
    assert [n["dataset"] for n in info["networks"]] == ["perm-4", "perm-4", "perm-5", "perm-5"]
    assert [n["seed"] for n in info["networks"]] == [network_seed(3, m) for m in (0, 1, 0, 1)]
    null_model, _ = load_ensemble(null)
    assert null_model.hidden == 0
    y_hat = predict(null_model, data).mean(axis=0)
    expected, _ = build_targets(data.target, data.is_test, "perm-I", 3, [5], y_hat)
    metrics = json.loads((perms / "metrics.json").read_text())
    test_pred = predict(load_ensemble(perms)[0], data, data.test_idx)[2]
    mse = np.mean((test_pred - expected[data.test_idx, 0]) ** 2)
    assert metrics["networks"][2]["test_mse"] == pytest.approx(mse, rel=1e-4)


@pytest.mark.parametrize("extra,problem", [
    (["--target", "perm-I", "--permutations", "1-2"], "--null-model"),
    (["--target", "perm-T", "--permutations", "3-1"], "--permutations"),
    (["--target", "perm-T"], "--permutations"),
])
def test_train_rejects_bad_target_options(data, tmp_path, extra, problem):
    out = tmp_path / "models"
    result = CliRunner().invoke(cli, ["train", "--data", str(data.path), *map(str, FAST), *extra, "--out", str(out)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if "error" in line]
    assert len(lines) == 1 and problem in lines[0]
    assert not out.exists()


def test_tune_then_train_with_its_hparams(data, tmp_path):
    hparams = tmp_path / "hparams.json"
    result = _cli("tune", "--data", data.path, "--folds", 3, "--l1-grid", "0,0.01", *FAST, "--out", hparams)
    assert result.exit_code == 0, result.output
    chosen = json.loads(hparams.read_text())
    assert len(chosen["cv"]) == 2 and all(len(row["fold_mse"]) == 3 for row in chosen["cv"])
    best = min(chosen["cv"], key=lambda row: row["mean_mse"])
    assert (chosen["l1_gene"], chosen["l1_predictor"]) == (best["l1_gene"], best["l1_predictor"])
    assert (tmp_path / "hparams.provenance.json").is_file()
    out = tmp_path / "models"
    assert _cli("train", "--data", data.path, "--members", 1, "--hparams", hparams, *FAST, "--out", out).exit_code == 0
    assert load_ensemble(out)[1][0]["l1_gene"] == chosen["l1_gene"]


def test_hparams_file_must_hold_both_strengths(tmp_path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"l1_gene": 0.001}))
    with pytest.raises(GinnError, match="lacks l1_predictor"):
        read_hparams(path)
    path.write_text(json.dumps({"l1_gene": -1, "l1_predictor": 0}))
    with pytest.raises(GinnError, match="l1_gene"):
        read_hparams(path)
    with pytest.raises(GinnError, match="not found"):
        read_hparams(tmp_path / "none.json")


@pytest.mark.slow
def test_recovers_complex_interactions_and_beats_the_main_effect_model(tmp_path):
    """Eq. 1 data, S/N 1, 10 genes, 20,000 samples: ensemble test R^2 >= 0.8 x the true signal
    fraction, and the main-effect NN clearly below. The paper's architecture (m_i-10-1 gene MLPs,
    M-100-1 predictor, no L1), kept to a few CPU-seconds: 2 members (not 50), mini-batches of 2,000
    (more Adam steps per pass over the data than the paper's 30,000, so ~30 epochs suffice) and
    patience 10. Observed: interaction ~0.44, main-effect ~0.35."""
    from ginn.simulate import simulate_dataset

    folder = tmp_path / "sim"
    folder.mkdir()
    simulate_dataset(folder, n_samples=20_000, n_genes=10, model="complex", snr=1.0, seed=1)
    signal = json.loads((folder / "meta.json").read_text())["simulation"]["signal_fraction"]
    r2 = {}
    for kind in ("interaction", "main"):
        out = tmp_path / kind
        result = _cli("train", "--data", folder, "--model", kind, "--members", 2, "--l1-gene", 0,
                      "--l1-predictor", 0, "--batch-size", 2000, "--max-epochs", 200, "--patience", 10,
                      "--seed", 1, "--out", out)
        assert result.exit_code == 0, result.output
        r2[kind] = json.loads((out / "metrics.json").read_text())["ensembles"][0]["test_r2"]
    assert r2["interaction"] >= 0.8 * signal
    # With gene MLPs the main-effect NN also learns non-linear per-gene effects (the g_i^2 parts of the
    # squared differences), so only the non-additive half of the interaction variance separates them.
    # A 0.05 gap is ~5 standard errors of a test R^2 near 0.4 on 6,000 samples (se ~ 2 sqrt(R2)(1-R2)/sqrt(n)).
    assert r2["main"] < r2["interaction"] - 0.05


def test_ginn_train_imports_neither_torch_dynamo_nor_pandas(tmp_path):
    """A training process's start-up: torch.optim would import torch._dynamo (~1.8 s here) and the
    dataset's sample and SNP tables pandas (~0.3 s); training needs neither."""
    data = tiny_dataset(tmp_path / "data", n_samples=120)
    code = ("import sys\nfrom ginn.cli import main\n"
            f"sys.argv = ['ginn', '-q', 'train', '--data', {str(data)!r}, '--out', {str(tmp_path / 'models')!r}, "
            "'--members', '2', '--max-epochs', '2', '--predictor-hidden', '10']\n"
            "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "print(sorted(m for m in ('torch._dynamo', 'pandas') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (tmp_path / "models" / "ensemble.pt").is_file()
    assert result.stdout.strip() == "[]"
