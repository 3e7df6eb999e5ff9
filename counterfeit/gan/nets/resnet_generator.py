"""The ResNet generator of CycleGAN (Zhu, Park, Isola & Efros, ICCV 2017, App. 7.2),
after Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer", ECCV 2016.

``c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-3``: ``c7s1-k`` a 7x7
stride-1 convolution with k filters after reflection padding of 3, InstanceNorm
and ReLU; ``dk`` a 3x3 stride-2 convolution, InstanceNorm, ReLU; ``Rk`` a
residual block of two 3x3 convolutions (reflection padding 1, InstanceNorm,
ReLU after the first only); ``uk`` a 3x3 stride-1/2 (transposed) convolution,
InstanceNorm, ReLU. The last ``c7s1-3`` has no norm and ends in tanh: outputs
lie in [-1, 1]. The paper uses 6 residual blocks for 128 px images and 9 for
256 px (:func:`resnet_blocks_for`). Weights are drawn from N(0, 0.02), biases 0
(the authors' ``init_type=normal``). As in the authors' code, InstanceNorm has
no affine parameters and the convolutions before it keep their bias.

``width`` (ngf, 64 in the paper) scales every layer; the paper's 3 output
channels become ``out_channels`` (1 for grey images).
"""

from __future__ import annotations

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.nets.blocks import init_normal_


def resnet_blocks_for(image_size: int) -> int:
    """The paper's residual-block count for ``image_size``: 6 up to 128 px, 9 above."""
    if image_size < 4:
        raise ConfigError(f"the ResNet generator needs images of at least 4 px, got {image_size}.")
    return 6 if image_size <= 128 else 9


class ResnetBlock(nn.Module):
    """``Rk``: x + [pad1-conv3-IN-ReLU-pad1-conv3-IN](x), reflection padding (Zhu et al. 2017)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=True),
            nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=True),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's image-to-image generator; maps (N, in_channels, H, W) in [-1, 1] to
    (N, out_channels, H, W) in [-1, 1].

    Args:
        in_channels, out_channels: image channels of the input and output domains.
        width: filters of the first layer (ngf; 64 in the paper), doubling twice.
        n_blocks: residual blocks at the bottleneck (6 at 128 px, 9 at 256 px in the paper).
        n_downsampling: stride-2 stages (2 in the paper); H and W must be divisible by
            ``2 ** n_downsampling``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        width: int = 64,
        n_blocks: int = 6,
        n_downsampling: int = 2,
    ) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1 or width < 1:
            raise ConfigError(
                f"the ResNet generator needs positive channels and width, got in_channels="
                f"{in_channels}, out_channels={out_channels}, width={width}."
            )
        if n_blocks < 0 or n_downsampling < 0:
            raise ConfigError(
                f"the ResNet generator needs n_blocks >= 0 and n_downsampling >= 0, got "
                f"n_blocks={n_blocks}, n_downsampling={n_downsampling}."
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.n_blocks, self.n_downsampling = n_blocks, n_downsampling
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, width, 7, bias=True),
            nn.InstanceNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        channels = width
        for _ in range(n_downsampling):
            layers += [
                nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1, bias=True),
                nn.InstanceNorm2d(channels * 2),
                nn.ReLU(inplace=True),
            ]
            channels *= 2
        layers += [ResnetBlock(channels) for _ in range(n_blocks)]
        for _ in range(n_downsampling):
            layers += [
                nn.ConvTranspose2d(
                    channels, channels // 2, 3, stride=2, padding=1, output_padding=1, bias=True
                ),
                nn.InstanceNorm2d(channels // 2),
                nn.ReLU(inplace=True),
            ]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_normal_(self)

    @property
    def blocks(self) -> list[ResnetBlock]:
        """The residual blocks, in order."""
        return [m for m in self.net if isinstance(m, ResnetBlock)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Translate ``x`` (N, in_channels, H, W) in [-1, 1]; H, W divisible by 2^n_downsampling."""
        factor = 2**self.n_downsampling
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(
                f"the ResNet generator takes (N, {self.in_channels}, H, W) images, got "
                f"{tuple(x.shape)}."
            )
        if x.shape[-2] % factor or x.shape[-1] % factor:
            raise ConfigError(
                f"the ResNet generator needs H and W divisible by {factor}, got "
                f"{tuple(x.shape[-2:])}; pad or resize the images (e.g. data.image_size)."
            )
        return self.net(x)
