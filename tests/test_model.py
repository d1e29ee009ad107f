"""The batched gene network against a plain per-gene, per-network implementation, and its files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ginn.dataset import Dataset
from ginn.errors import GinnError
from ginn.model import (AccumulatedStep, GeneNetworkEnsemble, GenotypeBatcher, load_ensemble, make_config, network_seed, predict,
                        relu_grad, relu_weighted_sum, save_ensemble, size_buckets)

from _train_data import tiny_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Genes of very different sizes so that several buckets with padding are exercised.
SIZES = [5, 20, 18, 3, 7, 200, 190, 1]
# float32 products/sums of a few hundred terms of O(1) values agree to ~1e-6 across summation orders.
FLOAT32_TOL = 1e-5


def reference_forward(model: GeneNetworkEnsemble, x: torch.Tensor, k: int) -> torch.Tensor:
    """Network k evaluated gene by gene with ordinary matrix products (the oracle)."""
    sizes = model.config["gene_sizes"]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    where = {int(g): (b, row) for b, genes in enumerate(model.bucket_genes) for row, g in enumerate(genes)}
    values = []
    for i, size in enumerate(sizes):
        b, row = where[i]
        hidden = x[:, offsets[i]:offsets[i + 1]] @ model.gene_w1[b][k, row, :, :size].T + model.gene_b1[b][k, row]
        if model.mlp_genes:
            values.append(torch.relu(hidden) @ model.gene_w2[b][k, row] + model.gene_b2[b][k, row])
        else:
            values.append(hidden[:, 0])
    g = torch.stack(values, dim=1)
    w = model.predictor_weights()
    if model.hidden > 0:
        return torch.relu(g @ w["W1"][k].T + w["b1"][k]) @ w["w2"][k] + w["b2"][k]
    return g @ w["w"][k] + w["b"][k]


@pytest.mark.parametrize("hidden,layer", [(100, "mlp"), (0, "mlp"), (30, "linear"), (0, "linear")])
def test_batched_forward_equals_per_gene_reference(hidden, layer):
    model = GeneNetworkEnsemble(make_config(SIZES, 3, predictor_hidden=hidden, gene_layer=layer), seeds=[4, 5, 6])
    x = torch.randn(17, sum(SIZES), generator=torch.Generator().manual_seed(0))
    out = model(x)
    assert out.shape == (3, 17)
    assert model.gene_layer(x).shape == (3, 17, len(SIZES))
    torch.testing.assert_close(model.predictor(model.gene_layer(x)), out)
    for k in range(3):
        torch.testing.assert_close(out[k], reference_forward(model, x, k), atol=FLOAT32_TOL, rtol=0)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
@pytest.mark.parametrize("hidden,layer", [(100, "mlp"), (0, "mlp"), (30, "linear"), (0, "linear")])
def test_hand_written_backward_equals_autograd_of_the_reference(hidden, layer, dtype, tol):
    """The hidden layers' own backward (plain, and accumulated over micro-batches by AccumulatedStep)
    gives the gradient autograd finds for the gene-by-gene reference. In float64 any difference
    beyond rounding (~1e-13 here) would be a wrong formula and 1e-9 leaves room for summation order;
    float32 runs the C kernel of :func:`relu_grad` (in place in AccumulatedStep)."""
    model = GeneNetworkEnsemble(make_config(SIZES, 3, predictor_hidden=hidden, gene_layer=layer),
                                seeds=[4, 5, 6]).to(dtype)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(23, sum(SIZES), generator=gen, dtype=dtype)
    y = torch.randn(3, 23, generator=gen, dtype=dtype)

    def grads() -> list[torch.Tensor]:
        out = [p.grad.clone() for p in model.parameters()]
        model.zero_grad(set_to_none=True)
        return out

    sum(((reference_forward(model, x, k) - y[k]) ** 2).sum() for k in range(3)).backward()
    expected = grads()
    ((model(x) - y) ** 2).sum().backward()
    plain = grads()
    step = AccumulatedStep(model)
    for rows in torch.arange(23).split(8):
        ((step.forward(model.pad_transpose(x[rows])) - y[:, rows]) ** 2).sum().backward()
    step.backward()
    for got in (plain, grads()):
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, atol=tol, rtol=tol)


KERNEL_SHAPES = [(3, 7, 10, 37), (1, 1, 1, 1), (2, 5, 3, 129), (4, 2, 100, 16)]


def kernel_inputs(n: int, j: int, units: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-activations (N, J*U, B) with exact zeros (+0 and -0), NaN and negatives, and a
    transposed (non-contiguous) (N, J, B) tensor; widths off the SIMD lanes."""
    gen = torch.Generator().manual_seed(n * 1000 + batch)
    pre = torch.randn(n, j * units, batch, generator=gen)
    pre.view(-1)[::5] = 0.0
    pre.view(-1)[1::7] = -0.0
    pre.view(-1)[2::11] = float("nan")
    return pre, torch.randn(n, batch, j, generator=gen).transpose(1, 2)


