"""The fused C kernel of small gene networks (ginn.fused) against torch autograd over the model."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from ginn import fused
from ginn.model import GeneNetworkEnsemble, GenotypeBatcher, make_config
from ginn.train import NetworkPlan, TrainSettings, train_networks

# Uneven genes (several buckets, padding, a one-SNP gene, odd and even SNP counts) and more than
# the kernel's block of 10 genes; 77 samples leave a partial tile of 32.
# (gene sizes, predictor hidden units H, samples); H = 0 is the main-effect network's linear predictor
ARCHITECTURES = [([20] * 10, 100, 100), ([3, 17, 9, 1, 30, 12, 5, 8, 2, 11, 7, 25], 20, 77), ([5, 6], 10, 33),
                 ([40, 2], 30, 300), ([20] * 10, 0, 100), ([3, 17, 9, 1, 30, 12, 5, 8, 2, 11, 7, 25], 0, 77)]
# Oracle in float64; the kernel sums in float32 in another order over at most a few hundred terms
# of O(1) values, ~1e-6 relative to a gradient's scale.
REL_TOL = 1e-5


def problem(sizes, hidden, samples, networks=3, seed=0):
    rng = np.random.default_rng(seed)
    model = GeneNetworkEnsemble(make_config(sizes, networks, predictor_hidden=hidden), seeds=list(range(networks)))
    genotypes = rng.binomial(2, 0.3, size=(samples, sum(sizes))).astype(np.int8)
    genotypes[rng.random(genotypes.shape) < 0.05] = -1                              # missing calls
    xt = GenotypeBatcher(genotypes, rng.uniform(0.2, 0.8, sum(sizes)), sizes).padded_t(np.arange(samples))
    target = torch.from_numpy(rng.normal(size=(networks, samples)).astype(np.float32))
    weight = torch.from_numpy((rng.random((networks, samples)) * (rng.random((networks, samples)) < 0.8)).astype(np.float32))
    l1 = torch.from_numpy(rng.uniform(0, 0.1, (networks, 2)).astype(np.float32))
    return model, xt, target, weight, l1


def autograd_gradients(model, xt, target, weight, l1):
    """d/d params of sum weight (pred - target)^2 + l1 penalties, by autograd in float64."""
    oracle = copy.deepcopy(model).double()
    pred = oracle.forward_padded(xt.double())
    loss = (weight.double() * (pred - target.double()) ** 2).sum()
    loss = loss + (l1[:, 0].double() * oracle.gene_weight_l1() + l1[:, 1].double() * oracle.predictor_weight_l1()).sum()
    loss.backward()
    return {name: p.grad for name, p in oracle.named_parameters()}, pred.detach()


def add_gradients(model, xt, target, weight, l1=None):
    """The kernel with network k's target and weights in row k, unscaled."""
    rows = torch.arange(model.n_networks)
    fused.FusedNetworks(model).add_gradients(model, fused.tiles(xt), target, weight, rows, rows,
                                             torch.ones(model.n_networks), l1)


def kernel_gradients(model, xt, target, weight, l1=None):
    model = copy.deepcopy(model)
    add_gradients(model, xt, target, weight, l1)
    return {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize("sizes,hidden,samples", ARCHITECTURES)
def test_gradients_and_predictions_equal_autograd(sizes, hidden, samples):
    model, xt, target, weight, l1 = problem(sizes, hidden, samples)
    expected, pred = autograd_gradients(model, xt, target, weight, l1)
    got = kernel_gradients(model, xt, target, weight, l1)
    for name, grad in expected.items():
        scale = grad.abs().max().item()
        assert (got[name].double() - grad).abs().max().item() <= REL_TOL * scale, name
    predictions = fused.FusedNetworks(model).predictions(model, fused.tiles(xt), samples)
    torch.testing.assert_close(predictions.double(), pred, atol=1e-5, rtol=1e-5)


def test_padding_gets_no_gradient_and_calls_accumulate():
    """Bucket padding (zero weights the torch path never moves) stays at zero gradient, and two calls
    over the halves of a batch add up to one call over all of it."""
    model, xt, target, weight, _ = problem([3, 17, 9, 1, 30], 20, 200)
    whole = kernel_gradients(model, xt, target, weight)
    halves = copy.deepcopy(model)
    for part in (slice(0, 96), slice(96, 200)):                     # 96: a whole number of tiles
        add_gradients(halves, xt[:, part], target[:, part], weight[:, part])
    for name, p in halves.named_parameters():
        torch.testing.assert_close(p.grad, whole[name], atol=1e-5 * whole[name].abs().max().item(), rtol=0)
    for b, w1 in enumerate(model.gene_w1):
        padding = w1 == 0
        assert padding.any() and (whole[f"gene_w1.{b}"][padding] == 0).all()


def test_batches_split_over_several_kernel_calls_give_the_same_result(monkeypatch):
    """A batch longer than one call's genotype budget runs as several calls, each pointed at its own
    columns of the shared targets, weights and outputs."""
    model, xt, target, weight, l1 = problem([3, 17, 9, 1, 30], 20, 200)
    whole = kernel_gradients(model, xt, target, weight, l1)
    predictions = fused.FusedNetworks(model).predictions(model, fused.tiles(xt), 200)
    monkeypatch.setattr(fused, "CALL_BYTES", 4 * fused.KERNEL_TILE * model.input_columns.numel() * 2)
    assert fused.FusedNetworks(model).call_tiles == 2                  # 7 tiles: calls of 2, 2, 2 and 1
    split = kernel_gradients(model, xt, target, weight, l1)
    for name, grad in whole.items():
        torch.testing.assert_close(split[name], grad, atol=1e-5 * grad.abs().max().item(), rtol=0)
    assert torch.equal(fused.FusedNetworks(model).predictions(model, fused.tiles(xt), 200), predictions)


def test_one_kernel_object_follows_its_tensors_when_they_move():
    """The kernel keeps the address tables of the last call; new gradient tensors, or a smaller
    model, must get new tables (stale ones would write into freed memory)."""
    model, xt, target, weight, l1 = problem([3, 17, 9], 20, 96, networks=4)
    expected = kernel_gradients(model, xt, target, weight, l1)
    kernel, rows, x = fused.FusedNetworks(model), torch.arange(4), fused.tiles(xt)
    for _ in range(2):
        model.zero_grad(set_to_none=True)                       # fresh gradient tensors each time
        kernel.add_gradients(model, x, target, weight, rows, rows, torch.ones(4), l1)
        for name, p in model.named_parameters():
            assert torch.equal(p.grad, expected[name]), name
    smaller = model.select([2, 0])
    kernel.add_gradients(smaller, x, target[[2, 0]], weight[[2, 0]], rows[:2], rows[:2], torch.ones(2), l1[[2, 0]])
    for name, p in smaller.named_parameters():
        assert torch.equal(p.grad, expected[name][[2, 0]]), name


def test_a_network_gets_the_same_bits_alone_or_among_others_on_any_thread_count():
    model, xt, target, weight, l1 = problem([20] * 10, 100, 160, networks=5)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        together = kernel_gradients(model, xt, target, weight, l1)
        torch.set_num_threads(1)
        alone = kernel_gradients(model.select([3]), xt, target[3:4], weight[3:4], l1[3:4])
    finally:
        torch.set_num_threads(threads)
    for name, grad in alone.items():
        assert torch.equal(grad[0], together[name][3]), name


def test_networks_read_their_own_target_and_weight_rows_and_scale():
    """Shared target and weight rows picked per network, times a per-network scale, equal the
    same loss written out per network."""
    model, xt, target, weight, l1 = problem([3, 17, 9], 20, 90, networks=4)
    target_rows, weight_rows, scales = torch.tensor([2, 0, 2, 1]), torch.tensor([1, 1, 0, 2]), torch.rand(4)
    picked = copy.deepcopy(model)
    fused.FusedNetworks(picked).add_gradients(picked, fused.tiles(xt), target[:3], weight[:3], target_rows, weight_rows,
                                              scales, l1)
    expected = kernel_gradients(model, xt, target[target_rows], weight[weight_rows] * scales[:, None], l1)
    for name, p in picked.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], atol=1e-5 * expected[name].abs().max().item(), rtol=0)


