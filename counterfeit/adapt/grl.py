"""Gradient reversal and the DANN schedules.

Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation",
ICML 2015; Ganin et al., "Domain-Adversarial Training of Neural Networks",
JMLR 17(59), 2016, Sec. 3.2 (the layer) and Sec. 5.2.2 (the schedules).

The gradient reversal layer R_lambda is the identity in the forward pass and
multiplies the incoming gradient by -lambda in the backward pass:
``R(x) = x``, ``dR/dx = -lambda * I``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lambda_: float) -> torch.Tensor:
        ctx.lambda_ = lambda_
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad_output.neg() * ctx.lambda_, None


def grad_reverse(x: torch.Tensor, lambda_: float = 1.0) -> torch.Tensor:
    """Identity forward; gradient multiplied by ``-lambda_`` backward (Ganin et al. 2016)."""
    return _ReverseGradient.apply(x, float(lambda_))


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse`; set ``lambda_`` as training goes."""

    def __init__(self, lambda_: float = 1.0) -> None:
        super().__init__()
        self.lambda_ = float(lambda_)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lambda_)

    def extra_repr(self) -> str:
        return f"lambda_={self.lambda_}"


def dann_lambda(p: float, gamma: float = 10.0) -> float:
    """Adaptation factor ``2 / (1 + exp(-gamma * p)) - 1``: 0 at p=0, ->1 as p->1.

    Ganin et al. 2016, Sec. 5.2.2 (gamma = 10): suppresses the domain
    classifier's noisy signal early in training.
    """
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


def dann_lr(p: float, mu0: float = 0.01, alpha: float = 10.0, beta: float = 0.75) -> float:
    """Learning-rate annealing ``mu0 / (1 + alpha * p) ** beta`` (Ganin et al. 2016, Sec. 5.2.2)."""
    return mu0 / (1.0 + alpha * p) ** beta