@pytest.fixture(params=[1, 3], ids=["1thread", "3threads"])
def kernel_threads(request):
    """The kernels on one thread and split across three."""
    threads = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("kernel_threads")
@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("n,j,units,batch", KERNEL_SHAPES)
def test_relu_grad_kernel_equals_torch_threshold_backward(n, j, units, batch, in_place):
    """The C kernel against its torch oracle, bit for bit (NaN passes the gradient, as in torch)."""
    pre, grad_out = kernel_inputs(n, j, units, batch)
    expected = torch.ops.aten.threshold_backward(grad_out.unsqueeze(2).expand(n, j, units, batch),
                                                 pre.view(n, j, units, batch), 0).reshape(pre.shape)
    got = relu_grad(grad_out, pre, units, in_place=in_place)
    assert torch.equal(got, expected)
    assert (got.data_ptr() == pre.data_ptr()) == in_place


@pytest.mark.usefixtures("kernel_threads")
@pytest.mark.parametrize("n,j,units,batch", KERNEL_SHAPES)
def test_relu_weighted_sum_kernel_equals_relu_then_bmm(n, j, units, batch):
    """The C kernel against relu + bmm (NaN propagates, as in torch; only the summation order differs)."""
    pre, _ = kernel_inputs(n, j, units, batch)
    v = torch.randn(n, j, units, generator=torch.Generator().manual_seed(batch))
    kept = pre.clone()
    expected = torch.bmm(v.reshape(n * j, 1, units), pre.relu().view(n * j, units, batch)).view(n, j, batch)
    torch.testing.assert_close(relu_weighted_sum(pre, v), expected, rtol=FLOAT32_TOL, atol=FLOAT32_TOL, equal_nan=True)
    assert torch.equal(pre.nan_to_num(), kept.nan_to_num())


def test_buckets_bound_padding_and_cover_every_gene():
    buckets = size_buckets(SIZES)
    assert sorted(np.concatenate(buckets).tolist()) == list(range(len(SIZES)))
    for genes in buckets:
        sizes = np.asarray(SIZES)[genes]
        assert sizes.max() <= 1.25 * sizes.min()
    assert len(buckets) < len(SIZES)  # 200 & 190, 20 & 18 share a bucket


def test_init_depends_on_the_network_seed_only():
    config = make_config(SIZES, 3)
    many = GeneNetworkEnsemble(config, seeds=[11, 12, 13])
    alone = GeneNetworkEnsemble({**config, "n_networks": 1}, seeds=[12])
    for mine, theirs in zip(alone.parameters(), many.parameters()):
        torch.testing.assert_close(mine[0], theirs[1], atol=0, rtol=0)
    # padding slots of the widest bucket start (and, with zero inputs and zero L1 gradient, stay) at zero
    b = next(b for b, genes in enumerate(many.bucket_genes) if 1 in genes and 2 in genes)
    row = list(many.bucket_genes[b]).index(2)
    assert torch.all(many.gene_w1[b][:, row, :, 18:] == 0)
    assert network_seed(0, 1) == network_seed(0, 1) != network_seed(0, 2) != network_seed(1, 1)


