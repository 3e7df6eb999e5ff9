"""Class conditioning for BigGAN-style networks: conditional BatchNorm in G and the
projection head of D.

* :class:`ConditionalBatchNorm2d` (de Vries et al., NeurIPS 2017; BigGAN, Brock et al., ICLR
  2019, Sec. 3 and App. B): BatchNorm without its own affine parameters, then a per-sample
  gain ``1 + W_g c`` and bias ``W_b c`` from a condition vector ``c``. In BigGAN ``c`` is the
  shared class embedding concatenated with this block's chunk of z (hierarchical latents).
* :class:`ProjectionHead` (Miyato & Koyama, "cGANs with Projection Discriminator", ICLR
  2018, Eq. 3): ``D(x, y) = psi(h) + <embed(y), h>`` with ``h`` D's pooled features.
"""

from __future__ import annotations

import torch
from torch import nn

from counterfeit.gan.nets.spectral import spectral_norm


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm2d whose gain and bias are linear maps of a condition vector per sample."""

    def __init__(self, channels: int, condition_features: int, spectral: bool = True) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain, self.bias = (
            spectral_norm(nn.Linear(condition_features, channels, bias=False))
            if spectral
            else nn.Linear(condition_features, channels, bias=False)
            for _ in range(2)
        )

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        gain = 1 + self.gain(condition)[:, :, None, None]
        bias = self.bias(condition)[:, :, None, None]
        return self.norm(x) * gain + bias


class ProjectionHead(nn.Module):
    """D's output from pooled features ``h`` (N, F) and labels ``y``: ``psi(h) + <e_y, h>``."""

    def __init__(self, features: int, num_classes: int, spectral: bool = True) -> None:
        super().__init__()
        linear, embedding = nn.Linear(features, 1), nn.Embedding(num_classes, features)
        self.linear = spectral_norm(linear) if spectral else linear
        self.embedding = spectral_norm(embedding) if spectral else embedding

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.linear(h).squeeze(1) + (self.embedding(y) * h).sum(1)
