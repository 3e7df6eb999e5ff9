"""BigGAN's generator and discriminator (Brock, Donahue & Simonyan, "Large Scale GAN Training
for High Fidelity Natural Image Synthesis", ICLR 2019, App. B, Fig. 15 and Table 4).

Generator (Fig. 15 a, b): z is split into one chunk per block plus one for the input
(*hierarchical latents*); the first chunk is projected by a linear layer to
``4 * width`` channels at 4x4. Each residual up-block is

    cBN -> ReLU -> upsample x2 -> conv3x3 -> cBN -> ReLU -> conv3x3   (+ upsample -> conv1x1)

where both conditional BatchNorms (:class:`~counterfeit.gan.nets.conditional.
ConditionalBatchNorm2d`) take ``[shared class embedding, this block's z chunk]``. The
output is BN -> ReLU -> conv3x3 -> tanh (mapped to [0, 1], the toolkit's image range).

Discriminator (Fig. 15 c): residual down-blocks (ReLU -> conv3x3 -> ReLU -> conv3x3 ->
avg-pool, with a 1x1 shortcut), the first without the leading ReLU; then ReLU, a sum over
positions, and the projection head (:class:`~counterfeit.gan.nets.conditional.ProjectionHead`).

Every convolution, linear map and embedding is spectrally normalised in both nets; one
self-attention block (:class:`~counterfeit.gan.nets.attention.SelfAttention`) sits at
``attention`` px in each (BigGAN: 64 px for 128 px images). Widths follow the authors' 32 px
(CIFAR) layout for 32 px, ``4 * width`` channels in every block, and Table 4's 128 px
layout (16-16-8-4-2-1 x ``width`` in G) from 64 px up. Weights are orthogonally
initialised, as in the paper (App. B).
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.nets.attention import SelfAttention
from counterfeit.gan.nets.conditional import ConditionalBatchNorm2d, ProjectionHead
from counterfeit.gan.nets.spectral import spectral_norm

SIZES = (32, 64, 128)


def widths(image_size: int, width: int) -> list[int]:
    """G's channels from 4x4 up to ``image_size`` (D uses them in reverse, ending at the top)."""
    if image_size not in SIZES:
        raise ConfigError(
            f"BigGAN nets take square images of {', '.join(map(str, SIZES))} px, got "
            f"{image_size}. Pad or resize the data (28 px digits: pad 2 px per side to 32)."
        )
    blocks = int(math.log2(image_size)) - 2
    if image_size == 32:
        return [4 * width] * (blocks + 1)
    return [width * m for m in (16, 16, 8, 4, 2, 1)[: blocks + 1]]


def _sn_conv(in_channels: int, out_channels: int, kernel: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2))


