"""Adam for ginn's trainers, without ``torch.optim``.

Constructing or stepping any ``torch.optim`` optimizer imports ``torch._dynamo`` (its methods are
wrapped to keep the compiler out), which takes ~1.8 s on a 2-core machine: a third of a 50-network
``ginn train`` on the paper's simulated cohort, paid again by every training process of a pipeline.
ginn needs neither the compiler nor parameter groups, so :class:`Adam` holds the moments itself and
calls the update kernel that ``torch.optim.Adam(fused=True)`` runs; tests/test_adam.py holds the two
equal bit for bit. Parameters are stacked over networks (dim 0), and :meth:`Adam.select` keeps the
state of a subset of networks when a trainer drops the stopped ones.
"""

from __future__ import annotations

import torch

BETAS = (0.9, 0.999)      # torch's (and the paper's) defaults
EPS = 1e-8


class Adam:
    """Adam (no weight decay) over ``params``, one fused update per step for all of them; every step
    updates every parameter (ginn's trainers give each one a gradient), so one step count serves all."""

    def __init__(self, params, lr: float):
        self.params = list(params)
        self.lr = lr
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        # the kernel takes a step count per tensor (float32, on the parameters' device): one, listed for each
        self.step_count = torch.zeros((), dtype=torch.float32, device=self.params[0].device)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter."""
        if any(p.grad is None for p in self.params):
            raise ValueError("Adam.step: every parameter needs a gradient")
        self.step_count += 1
        torch._fused_adam_(self.params, [p.grad for p in self.params], self.exp_avg, self.exp_avg_sq, [],
                           [self.step_count] * len(self.params), lr=self.lr, beta1=BETAS[0], beta2=BETAS[1],
                           weight_decay=0.0, eps=EPS, amsgrad=False, maximize=False)

    def select(self, params, index: torch.Tensor) -> "Adam":
        """The optimizer of ``params``, which hold rows ``index`` (networks) of this optimizer's
        parameters, with those rows' moments and the step count."""
        smaller = Adam(params, self.lr)
        smaller.step_count = self.step_count.clone()
        for i in range(len(self.params)):
            smaller.exp_avg[i] = self.exp_avg[i][index].clone()
            smaller.exp_avg_sq[i] = self.exp_avg_sq[i][index].clone()
        return smaller
