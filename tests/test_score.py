"""``ginn score``: wiring of gene values, baselines, ensembles and outputs; planted recovery."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from ginn.cli import cli
from ginn.dataset import Dataset
from ginn.errors import GinnError
from ginn.model import GeneNetworkEnsemble, load_ensemble, make_config, save_ensemble
from ginn.score import DEFAULT_SAMPLES, choose_estimator
from ginn.shapley import ExactInteractions, MonteCarloInteractions
from ginn.simulate import simulate_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DATASETS = ["observed", "observed", "perm-1", "perm-1", "perm-2", "perm-2"]



def write_models(folder, model, datasets, genes):
    folder.mkdir()
    networks = [{"dataset": name, "member": i % 2, "seed": i, "l1_gene": 0.0, "l1_predictor": 0.0}
                for i, name in enumerate(datasets)]
    save_ensemble(folder, model, networks, extra={"genes": genes})
    return folder


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A 10-gene dataset and six randomly initialised networks: observed, perm-1, perm-2 x 2 members."""
    root = tmp_path_factory.mktemp("score")
    simulate_dataset(root / "DATA", n_samples=90, n_genes=10, snps_per_gene=3, seed=0)
    data = Dataset.load(root / "DATA")
    model = GeneNetworkEnsemble(make_config(data.gene_sizes, len(DATASETS), predictor_hidden=8), seeds=range(6))
    write_models(root / "MODELS", model, DATASETS, data.genes)
    return root, data


def run(*args):
    result = CliRunner().invoke(cli, ["score", *map(str, args)])
    return result


def brute_force_scores(model, data, members) -> np.ndarray:
    """E_x|SII_ij(x)| averaged over ``members``, from ``model.predictor`` on all 1024 masked inputs and
    the SII weights written out; the baseline is the test-row mean of the gene values."""
    with torch.no_grad():
        g = model.gene_layer(torch.from_numpy(data.centered(data.test_idx)))[members].double()
        m = g.shape[2]
        coalitions = torch.tensor(list(itertools.product([0, 1], repeat=m)), dtype=torch.bool)  # (1024, M)
        masked = torch.where(coalitions[None, None], g[:, :, None], g.mean(dim=1)[:, None, None])
        sub = model.select(members).double()
        f = sub.predictor(masked.reshape(len(members), -1, m)).reshape(len(members), g.shape[1], -1).numpy()
    index = {tuple(c.tolist()): n for n, c in enumerate(coalitions.int())}
    scores = []
    for i, j in itertools.combinations(range(m), 2):
        local = 0.0
        rest = [u for u in range(m) if u not in (i, j)]
        for size in range(m - 1):
            weight = math.factorial(size) * math.factorial(m - size - 2) / math.factorial(m - 1)
            for s in itertools.combinations(rest, size):
                for extra, sign in (((i, j), 1), ((i,), -1), ((j,), -1), ((), 1)):
                    bits = [0] * m
                    for u in (*s, *extra):
                        bits[u] = 1
                    local = local + sign * weight * f[:, :, index[tuple(bits)]]
        scores.append(np.abs(local).mean(axis=1).mean())
    return np.array(scores)


def test_exact_scores_match_a_brute_force_over_the_model(small_run, tmp_path):
    root, data = small_run
    out = tmp_path / "SCORES.tsv"
    result = run("--data", root / "DATA", "--models", root / "MODELS", "--out", out)
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(out, sep="\t")
    assert list(scores.columns) == ["dataset", "gene_a", "gene_b", "score", "se", "se_mc"]
    assert scores.groupby("dataset").size().to_dict() == {"observed": 45, "perm-1": 45, "perm-2": 45}
    assert (scores["se_mc"] == 0).all() and (scores["se"] > 0).all()
    model, _ = load_ensemble(root / "MODELS")
    for name, members in (("observed", [0, 1]), ("perm-2", [4, 5])):
        expected = brute_force_scores(model, data, members)
        # float32 scoring of values ~0.1-1: 1e-5 relative, printed with 6 significant digits.
        np.testing.assert_allclose(scores.loc[scores["dataset"] == name, "score"], expected, rtol=1e-4, atol=1e-7)
    main = pd.read_csv(tmp_path / "SCORES.main.tsv", sep="\t")
    assert list(main.columns) == ["dataset", "gene", "value", "se", "se_mc"] and len(main) == 30
    provenance = json.loads((tmp_path / "SCORES.provenance.json").read_text())
    assert provenance["method"] == "exact" and provenance["n_rows"] == len(data.test_idx)