def test_select_and_concat_keep_networks():
    model = GeneNetworkEnsemble(make_config(SIZES, 3), seeds=[1, 2, 3])
    x = torch.randn(9, sum(SIZES))
    both = GeneNetworkEnsemble.concat([model.select([2]), model.select([0, 1])])
    torch.testing.assert_close(both(x), model(x)[[2, 0, 1]], atol=FLOAT32_TOL, rtol=0)


def test_batcher_and_predict_match_dataset_centering(tmp_path):
    data = Dataset.load(tiny_dataset(tmp_path / "data"))
    model = GeneNetworkEnsemble(make_config(data.gene_sizes, 2), seeds=[1, 2])
    rows = np.array([5, 0, 17, 3])
    direct = model(torch.from_numpy(data.centered(rows))).detach().numpy()
    np.testing.assert_allclose(predict(model, data, rows, batch_size=3), direct, atol=FLOAT32_TOL)
    batcher = GenotypeBatcher(np.asarray(data.genotypes), data.snp_mean, data.gene_sizes)
    padded = model.pad_transpose(torch.from_numpy(data.centered(rows)))
    torch.testing.assert_close(batcher.padded_t(rows), padded, atol=0, rtol=0)


def test_save_load_roundtrip_and_bad_folders(tmp_path):
    model = GeneNetworkEnsemble(make_config(SIZES, 2, gene_layer="linear"), seeds=[1, 2])
    networks = [{"dataset": "observed", "member": m, "seed": m, "l1_gene": 0.0, "l1_predictor": 0.0} for m in (0, 1)]
    save_ensemble(tmp_path, model, networks, extra={"target": "observed"})
    loaded, nets = load_ensemble(tmp_path)
    x = torch.randn(4, sum(SIZES))
    torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)
    assert nets == networks
    with pytest.raises(GinnError, match="not a ginn model folder"):
        load_ensemble(tmp_path / "missing")
    info = json.loads((tmp_path / "ensemble.json").read_text())
    del info["networks"][0]["seed"]
    (tmp_path / "ensemble.json").write_text(json.dumps(info))
    with pytest.raises(GinnError, match="lacks seed"):
        load_ensemble(tmp_path)



def test_an_ensemble_of_another_format_does_not_load(tmp_path):
    model = GeneNetworkEnsemble(make_config(SIZES, 1), seeds=[1])
    save_ensemble(tmp_path, model, [{"dataset": "observed", "member": 0, "seed": 1, "l1_gene": 0.0,
                                     "l1_predictor": 0.0}])
    info = json.loads((tmp_path / "ensemble.json").read_text())
    info["format"] = 0  # e.g. saved before a parameter-layout change
    (tmp_path / "ensemble.json").write_text(json.dumps(info))
    with pytest.raises(GinnError, match="ensemble format 0"):
        load_ensemble(tmp_path)


def test_predictions_do_not_depend_on_the_memory_bound_of_a_batch(monkeypatch):
    """Many networks predict in fewer rows at a time (bounded activation memory), with the same values."""
    import ginn.model as model_module

    rng = np.random.default_rng(5)
    sizes = [3, 5, 4]
    genotypes = rng.integers(-1, 3, size=(97, sum(sizes))).astype(np.int8)
    batcher = GenotypeBatcher(genotypes, genotypes.clip(0).mean(axis=0), sizes)
    model = GeneNetworkEnsemble(make_config(sizes, 6, predictor_hidden=7), seeds=range(6))
    whole = model_module.predict_batches(model, batcher.padded_t, np.arange(97))
    monkeypatch.setattr(model_module, "PREDICT_BYTES", 4 * 6 * (3 * 10 + 7 + 3) * 10)   # 10 rows at a time
    # BLAS may sum a product's inner dimension in another order for another column count: float32 rounding
    # (a few ulps, ~1e-7 relative), nothing more
    seen = []
    bounded = model_module.predict_batches(model, lambda rows: seen.append(len(rows)) or batcher.padded_t(rows),
                                           np.arange(97))
    assert max(seen) == 10 and sum(seen) == 97
    np.testing.assert_allclose(bounded, whole, rtol=1e-6, atol=1e-7)