def test_batch_tiles_of_int8_genotypes_equal_the_tiled_torch_conversion():
    rng = np.random.default_rng(3)
    sizes = [3, 17, 9, 1, 30]
    genotypes = rng.integers(-1, 3, size=(120, sum(sizes))).astype(np.int8)
    batcher = GenotypeBatcher(genotypes, rng.uniform(0, 2, sum(sizes)), sizes)
    rows = rng.choice(120, 77, replace=True)                       # repeats, unsorted, a partial tile
    assert torch.equal(fused.batch_tiles(batcher, rows), fused.tiles(batcher.padded_t(rows)))
    with pytest.raises(IndexError):
        fused.batch_tiles(batcher, np.array([0, 120]))


@pytest.mark.parametrize("change", [dict(gene_layer="linear"), dict(predictor_hidden=25), dict(gene_hidden=8)])
def test_other_architectures_keep_the_torch_path(change):
    config = {**make_config([20] * 4, 2), **change}
    assert not fused.applies(GeneNetworkEnsemble(config))
    assert fused.applies(GeneNetworkEnsemble(make_config([20] * 4, 2)))
    assert not fused.applies(GeneNetworkEnsemble(make_config([20] * 4, 2)).double())


@pytest.mark.parametrize("hidden", [1, 0], ids=["interaction", "main-effect"])
def test_training_with_the_kernel_follows_the_torch_path(monkeypatch, hidden):
    """Whole training runs (Adam, early stopping, shrinking) through either path stay together: the
    paths differ only by float32 summation order, which Adam's updates carry but do not amplify
    over a few epochs (differences ~1e-5 of the validation MSE; 1e-3 leaves room for the noise)."""
    rng = np.random.default_rng(1)
    sizes, n = [8, 12, 5, 20], 600
    genotypes = rng.binomial(2, 0.3, size=(n, sum(sizes))).astype(np.int8)
    targets = (genotypes[:, :3].sum(axis=1, keepdims=True) + rng.normal(size=(n, 1))).astype(np.float32)
    val = np.zeros((2, n), dtype=bool)
    val[0, :100], val[1, 100:200] = True, True
    train = ~val
    plan = NetworkPlan(seeds=np.arange(4), target_column=np.zeros(4, int), mask_column=np.array([0, 1, 0, 1]),
                       l1_gene=np.array([0, 1e-3, 0, 1e-3]), l1_predictor=np.array([0, 0, 1e-3, 1e-3]))
    settings = TrainSettings(max_epochs=6, patience=2, progress=False, batch_size=128)
    config = make_config(sizes, 1) if hidden else make_config(sizes, 1, predictor_hidden=0)
    assert fused.applies(GeneNetworkEnsemble(config))
    args = (config, genotypes, genotypes.mean(axis=0), targets, train, val, plan, settings)
    with_kernel = train_networks(*args)
    monkeypatch.setattr("ginn.train.kernel_for", lambda model: None)
    with_torch = train_networks(*args)
    np.testing.assert_allclose(with_kernel.best_val_mse, with_torch.best_val_mse, rtol=1e-3)
    np.testing.assert_array_equal(with_kernel.epochs, with_torch.epochs)