def test_sampled_scores_are_seeded_and_per_permutation(small_run, tmp_path):
    root, data = small_run
    args = ["--data", root / "DATA", "--models", root / "MODELS", "--samples", 6, "--seed", 3]
    assert run(*args, "--out", tmp_path / "a.tsv").exit_code == 0
    assert run(*args, "--out", tmp_path / "b.tsv").exit_code == 0
    a = pd.read_csv(tmp_path / "a.tsv", sep="\t")
    assert (tmp_path / "a.tsv").read_bytes() == (tmp_path / "b.tsv").read_bytes()
    assert (a["se_mc"] > 0).all()
    exact = brute_force_scores(load_ensemble(root / "MODELS")[0], data, [0, 1])
    observed = a[a["dataset"] == "observed"]
    # |.| biases the score upwards by <= the mean local s.e. ~ sqrt(27 rows x 2 members) se_mc ~ 7 se_mc,
    # plus up to ~4 se_mc of sampling noise.
    assert (np.abs(observed["score"] - exact) <= 12 * observed["se_mc"]).mean() >= 0.95
    # perm-2 scored alone draws the same gene orders as perm-2 scored among the others.
    model, _ = load_ensemble(root / "MODELS")
    alone = write_models(tmp_path / "PERM2", model.select([4, 5]), ["perm-2", "perm-2"], data.genes)
    assert run("--data", root / "DATA", "--models", alone, "--samples", 6, "--seed", 3,
               "--out", tmp_path / "c.tsv").exit_code == 0
    c = pd.read_csv(tmp_path / "c.tsv", sep="\t")
    np.testing.assert_allclose(c["score"], a.loc[a["dataset"] == "perm-2", "score"], rtol=1e-5)


def test_local_scores_and_triples(small_run, tmp_path):
    root, data = small_run
    triples = tmp_path / "triples.tsv"
    triples.write_text("gene_a gene_b gene_c\ng1 g2 g3\ng4 g9 g7\n")
    out = tmp_path / "S.tsv"
    result = run("--data", root / "DATA", "--models", root / "MODELS", "--local", tmp_path / "local.npy",
                 "--triples", triples, "--rows", "all", "--out", out)
    assert result.exit_code == 0, result.output
    local = np.load(tmp_path / "local.npy")
    assert local.shape == (data.n_samples, 45) and local.dtype == np.float32
    observed = pd.read_csv(out, sep="\t").query("dataset == 'observed'")
    # |member mean| <= member mean of |.| (Jensen), with equality only if members agree in sign.
    assert np.all(np.abs(local).mean(axis=0) <= observed["score"].to_numpy() * (1 + 1e-5) + 1e-7)
    third = pd.read_csv(tmp_path / "S.triples.tsv", sep="\t")
    assert third.shape == (6, 7) and set(third["gene_b"]) == {"g2", "g7"} and (third["score"] > 0).all()


def test_bad_inputs_fail_on_one_line_without_outputs(small_run, tmp_path):
    root, _ = small_run
    out = tmp_path / "S.tsv"
    common = ["--data", root / "DATA", "--models", root / "MODELS", "--out", out]
    both = run(*common, "--exact", "--samples", "4")
    assert both.exit_code == 2 and both.output.strip() == (
        "ginn score: error: --exact/--samples: choose one: exact enumeration or a number of samples")
    triples = tmp_path / "t.tsv"
    triples.write_text("gene_a gene_b gene_c\ng1 g2 nope\n")
    bad = run(*common, "--triples", triples)
    assert bad.exit_code == 2 and f"{triples}: line 2: gene 'nope' is not in the dataset" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    missing = run("--data", root / "DATA", "--models", tmp_path / "nothing", "--out", out)
    assert missing.exit_code == 2 and "not a ginn model folder" in missing.output
    device = run(*common, "--device", "tpu")
    assert device.exit_code == 2 and device.output.strip() == (
        "ginn score: error: --device: expected cpu, cuda, cuda:N or auto, not 'tpu'")
    assert list(tmp_path.iterdir()) == [triples]


