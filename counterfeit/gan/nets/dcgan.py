"""The DCGAN generator and discriminator (Radford, Metz & Chintala, ICLR 2016).

Architecture guidelines of the paper (Sec. 3), all followed here:

* no pooling: strided convolutions in D, fractionally-strided (transposed)
  convolutions in G; no fully connected hidden layers (G's projection of z to
  4x4 is a 4x4 transposed convolution of a 1x1 input, i.e. a linear map, and
  D's last layer a 4x4 valid convolution, i.e. a linear map to one logit);
* BatchNorm in both nets, except on D's input layer and G's output layer;
* ReLU in G with tanh at its output; LeakyReLU (slope 0.2) in D;
* weights from N(0, 0.02) (:func:`gan.nets.blocks.init_normal_`).

Widths follow Fig. 1 of the paper for 64 px: G 1024-512-256-128 channels from
4x4 to 32x32 (``width=128``), D mirrored (128-256-512-1024). Each halving of
the image size drops the widest layer, so 32 px uses 512-256-128 in G.

Images at the boundary are float [0, 1] like everywhere in counterfeit: G's
tanh output is mapped to [0, 1] as its last step, and D maps its input to
[-1, 1] as its first. Conditioning (``num_classes > 0``) follows Mirza &
Osindero 2014 (Conditional GANs): a one-hot label is concatenated to z in G
and to D's input as constant feature maps.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.nets.blocks import NormKind, conv_block, init_normal_
from counterfeit.gan.nets.spectral import spectral_norm

DNormKind = Literal["batch", "layer", "none", "spectral"]

SIZES = (16, 32, 64, 128, 256)


def _levels(image_size: int) -> int:
    """Number of 2x up/down-sampling stages between 4x4 and ``image_size``."""
    if image_size not in SIZES:
        raise ConfigError(
            f"DCGAN nets take square images of {', '.join(map(str, SIZES))} px, got "
            f"{image_size}. Pad or resize the data (e.g. 28 px digits: pad 2 px per side to 32)."
        )
    return int(math.log2(image_size)) - 2


def _check(channels: int, width: int, num_classes: int) -> None:
    if channels < 1 or width < 1 or num_classes < 0:
        raise ConfigError(
            f"DCGAN needs channels >= 1, width >= 1 and num_classes >= 0, got "
            f"channels={channels}, width={width}, num_classes={num_classes}."
        )


class DCGANGenerator(nn.Module):
    """z (N, latent_dim) [+ labels (N,)] -> images (N, channels, size, size) in [0, 1].

    Args:
        image_size: 16, 32, 64 (the paper's), 128 or 256.
        channels: output channels (1 grey, 3 RGB).
        latent_dim: size of z (the paper: 100; its distribution is the caller's choice).
        width: channels of the last hidden layer; the first has ``width * 2^(levels-1)``.
        num_classes: > 0 for a class-conditional generator.
    """

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        latent_dim: int = 100,
        width: int = 128,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        _check(channels, width, num_classes)
        levels = _levels(image_size)
        self.image_size = image_size
        self.channels = channels
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        widths = [width * 2 ** (levels - 1 - i) for i in range(levels)]
        layers = [conv_block(latent_dim + num_classes, widths[0], 4, 1, 0, "batch", "relu", True)]
        for w_in, w_out in itertools.pairwise(widths):
            layers.append(conv_block(w_in, w_out, 4, 2, 1, "batch", "relu", transpose=True))
        layers.append(conv_block(widths[-1], channels, 4, 2, 1, "none", "tanh", transpose=True))
        self.net = nn.Sequential(*layers)
        init_normal_(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ConfigError(
                f"generator expects z of shape (N, {self.latent_dim}), got {tuple(z.shape)}."
            )
        z = _with_labels(z, labels, self.num_classes)
        out = self.net(z[:, :, None, None])
        return out.mul(0.5).add(0.5)  # tanh range [-1, 1] -> [0, 1]


class DCGANDiscriminator(nn.Module):
    """images (N, channels, size, size) in [0, 1] [+ labels (N,)] -> logits (N,).

    Args:
        image_size, channels, width, num_classes: as for :class:`DCGANGenerator`.
        norm: ``batch`` (the paper), ``layer`` (for WGAN-GP, whose penalty needs
            per-sample gradients: Gulrajani et al. 2017, Sec. 4), ``none``, or ``spectral``:
            every convolution spectrally normalised and no other normalisation (SN-DCGAN,
            Miyato et al., ICLR 2018, the "standard CNN" of their Table 3 uses the same
            conv layout with SN in place of BatchNorm).
    """

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        width: int = 128,
        num_classes: int = 0,
        norm: DNormKind = "batch",
    ) -> None:
        super().__init__()
        _check(channels, width, num_classes)
        levels = _levels(image_size)
        self.image_size = image_size
        self.channels = channels
        self.num_classes = num_classes
        widths = [width * 2**i for i in range(levels)]
        block_norm = "none" if norm == "spectral" else norm
        layers = [conv_block(channels + num_classes, widths[0], 4, 2, 1, "none", "lrelu")]
        for w_in, w_out in itertools.pairwise(widths):
            layers.append(conv_block(w_in, w_out, 4, 2, 1, block_norm, "lrelu"))
        layers.append(nn.Conv2d(widths[-1], 1, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        init_normal_(self)
        if norm == "spectral":
            for module in list(self.modules()):
                if isinstance(module, nn.Conv2d):
                    spectral_norm(module)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations, flattened (N, D): the "intermediate layer f"
        of feature matching (Salimans et al. 2016) and of AnoGAN's discrimination loss
        (Schlegl et al. 2017, Eq. 4). Unconditional nets only."""
        if self.num_classes:
            raise ConfigError("features() takes an unconditional discriminator.")
        return self.net[:-1](images.mul(2).sub(1)).flatten(1)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        expected = (self.channels, self.image_size, self.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ConfigError(
                f"discriminator expects images of shape (N, {', '.join(map(str, expected))}), "
                f"got {tuple(images.shape)}."
            )
        x = images.mul(2).sub(1)  # [0, 1] -> [-1, 1], the range G's tanh produces
        if self.num_classes:
            maps = _one_hot(labels, self.num_classes, x.shape[0]).to(x.dtype)
            x = torch.cat([x, maps[:, :, None, None].expand(-1, -1, *x.shape[2:])], dim=1)
        return self.net(x).flatten()


def _one_hot(labels: torch.Tensor | None, num_classes: int, n: int) -> torch.Tensor:
    if labels is None or labels.shape != (n,):
        got = "none" if labels is None else f"shape {tuple(labels.shape)}"
        raise ConfigError(f"a conditional net needs labels of shape ({n},), got {got}.")
    return F.one_hot(labels.long(), num_classes)


def _with_labels(z: torch.Tensor, labels: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    if not num_classes:
        return z
    return torch.cat([z, _one_hot(labels, num_classes, z.shape[0]).to(z.dtype)], dim=1)


class DCGANEncoder(nn.Module):
    """images (N, channels, size, size) in [0, 1] -> codes (N, latent_dim): the discriminator's
    convolutions with a last 4x4 valid convolution to ``latent_dim`` channels instead of one
    logit. The encoders of GANomaly (Akcay et al. 2018, Fig. 2: G_E and E) and of f-AnoGAN's
    izi_f (Schlegl et al. 2019, Sec. 2.3, ``tanh=True`` to land in G's [-1, 1] prior).
    """

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        latent_dim: int = 100,
        width: int = 128,
        norm: NormKind = "batch",
        tanh: bool = False,
    ) -> None:
        super().__init__()
        body = DCGANDiscriminator(image_size, channels, width, 0, norm).net[:-1]
        self.net = nn.Sequential(
            *body,
            nn.Conv2d(body[-1][0].out_channels, latent_dim, 4, 1, 0),
            nn.Flatten(),
            *([nn.Tanh()] if tanh else []),
        )
        self.image_size = image_size
        init_normal_(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.mul(2).sub(1))
