"""``frozen``: D receives no gradient during G's step, and every flag comes back as it was."""

import pytest
import torch
from torch import nn

from counterfeit.gan.ema import EMA, sampling_network
from counterfeit.gan.method import frozen


def test_the_frozen_module_gets_no_gradient_and_the_other_does() -> None:
    g, d = nn.Linear(3, 3), nn.Linear(3, 1)
    with frozen(d):
        d(g(torch.randn(4, 3))).sum().backward()
    assert all(p.grad is None for p in d.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())
    assert all(p.requires_grad for p in d.parameters())


def test_each_parameter_gets_its_own_flag_back_even_after_an_error() -> None:
    d = nn.Linear(3, 1)
    d.bias.requires_grad_(False)  # frozen by the user before: must stay frozen
    with pytest.raises(RuntimeError, match="boom"), frozen(d, None):
        assert not any(p.requires_grad for p in d.parameters())
        raise RuntimeError("boom")
    assert d.weight.requires_grad and not d.bias.requires_grad


def test_sampling_network_prefers_the_average_only_when_asked_and_kept() -> None:
    net = nn.Linear(2, 2)
    average = EMA(net)
    assert sampling_network(net, average, True) is average.module
    assert sampling_network(net, average, False) is net
    assert sampling_network(net, None, True) is net