def test_threads_and_auto_device_change_nothing(small_run, tmp_path):
    """One thread or two (networks spread over threads), device auto (the CPU here): the same file."""
    root, _ = small_run
    outputs = []
    auto = "cpu" if torch.cuda.is_available() else "auto"        # auto must mean the CPU for equal files
    for name, extra in (("one", ["--threads", "1"]), ("two", ["--threads", "2", "--device", auto])):
        out = tmp_path / f"{name}.tsv"
        assert run("--data", root / "DATA", "--models", root / "MODELS", "--out", out, *extra).exit_code == 0
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1]


def test_estimator_choice():
    assert isinstance(choose_estimator(16, False, None, [], 0), ExactInteractions)
    sampled = choose_estimator(17, False, None, [], 0)
    assert isinstance(sampled, MonteCarloInteractions) and sampled.n_samples == DEFAULT_SAMPLES
    assert isinstance(choose_estimator(18, True, None, [(0, 1, 2)], 0), ExactInteractions)
    assert choose_estimator(17, False, 8, [(0, 1, 2)], 0).subsets[-1] == (0, 1, 2)
    for args, option in (((21, True, None, [], 0), "--exact"), ((10, False, 1, [], 0), "--samples")):
        with pytest.raises(GinnError, match=option):
            choose_estimator(*args)


def test_training_baseline_changes_the_game(small_run, tmp_path):
    root, _ = small_run
    common = ["--data", root / "DATA", "--models", root / "MODELS", "--rows", "test"]
    assert run(*common, "--out", tmp_path / "scored.tsv").exit_code == 0
    assert run(*common, "--baseline", "train", "--out", tmp_path / "train.tsv").exit_code == 0
    scored, train = (pd.read_csv(tmp_path / f, sep="\t")["score"] for f in ("scored.tsv", "train.tsv"))
    assert not np.allclose(scored, train)
    assert json.loads((tmp_path / "train.provenance.json").read_text())["params"]["baseline"] == "train"


@pytest.mark.slow
def test_planted_pairs_rank_above_false_ones(tmp_path):
    """Simulated complex interactions (Eq. 1, 10 genes): the true pairs outrank all 39 false ones.

    Seed 1 makes every planted pair explain >= 2% of var(y) (``pair_variance`` in meta.json; the
    simulator draws pair weights at random, and a pair explaining 0.1% is invisible at N = 3000 for
    any method); snr 4 and M/I 0.5 give the networks enough interaction signal to learn.
    """
    from ginn.train import TrainSettings, run_train

    truth = simulate_dataset(tmp_path / "DATA", n_samples=3000, n_genes=10, model="complex", snr=4.0,
                             mi_ratio=0.5, snps_per_gene=5, seed=1)
    assert min(json.loads((tmp_path / "DATA" / "meta.json").read_text())["simulation"]["pair_variance"]) > 0.02
    settings = TrainSettings(max_epochs=300, patience=10, batch_size=1000, progress=False)
    run_train(tmp_path / "DATA", tmp_path / "MODELS", members=5, predictor_hidden=32, seed=0, settings=settings)
    result = run("--data", tmp_path / "DATA", "--models", tmp_path / "MODELS", "--out", tmp_path / "S.tsv")
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(tmp_path / "S.tsv", sep="\t").merge(truth, on=["gene_a", "gene_b"])
    assert len(scores) == 45 and scores["interacting"].sum() == 6
    best_false = scores.loc[~scores["interacting"], "score"].max()
    assert (scores.loc[scores["interacting"], "score"] > best_false).sum() >= 5
