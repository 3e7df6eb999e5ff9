"""Progressive GAN's parts against hand computations: the equalized learning rate, pixel
norm, the minibatch-stddev map, and the fade-in of a new level in G and D."""

import math

import pytest
import torch
import torch.nn.functional as F

from counterfeit.gan.errors import ConfigError, ShapeError
from counterfeit.gan.nets.progan import (
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
    ProGANDiscriminator,
    ProGANGenerator,
    feature_maps,
)


def test_equalized_layers_keep_unit_weights_and_scale_them_by_hes_constant_at_run_time():
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 32, 3)
    assert float(conv.weight.detach().std()) == pytest.approx(1.0, abs=0.02)  # stored unscaled
    x = torch.randn(2, 64, 5, 5)
    he = math.sqrt(2 / (64 * 3 * 3))
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * he, conv.bias, padding=1))
    with torch.no_grad():
        conv.weight.mul_(2)  # the scale is applied to whatever the weight is now
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * he, conv.bias, padding=1))
    effective = (conv.weight.detach() * he).requires_grad_(True)
    F.conv2d(x, effective, conv.bias.detach(), padding=1).sum().backward()
    conv(x).sum().backward()  # the stored weight's gradient carries the same constant
    torch.testing.assert_close(conv.weight.grad, effective.grad * he)
    dense = EqualizedLinear(50, 3, gain=1.0)
    v = torch.randn(4, 50)
    torch.testing.assert_close(dense(v), v @ (dense.weight / math.sqrt(50)).T + dense.bias)


def test_pixel_norm_gives_unit_mean_square_over_the_channels_at_every_pixel():
    x = torch.randn(3, 7, 4, 4) * 5
    y = PixelNorm()(x)
    torch.testing.assert_close(y.pow(2).mean(1), torch.ones(3, 4, 4), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(y / y.norm(dim=1, keepdim=True), x / x.norm(dim=1, keepdim=True))


def test_minibatch_stddev_channel_equals_a_hand_computation():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 2, 2)
    out = MinibatchStdDev(group_size=4)(x)
    assert out.shape == (8, 4, 2, 2) and torch.equal(out[:, :3], x)
    for i in range(8):  # groups of 4: images i, i+2, i+4, i+6 (the authors' reshape)
        members = x[i % 2 :: 2]
        std = members.var(0, unbiased=False).add(1e-8).sqrt().mean()
        torch.testing.assert_close(out[i, 3], std.expand(2, 2))
    odd = MinibatchStdDev(4)(torch.randn(6, 2, 2, 2))  # 6 images: groups of 3
    assert odd.shape == (6, 3, 2, 2) and not torch.equal(odd[0, 2], odd[1, 2])


def nets() -> tuple[ProGANGenerator, ProGANDiscriminator]:
    torch.manual_seed(0)
    return ProGANGenerator(16, 1, 8, 32, 8), ProGANDiscriminator(16, 1, 32, 8)


def test_g_fade_in_runs_from_the_old_level_upsampled_to_the_new_blocks_output():
    g, _ = nets()
    z = torch.randn(3, 8)
    old = F.interpolate(g(z, 1), scale_factor=2, mode="nearest")
    new = g(z, 2, 1.0)
    assert new.shape == (3, 1, 16, 16)
    torch.testing.assert_close(g(z, 2, 0.0), old)
    torch.testing.assert_close(g(z, 2, 0.25), 0.75 * old + 0.25 * new)
    assert not torch.allclose(old, new)


def test_d_fade_in_runs_from_the_half_size_image_to_the_new_blocks_reading():
    _, d = nets()
    x = torch.randn(4, 1, 16, 16)
    torch.testing.assert_close(d(x, 2, 0.0), d(F.avg_pool2d(x, 2), 1, 1.0))
    assert d(x, 2, 0.5).shape == (4,)
    assert not torch.allclose(d(x, 2, 0.0), d(x, 2, 1.0))


def test_feature_maps_and_clear_errors():
    assert [feature_maps(k, 8192, 512) for k in range(4)] == [512] * 4  # the paper's to 32 px
    assert [feature_maps(k, 256, 32) for k in range(4)] == [32, 32, 32, 16]
    g, d = nets()
    with pytest.raises(ConfigError, match="doubling"):
        ProGANGenerator(24)
    with pytest.raises(ConfigError, match="level must be in"):
        g(torch.randn(1, 8), 3)
    with pytest.raises(ShapeError, match="takes 8 px images"):
        d(torch.randn(2, 1, 16, 16), 1)
    with pytest.raises(ShapeError, match=r"z of shape \(N, 8\)"):
        g(torch.randn(2, 9))
