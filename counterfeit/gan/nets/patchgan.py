"""The PatchGAN discriminator of pix2pix (Isola et al., CVPR 2017, Sec. 3.2.2 and App. 6.1.2)
and CycleGAN (Zhu et al., ICCV 2017, Sec. 4 and App. 7.2).

``C64-C128-C256-C512`` for the 70x70 PatchGAN: 4x4 convolutions, LeakyReLU 0.2,
no normalisation on the first layer, stride 2 on all but the last two
convolutions, then a 1-channel 4x4 convolution that scores every overlapping
patch. ``n_layers`` strided convolutions set the receptive field: 1 -> 16, 2
-> 34, 3 -> 70 (the paper's default), 4 -> 142 pixels. The papers' 70x70 field
is meant for 256 px images; :func:`patchgan_layers_for` picks the depth from
the image size (32 px -> 16x16 patches, 64 -> 34, 128 and up -> 70), so that a
patch stays a part of the image. No sigmoid: the losses in :mod:`gan.losses`
take logits.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.nets.blocks import NormKind, conv_block, init_normal_


def patchgan_layers_for(image_size: int) -> int:
    """The number of strided layers for ``image_size``: the paper's 3 (70x70) from 128 px
    up, 2 (34x34) at 64 px, 1 (16x16) at 32 px and below."""
    if image_size < 16:
        raise ConfigError(f"the PatchGAN needs images of at least 16 px, got {image_size}.")
    return max(1, min(3, int(math.log2(image_size)) - 4))


def receptive_field(module: nn.Module) -> int:
    """The receptive field in pixels of a plain stack of convolutions (in module order)."""
    field, jump = 1, 1
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            field += (layer.kernel_size[0] - 1) * jump
            jump *= layer.stride[0]
    return field


class PatchGANDiscriminator(nn.Module):
    """The N-layer PatchGAN: one logit per overlapping patch.

    Args:
        in_channels: input channels (pix2pix: A's and B's channels, concatenated).
        width: first layer's filters (64 in the papers); doubling per layer up to 8x.
        n_layers: strided layers (3: the 70x70 PatchGAN); see :func:`patchgan_layers_for`.
        norm: ``batch`` (pix2pix), ``instance`` (CycleGAN) or ``none``.
    """

    def __init__(
        self, in_channels: int, width: int = 64, n_layers: int = 3, norm: NormKind = "batch"
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ConfigError(f"the PatchGAN needs n_layers >= 1, got {n_layers}.")
        self.in_channels = in_channels
        layers = [conv_block(in_channels, width, 4, 2, 1, norm="none", act="lrelu")]
        channels = width
        for i in range(1, n_layers + 1):
            out = width * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers.append(conv_block(channels, out, 4, stride, 1, norm=norm, act="lrelu"))
            channels = out
        layers.append(nn.Conv2d(channels, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        init_normal_(self)

    @property
    def receptive_field(self) -> int:
        """Pixels of the input that one output logit sees (70 for ``n_layers=3``)."""
        return receptive_field(self.net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch logits (N, 1, H', W') for images ``x`` (N, in_channels, H, W) in [-1, 1]."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(
                f"the PatchGAN takes (N, {self.in_channels}, H, W) images, got {tuple(x.shape)}."
            )
        return self.net(x)


class MultiscalePatchGAN(nn.Module):
    """pix2pixHD's multi-scale discriminator (Wang et al., CVPR 2018, Sec. 3.2).

    ``num_d`` PatchGANs of the same architecture; the k-th sees the input
    down-sampled k times by 3x3 average pooling with stride 2 (the authors' code:
    ``count_include_pad=False``). The coarse ones judge global structure, the fine
    one detail. :meth:`forward` returns every layer's output for every scale, so
    that the feature-matching loss (:func:`feature_matching_loss`) can use them.
    """

    def __init__(
        self,
        in_channels: int,
        num_d: int = 3,
        width: int = 64,
        n_layers: int = 3,
        norm: NormKind = "instance",
    ) -> None:
        super().__init__()
        if num_d < 1:
            raise ConfigError(f"the multi-scale discriminator needs num_d >= 1, got {num_d}.")
        self.in_channels = in_channels
        self.scales = nn.ModuleList(
            PatchGANDiscriminator(in_channels, width, n_layers, norm) for _ in range(num_d)
        )
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        """Per scale (finest first), the outputs of every layer; the last are the logits."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(
                f"the discriminator takes (N, {self.in_channels}, H, W) images, "
                f"got {tuple(x.shape)}."
            )
        outputs = []
        for k, d in enumerate(self.scales):
            if k:
                x = self.downsample(x)
            features = []
            h = x
            for layer in d.net:
                h = layer(h)
                features.append(h)
            outputs.append(features)
        return outputs


def feature_matching_loss(
    fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]
) -> torch.Tensor:
    """pix2pixHD's feature-matching loss (Wang et al. 2018, Eq. 4), as in the authors' code.

    Mean L1 between D's intermediate features of fake and (detached) real inputs,
    over every scale and every layer but the logits, weighted ``4 / (n_layers + 1)``
    per layer and ``1 / num_d`` per scale.
    """
    loss = fake[0][0].new_zeros(())
    for fake_scale, real_scale in zip(fake, real, strict=True):
        layer_weight = 4.0 / (len(fake_scale) - 1)
        for f, r in zip(fake_scale[:-1], real_scale[:-1], strict=True):
            loss = loss + layer_weight * F.l1_loss(f, r.detach()) / len(fake)
    return loss
