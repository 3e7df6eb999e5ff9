"""The networks of Progressive GAN (Karras, Aila, Laine & Lehtinen, "Progressive Growing of
GANs for Improved Quality, Stability, and Variation", ICLR 2018).

Both networks hold every resolution from 4 x 4 to the target size from the start; a forward
pass takes the current ``level`` (0: 4 x 4, 1: 8 x 8, ...) and the fade-in weight ``alpha``
of that level's new block (Sec. 3, Fig. 2): the output of the level below, upsampled (G) or
read from a half-size image (D), is blended with the new block's by ``alpha``.

The parts the paper names, as its Table 2 and the authors' code build them:

- **Equalized learning rate** (Sec. 4.1): weights drawn from N(0, 1) and scaled at run time
  by He's constant ``gain / sqrt(fan_in)`` (:class:`EqualizedConv2d`,
  :class:`EqualizedLinear`), so Adam's step is the same for every layer.
- **Pixelwise feature normalisation** in G after every convolution (Sec. 4.2,
  :class:`PixelNorm`), and on the latent.
- **Minibatch standard deviation** (Sec. 3): one feature map in D's last block holding the
  standard deviation of each feature over a group of images, averaged
  (:class:`MinibatchStdDev`, groups of 4 as the authors' code).
- G: the latent (PixelNorm'd) through a dense layer to 4 x 4 and a 3 x 3 convolution; each
  higher level upsamples (nearest) and applies two 3 x 3 convolutions; ``to_rgb`` is a 1 x 1
  convolution with a linear output. D mirrors it: ``from_rgb`` (1 x 1), two 3 x 3
  convolutions and a 2 x 2 average pool per level; at 4 x 4 the minibatch-stddev map, a
  3 x 3 convolution, a dense layer and the linear score. Leaky ReLU 0.2 throughout.
- Feature maps per level ``min(fmap_base / 2 ** (level + 1), fmap_max)`` (the authors'
  ``fmap_base`` 8192, ``fmap_max`` 512 give 512 at every level up to 32 px).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.errors import ConfigError, ShapeError

HE_GAIN = math.sqrt(2.0)


class EqualizedConv2d(nn.Module):
    """A convolution whose weight, drawn from N(0, 1), is multiplied by
    ``gain / sqrt(in_channels * k * k)`` at every call (Karras et al. 2018, Sec. 4.1)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, gain: float = HE_GAIN
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqualizedLinear(nn.Module):
    """A dense layer with the run-time weight scale ``gain / sqrt(in_features)``."""

    def __init__(self, in_features: int, out_features: int, gain: float = HE_GAIN) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class PixelNorm(nn.Module):
    """``x / sqrt(mean over channels of x^2 + 1e-8)`` at every pixel (Sec. 4.2, Eq. 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class MinibatchStdDev(nn.Module):
    """Appends one feature map: the standard deviation of every feature and pixel over a group
    of images, averaged to one number per group (Sec. 3). Images ``i`` and ``j`` share a group
    when ``i = j`` modulo the number of groups (the authors' reshape). The group is the largest
    divisor of the batch not above ``group_size``."""

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        group = max(g for g in range(1, min(self.group_size, n) + 1) if n % g == 0)
        y = x.float().reshape(group, n // group, c, h, w)
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # one per group
        feature = std.repeat(group).view(n, 1, 1, 1).expand(n, 1, h, w).to(x.dtype)
        return torch.cat([x, feature], dim=1)


def _levels(image_size: int) -> int:
    levels = math.log2(image_size / 4)
    if image_size < 4 or levels != int(levels):
        raise ConfigError(
            f"Progressive GAN grows from 4 px by doubling; got image_size {image_size}."
        )
    return int(levels) + 1


def feature_maps(level: int, fmap_base: int, fmap_max: int) -> int:
    """Feature maps of a level: ``min(fmap_base / 2 ** (level + 1), fmap_max)``, at least 1."""
    return max(1, min(fmap_base // 2 ** (level + 1), fmap_max))


def _conv(cin: int, cout: int, kernel: int = 3, norm: bool = False) -> list[nn.Module]:
    return [EqualizedConv2d(cin, cout, kernel), nn.LeakyReLU(0.2), *([PixelNorm()] if norm else [])]


def check_level(level: int, alpha: float, levels: int) -> None:
    """A clear error for a level outside the network or a fade-in weight outside [0, 1]."""
    if not 0 <= level < levels or not 0.0 <= alpha <= 1.0:
        raise ConfigError(
            f"level must be in [0, {levels - 1}] and alpha in [0, 1]; got {level}, {alpha}."
        )


class ProGANGenerator(nn.Module):
    """G of Table 2: latent -> 4 x 4 -> ... -> ``image_size``, grown a level at a time.

    Args:
        image_size: the final size, 4 times a power of two.
        channels: image channels.
        latent_dim: z's size (512 in the paper).
        fmap_base, fmap_max: feature maps per level (see :func:`feature_maps`).
    """

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 1,
        latent_dim: int = 512,
        fmap_base: int = 8192,
        fmap_max: int = 512,
    ) -> None:
        super().__init__()
        self.levels, self.latent_dim = _levels(image_size), latent_dim
        width = [feature_maps(k, fmap_base, fmap_max) for k in range(self.levels)]
        self.norm = PixelNorm()
        # the 4 x 4 dense layer's gain is He's / 4: its output is spread over 16 pixels
        self.dense = EqualizedLinear(latent_dim, width[0] * 16, gain=HE_GAIN / 4)
        first = nn.Sequential(nn.LeakyReLU(0.2), PixelNorm(), *_conv(width[0], width[0], norm=True))
        self.blocks = nn.ModuleList([first])
        for k in range(1, self.levels):
            self.blocks.append(
                nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    *_conv(width[k - 1], width[k], norm=True),
                    *_conv(width[k], width[k], norm=True),
                )
            )
        self.to_rgb = nn.ModuleList(EqualizedConv2d(w, channels, 1, gain=1.0) for w in width)

    def forward(
        self, z: torch.Tensor, level: int | None = None, alpha: float = 1.0
    ) -> torch.Tensor:
        """Images (linear output, the training data's [-1, 1] scale) at ``4 * 2 ** level`` px;
        ``alpha`` < 1 blends in the level below, upsampled (None: the top level)."""
        level = self.levels - 1 if level is None else level
        check_level(level, alpha, self.levels)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ShapeError(
                f"ProGAN's G takes z of shape (N, {self.latent_dim}); got {tuple(z.shape)}."
            )
        h = self.dense(self.norm(z)).view(len(z), -1, 4, 4)
        h = self.blocks[0](h)
        for k in range(1, level):
            h = self.blocks[k](h)
        if level == 0:
            return self.to_rgb[0](h)
        new = self.to_rgb[level](self.blocks[level](h))
        if alpha >= 1.0:
            return new
        old = F.interpolate(self.to_rgb[level - 1](h), scale_factor=2, mode="nearest")
        return torch.lerp(old, new, alpha)


class ProGANDiscriminator(nn.Module):
    """D of Table 2, the mirror of :class:`ProGANGenerator`; one linear score per image.

    Args:
        image_size, channels, fmap_base, fmap_max: as the generator's.
        group_size: the minibatch-stddev group (4).
    """

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 1,
        fmap_base: int = 8192,
        fmap_max: int = 512,
        group_size: int = 4,
    ) -> None:
        super().__init__()
        self.levels = _levels(image_size)
        width = [feature_maps(k, fmap_base, fmap_max) for k in range(self.levels)]
        self.from_rgb = nn.ModuleList(
            nn.Sequential(EqualizedConv2d(channels, w, 1), nn.LeakyReLU(0.2)) for w in width
        )
        self.blocks = nn.ModuleList(
            [
                nn.Sequential(
                    MinibatchStdDev(group_size),
                    *_conv(width[0] + 1, width[0]),
                    nn.Flatten(),
                    EqualizedLinear(width[0] * 16, width[0]),
                    nn.LeakyReLU(0.2),
                    EqualizedLinear(width[0], 1, gain=1.0),
                )
            ]
        )
        for k in range(1, self.levels):
            self.blocks.append(
                nn.Sequential(
                    *_conv(width[k], width[k]), *_conv(width[k], width[k - 1]), nn.AvgPool2d(2)
                )
            )

    def forward(
        self, x: torch.Tensor, level: int | None = None, alpha: float = 1.0
    ) -> torch.Tensor:
        """Scores of images at ``4 * 2 ** level`` px; ``alpha`` < 1 blends in the level below's
        reading of the half-size image."""
        level = self.levels - 1 if level is None else level
        check_level(level, alpha, self.levels)
        size = 4 * 2**level
        if x.ndim != 4 or x.shape[-1] != size or x.shape[-2] != size:
            raise ShapeError(
                f"ProGAN's D at level {level} takes {size} px images; got {tuple(x.shape)}."
            )
        h = self.blocks[level](self.from_rgb[level](x))
        if level > 0 and alpha < 1.0:
            old = self.from_rgb[level - 1](F.avg_pool2d(x, 2))
            h = torch.lerp(old, h, alpha)
        for k in range(level - 1, -1, -1):
            h = self.blocks[k](h)
        return h.view(-1)
