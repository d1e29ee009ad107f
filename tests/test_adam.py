"""ginn.adam.Adam against its oracle, torch.optim.Adam(fused=True): the same kernel, so equal bit for bit."""

import pytest
import torch

from ginn.adam import Adam


def _tensors(seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shapes = [(6, 3, 5), (6, 7), (6,), (6, 33)]      # networks on dim 0; 33 leaves a vector tail
    return [torch.randn(shape, generator=gen).requires_grad_() for shape in shapes]


def _gradients(params, step: int) -> None:
    gen = torch.Generator().manual_seed(100 + step)
    for index, p in enumerate(params):
        p.grad = torch.randn(p.shape, generator=gen) * 10.0 ** (index - 2)     # gradients of 1e-2 to 10


def test_steps_equal_torch_fused_adam_bit_for_bit():
    ours, theirs = _tensors(0), _tensors(0)
    adam, oracle = Adam(ours, lr=0.01), torch.optim.Adam(theirs, lr=0.01, fused=True)
    for step in range(7):
        _gradients(ours, step)
        _gradients(theirs, step)
        adam.step()
        oracle.step()
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b)
    for i, p in enumerate(theirs):
        assert torch.equal(adam.exp_avg[i], oracle.state[p]["exp_avg"])
        assert torch.equal(adam.exp_avg_sq[i], oracle.state[p]["exp_avg_sq"])
        assert torch.equal(adam.step_count, oracle.state[p]["step"])


def test_select_continues_the_kept_networks_as_if_nothing_was_dropped():
    """Equal up to float32 rounding: the fused kernel rounds an element differently in its vector body
    and its scalar tail (one ulp of the update), and selecting rows moves elements between the two.
    1e-6 on parameters of size ~1 after 3 steps of lr 0.05 is a few ulps; a lost or mixed-up moment
    moves a parameter by ~lr."""
    whole = _tensors(1)
    adam = Adam(whole, lr=0.05)
    for step in range(3):
        _gradients(whole, step)
        adam.step()
    keep = torch.tensor([4, 1])
    part = [p.detach()[keep].clone().requires_grad_() for p in whole]
    smaller = adam.select(part, keep)
    for step in range(3, 6):
        _gradients(whole, step)
        for p, q in zip(whole, part):
            q.grad = p.grad[keep].clone()
        adam.step()
        smaller.step()
    for p, q in zip(whole, part):
        torch.testing.assert_close(p.detach()[keep], q.detach(), atol=1e-6, rtol=0)


def test_zero_grad_in_place_or_to_none():
    params = _tensors(2)
    _gradients(params, 0)
    grad = params[0].grad
    Adam(params, lr=0.1).zero_grad(set_to_none=False)
    assert params[0].grad is grad and not grad.any()
    adam = Adam(params, lr=0.1)
    adam.zero_grad()
    assert all(p.grad is None for p in params)
    with pytest.raises(ValueError, match="every parameter needs a gradient"):
        adam.step()          # a shared step count would give a skipped tensor the wrong bias correction