def _orthogonal_init_(module: nn.Module) -> None:
    """Orthogonal initialisation of every weight (the raw one under spectral norm)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear, nn.Embedding)):
            parametrized = parametrize.is_parametrized(layer, "weight")
            nn.init.orthogonal_(
                layer.parametrizations.weight.original if parametrized else layer.weight
            )


class GeneratorBlock(nn.Module):
    """One residual up-block of G, conditioned on ``condition`` (N, condition_features)."""

    def __init__(self, in_channels: int, out_channels: int, condition_features: int) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(in_channels, condition_features)
        self.conv1 = _sn_conv(in_channels, out_channels, 3)
        self.bn2 = ConditionalBatchNorm2d(out_channels, condition_features)
        self.conv2 = _sn_conv(out_channels, out_channels, 3)
        self.shortcut = _sn_conv(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, condition)), scale_factor=2.0)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), condition)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0))


class BigGANGenerator(nn.Module):
    """(z (N, latent_dim), labels (N,)) -> images (N, channels, size, size) in [0, 1].

    Args:
        image_size: 32, 64 or 128.
        channels: image channels.
        num_classes: classes of the shared embedding.
        latent_dim: z's size, split evenly over the input and every block (it must divide).
        width: the channel multiplier ``ch`` of the paper.
        shared_dim: the shared class embedding's size (128 in the paper).
        attention: the resolution of the self-attention block; None: none.
    """

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        num_classes: int = 10,
        latent_dim: int = 128,
        width: int = 64,
        shared_dim: int = 128,
        attention: int | None = None,
    ) -> None:
        super().__init__()
        sizes = widths(image_size, width)
        slots = len(sizes)  # the input chunk and one per block
        if latent_dim % slots:
            raise ConfigError(
                f"BigGAN splits z into {slots} chunks at {image_size} px: latent_dim "
                f"{latent_dim} must be a multiple of {slots}."
            )
        self.image_size, self.channels, self.num_classes = image_size, channels, num_classes
        self.latent_dim, self.chunk = latent_dim, latent_dim // slots
        self.shared = nn.Embedding(num_classes, shared_dim)  # not spectrally normalised (App. B)
        self.project = spectral_norm(nn.Linear(self.chunk, sizes[0] * 16))
        condition = shared_dim + self.chunk
        self.blocks = nn.ModuleList(
            GeneratorBlock(a, b, condition) for a, b in itertools.pairwise(sizes)
        )
        self.attention_after = _attention_index(image_size, attention)
        self.attention = (
            SelfAttention(sizes[self.attention_after + 1])
            if self.attention_after is not None
            else None
        )
        self.output = nn.Sequential(
            nn.BatchNorm2d(sizes[-1]), nn.ReLU(), _sn_conv(sizes[-1], channels, 3)
        )
        _orthogonal_init_(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        chunks = z.split(self.chunk, dim=1)
        shared = self.shared(labels)
        h = self.project(chunks[0]).view(len(z), -1, 4, 4)
        for index, (block, chunk) in enumerate(zip(self.blocks, chunks[1:])):
            h = block(h, torch.cat([shared, chunk], dim=1))
            if self.attention is not None and index == self.attention_after:
                h = self.attention(h)
        return torch.tanh(self.output(h)).add(1).div(2)


class DiscriminatorBlock(nn.Module):
    """One residual down-block of D (``preactivation``: a ReLU before the first conv)."""

    def __init__(
        self, in_channels: int, out_channels: int, downsample: bool, preactivation: bool
    ) -> None:
        super().__init__()
        self.conv1 = _sn_conv(in_channels, out_channels, 3)
        self.conv2 = _sn_conv(out_channels, out_channels, 3)
        self.shortcut = (
            _sn_conv(in_channels, out_channels, 1)
            if in_channels != out_channels or downsample
            else None
        )
        self.downsample, self.preactivation = downsample, preactivation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(F.relu(x) if self.preactivation else x)))
        skip = x
        if self.preactivation and self.shortcut is not None:  # learnable shortcut, then pool
            skip = self.shortcut(skip)
        if self.downsample:
            h, skip = F.avg_pool2d(h, 2), F.avg_pool2d(skip, 2)
        if not self.preactivation and self.shortcut is not None:  # first block: pool, then conv
            skip = self.shortcut(skip)
        return h + skip


class BigGANDiscriminator(nn.Module):
    """(images (N, channels, size, size) in [0, 1], labels (N,)) -> logits (N,).

    Args mirror :class:`BigGANGenerator`. At 32 px the authors' layout keeps ``4 * width``
    channels and pools twice (to 8x8), then two blocks at 8x8; ``attention`` is the
    resolution of the block whose output D attends to.
    """

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 3,
        num_classes: int = 10,
        width: int = 64,
        attention: int | None = None,
    ) -> None:
        super().__init__()
        blocks = len(widths(image_size, width)) - 1
        if image_size == 32:  # the authors' CIFAR layout
            outs, down = [4 * width] * 4, [True, True, False, False]
        else:  # Table 4: 1-2-4-8-16(-16) x width, the last block without pooling
            outs = [width * m for m in (1, 2, 4, 8, 16)[:blocks]] + [16 * width]
            down = [True] * blocks + [False]
        ins = [channels, *outs[:-1]]
        self.image_size, self.channels, self.num_classes = image_size, channels, num_classes
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(a, b, d, preactivation=i > 0)
            for i, (a, b, d) in enumerate(zip(ins, outs, down))
        )
        resolution, self.attention_after = image_size, None
        for index, d in enumerate(down):
            resolution //= 2 if d else 1
            if attention is not None and resolution == attention and self.attention_after is None:
                self.attention_after = index
        self.attention = (
            SelfAttention(outs[self.attention_after]) if self.attention_after is not None else None
        )
        self.head = ProjectionHead(outs[-1], num_classes)
        _orthogonal_init_(self)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """D's pooled features (N, F): after the blocks, a ReLU and a sum over positions."""
        h = images * 2 - 1
        for index, block in enumerate(self.blocks):
            h = block(h)
            if self.attention is not None and index == self.attention_after:
                h = self.attention(h)
        return F.relu(h).sum(dim=(2, 3))

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images), labels)


def _attention_index(image_size: int, attention: int | None) -> int | None:
    """The block after which G attends: the one whose output is ``attention`` px."""
    if attention is None:
        return None
    resolution, index = 4, -1
    while resolution < attention:
        resolution, index = resolution * 2, index + 1
    if resolution != attention or attention > image_size or index < 0:
        raise ConfigError(
            f"attention at {attention} px: choose a block output of G between 8 and {image_size} px."
        )
    return index
