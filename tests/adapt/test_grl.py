"""Gradient reversal (Ganin & Lempitsky 2015) and the DANN schedules (Ganin et al. 2016)."""

import itertools
import math

import pytest
import torch

from counterfeit.adapt import GradientReversal, dann_lambda, dann_lr, grad_reverse


def test_forward_is_identity():
    x = torch.randn(4, 7)
    assert torch.equal(grad_reverse(x, 0.3), x)


@pytest.mark.parametrize("lambda_", [0.0, 0.5, 1.0, 2.5])
def test_backward_is_minus_lambda_times_grad(lambda_):
    x = torch.randn(5, 3, requires_grad=True)
    upstream = torch.randn(5, 3)
    grad_reverse(x, lambda_).backward(upstream)
    assert torch.allclose(x.grad, -lambda_ * upstream)


@pytest.mark.parametrize("lambda_", [0.3, 1.0])
def test_gradcheck_float64(lambda_):
    """gradcheck a function whose *forward* is -lambda*x but whose gradient flows only
    through the reversal layer: it passes iff the layer's backward is exactly -lambda."""
    weight = torch.randn(4, 2, dtype=torch.float64)

    def reversed_then_nonlinear(x):
        routed = -lambda_ * x.detach() + (grad_reverse(x, lambda_) - x.detach())
        return torch.tanh(routed @ weight)

    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(reversed_then_nonlinear, (x,))


def test_gradcheck_fails_for_a_wrong_sign():
    """The check above can fail: a function with +x forward does not match -lambda backward."""
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert not torch.autograd.gradcheck(
        lambda t: grad_reverse(t, 1.0) * 1.0, (x,), raise_exception=False
    )


def test_module_lambda_is_settable():
    layer = GradientReversal(0.0)
    layer.lambda_ = 0.8
    x = torch.ones(2, requires_grad=True)
    layer(x).sum().backward()
    assert torch.allclose(x.grad, torch.full((2,), -0.8))


def test_lambda_schedule():
    assert dann_lambda(0.0) == 0.0
    values = [dann_lambda(p / 10) for p in range(11)]
    assert all(a < b for a, b in itertools.pairwise(values))
    assert dann_lambda(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert 0.999 < dann_lambda(1.0) < 1.0


def test_lr_schedule():
    assert dann_lr(0.0) == pytest.approx(0.01)
    assert dann_lr(1.0) == pytest.approx(0.01 / 11**0.75)
    assert dann_lr(0.5, mu0=0.1, alpha=10, beta=0.75) == pytest.approx(0.1 / 6**0.75)
