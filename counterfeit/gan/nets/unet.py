"""The U-Net generator of pix2pix (Isola et al., CVPR 2017, Sec. 3.2.1 and App. 6.1.1).

An encoder-decoder whose decoder layer ``i`` also sees encoder layer ``n - i``
(skip connections by channel concatenation), so that low-level structure
shared by input and output (edges, layout) need not squeeze through the
bottleneck. Built recursively as in the authors' PyTorch code
(``UnetSkipConnectionBlock`` of junyanz/pytorch-CycleGAN-and-pix2pix): each
:class:`UNetBlock` is ``down -> inner block -> up`` and returns
``cat(x, up(...))``, so the up-convolution of the level above sees the
level's own input features beside the decoded ones.

* Encoder ``C64-C128-C256-C512-C512-C512-C512-C512`` for 256 px (``unet_256``):
  4x4 convolutions with stride 2, LeakyReLU 0.2; no normalisation on the
  outermost (first) convolution nor on the innermost (the 1x1 bottleneck).
* Decoder: ReLU, 4x4 transposed convolutions with stride 2, normalisation;
  the outermost up-convolution maps to the output channels and ends in tanh.
* The depth (number of stride-2 downsamplings) follows the image size:
  ``log2(size)`` (256 -> 8 as ``unet_256``, 128 -> 7, 64 -> 6, 32 -> 5) so the
  bottleneck is always 1x1, as in the paper (:func:`unet_depth_for`).
* Width ``w`` (64 in the paper): level ``i`` (0 = outermost) has
  ``w * min(2**i, 8)`` channels.
* Dropout 0.5 "in the first 3 layers of the decoder" (App. 6.1.1). We follow
  the authors' code, which puts it in the three blocks *just above* the
  innermost one (``num_downs - 5`` blocks of 8w channels for unet_256); the
  innermost and the outermost block never have dropout. For a shallower
  U-Net we keep the rule "the three decoder blocks above the innermost", so
  depth 5 (32 px) has dropout in levels 1-3 (every block but the outermost
  and innermost), depth 4 has two, depth 3 one (:func:`dropout_levels`).
  (The authors' code would give a 32 px U-Net no dropout at all: its
  ``num_downs - 5`` is 0 there.)
* Weights from N(0, 0.02), normalisation scales from N(1, 0.02) (App. 6.2).

Images in [-1, 1] in and out (the :class:`gan.models.Pix2Pix` method converts
from and to [0, 1]). The authors' LeakyReLU is in-place and so also rewrites
the skip tensor; since every skip is followed by the parent's ReLU and
``ReLU(LeakyReLU(x)) = ReLU(x)``, our out-of-place version computes the same function.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.nets.blocks import NormKind, init_normal_, norm_layer

N_DROPOUT = 3


def unet_depth_for(image_size: int) -> int:
    """The number of stride-2 downsamplings that take ``image_size`` to a 1x1 bottleneck:
    ``log2(image_size)`` (pix2pix's ``unet_256`` has 8). Sizes must be powers of two >= 8."""
    if image_size < 8 or image_size & (image_size - 1):
        raise ConfigError(
            f"the U-Net needs a power-of-two image size of at least 8 px (e.g. 32, 64, 256), "
            f"got {image_size}."
        )
    return int(math.log2(image_size))


def dropout_levels(depth: int, n_dropout: int = N_DROPOUT) -> list[int]:
    """The levels (0 = outermost, ``depth - 1`` = innermost) whose decoder blocks have
    dropout: the ``n_dropout`` just above the innermost, never the outermost."""
    innermost = depth - 1
    return [level for level in range(innermost - 1, 0, -1)][:n_dropout][::-1]


class UNetBlock(nn.Module):
    """One level of the U-Net: ``down -> inner -> up``, with ``cat(x, up)`` as output.

    Args:
        outer_channels: channels of this level's input (and of its up-conv output);
            for the outermost block, the output image's channels.
        inner_channels: channels after this level's down-convolution.
        in_channels: the input's channels (defaults to ``outer_channels``; the image's for
            the outermost block).
        inner: the next block down (None for the innermost).
        outermost, innermost: the two ends, which have no normalisation on the down path.
        norm: ``batch`` (the paper) or ``instance`` or ``none``.
        dropout: dropout probability after the up block (0: none).
    """

    def __init__(
        self,
        outer_channels: int,
        inner_channels: int,
        in_channels: int | None = None,
        inner: UNetBlock | None = None,
        *,
        outermost: bool = False,
        innermost: bool = False,
        norm: NormKind = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if (inner is None) != innermost:
            raise ConfigError("exactly the innermost U-Net block has no inner block.")
        in_channels = outer_channels if in_channels is None else in_channels
        bias = norm in ("instance", "none")  # BatchNorm's shift makes a conv bias redundant
        self.outermost, self.innermost = outermost, innermost
        # Conv biases as in the authors' code: only the outermost up-conv always has one.
        down_conv = nn.Conv2d(in_channels, inner_channels, 4, 2, 1, bias=bias)
        up_in = inner_channels if innermost else 2 * inner_channels  # cat(skip, decoded)
        up_conv = nn.ConvTranspose2d(up_in, outer_channels, 4, 2, 1, bias=bias or outermost)
        down: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2)]
        down.append(down_conv)
        if not (outermost or innermost):
            down.append(norm_layer(norm, inner_channels))
        up: list[nn.Module] = [nn.ReLU(), up_conv]
        if outermost:
            up.append(nn.Tanh())
        else:
            up.append(norm_layer(norm, outer_channels))
            if dropout > 0:
                up.append(nn.Dropout(dropout))
        self.down = nn.Sequential(*down)
        self.inner = inner
        self.up = nn.Sequential(*up)

    @property
    def up_conv(self) -> nn.ConvTranspose2d:
        return self.up[1]  # type: ignore[return-value]

    @property
    def has_dropout(self) -> bool:
        return any(isinstance(m, nn.Dropout) for m in self.up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.down(x)
        if self.inner is not None:
            y = self.inner(y)
        y = self.up(y)
        return y if self.outermost else torch.cat([x, y], 1)


class UNetGenerator(nn.Module):
    """pix2pix's U-Net generator, ``depth`` levels from the image size (see the module doc).

    Args:
        in_channels: channels of the input image (domain A).
        out_channels: channels of the output image (domain B).
        image_size: a power of two >= 8; sets the depth to ``log2(image_size)``.
        width: filters of the outermost level (64 in the paper).
        norm: ``batch`` (the paper), ``instance`` or ``none``.
        dropout: dropout probability in the decoder blocks of :func:`dropout_levels`
            (0.5 in the paper; 0 disables it).
        depth: override the number of levels (a bottleneck larger than 1x1 when less
            than ``log2(image_size)``).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        image_size: int = 256,
        width: int = 64,
        norm: NormKind = "batch",
        dropout: float = 0.5,
        depth: int | None = None,
    ) -> None:
        super().__init__()
        max_depth = unet_depth_for(image_size)
        depth = max_depth if depth is None else depth
        if not 2 <= depth <= max_depth:
            raise ConfigError(
                f"the U-Net depth must be in [2, {max_depth}] for {image_size} px images "
                f"(log2 of the size takes it to 1x1), got {depth}."
            )
        if not 0 <= dropout < 1:
            raise ConfigError(f"the U-Net dropout must be in [0, 1), got {dropout}.")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.image_size, self.depth = image_size, depth
        self.dropout_levels = dropout_levels(depth) if dropout > 0 else []
        channels = [width * min(2**i, 8) for i in range(depth)]
        block: UNetBlock | None = None
        for level in range(depth - 1, -1, -1):
            outermost, innermost = level == 0, level == depth - 1
            block = UNetBlock(
                out_channels if outermost else channels[level - 1],
                channels[level],
                in_channels if outermost else None,
                block,
                outermost=outermost,
                innermost=innermost,
                norm=norm,
                dropout=dropout if level in self.dropout_levels else 0.0,
            )
        assert block is not None
        self.net = block
        init_normal_(self)

    @property
    def blocks(self) -> list[UNetBlock]:
        """The levels from the outermost (0) to the innermost (``depth - 1``)."""
        out, block = [], self.net
        while block is not None:
            out.append(block)
            block = block.inner
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, out_channels, H, W) in [-1, 1] from ``x`` (N, in_channels, H, W) in [-1, 1]."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(
                f"the U-Net takes (N, {self.in_channels}, H, W) images, got {tuple(x.shape)}."
            )
        if x.shape[-1] % 2**self.depth or x.shape[-2] % 2**self.depth:
            raise ConfigError(
                f"the U-Net of depth {self.depth} needs sides divisible by {2**self.depth}, "
                f"got {tuple(x.shape[-2:])}."
            )
        return self.net(x)
