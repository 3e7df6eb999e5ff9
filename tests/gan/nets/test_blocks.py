"""Shared building blocks: normalisation by name, conv bias rule, the linear-decay schedule."""

import itertools

import pytest
import torch
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.nets.blocks import conv_block, norm_layer
from counterfeit.gan.schedules import linear_decay


def test_instance_norm_normalises_each_image_and_keeps_conv_bias():
    block = conv_block(3, 8, 3, 1, 1, norm="instance", act="none")
    assert isinstance(block[1], nn.InstanceNorm2d) and block[0].bias is not None
    assert conv_block(3, 8, norm="batch")[0].bias is None
    out = block(torch.randn(2, 3, 16, 16) * 5 + 3)
    means, stds = out.mean(dim=(2, 3)), out.std(dim=(2, 3), unbiased=False)
    assert torch.allclose(means, torch.zeros_like(means), atol=1e-5)
    assert torch.allclose(stds, torch.ones_like(stds), atol=1e-2)


def test_unknown_or_unsupported_norm_is_named():
    with pytest.raises(ConfigError, match="'weird'"):
        norm_layer("weird", 4)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'instance' for 1-d"):
        norm_layer("instance", 4, dims=1)


def test_linear_decay_is_constant_then_falls_to_near_zero():
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=2e-4)
    schedule = linear_decay(optimizer, total_steps=20, decay_start=10)
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[:10] == [2e-4] * 10
    assert all(a > b for a, b in itertools.pairwise(lrs[9:]))
    assert 0 < lrs[-1] < 2e-4 / 10
    with pytest.raises(ConfigError, match="decay_start=30"):
        linear_decay(optimizer, total_steps=20, decay_start=30)
