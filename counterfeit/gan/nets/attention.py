"""Self-attention for convolutional GANs (Zhang, Goodfellow, Metaxas & Odena, "Self-Attention
Generative Adversarial Networks", ICML 2019, Sec. 3), as BigGAN uses it (Brock, Donahue &
Simonyan, ICLR 2019, App. B: one block, at 64 x 64 in G and D for 128 px images).

Each position attends to every position of a 2x2 max-pooled map (BigGAN's memory saving):

    beta = softmax(theta(x)^T phi(x))           queries at every pixel, keys pooled
    o    = v(g(x) beta^T)                        values pooled, projected back to C channels
    y    = gamma * o + x                         gamma starts at 0: the block begins as identity

with theta and phi to C/8 channels, g to C/2 (all 1x1 convolutions without bias, spectrally
normalised when ``spectral`` is set, as in both papers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.errors import ShapeError
from counterfeit.gan.nets.spectral import spectral_norm


class SelfAttention(nn.Module):
    """SAGAN's self-attention block over a (N, C, H, W) map; C must be divisible by 8."""

    def __init__(self, channels: int, spectral: bool = True) -> None:
        super().__init__()
        if channels % 8:
            raise ShapeError(f"self-attention needs channels divisible by 8, got {channels}.")
        self.channels = channels

        def conv(out_channels: int, in_channels: int = channels) -> nn.Module:
            layer = nn.Conv2d(in_channels, out_channels, 1, bias=False)
            return spectral_norm(layer) if spectral else layer

        self.theta, self.phi = conv(channels // 8), conv(channels // 8)
        self.g, self.out = conv(channels // 2), conv(channels, channels // 2)
        self.gamma = nn.Parameter(torch.zeros(()))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The attention map beta: (N, H*W, H*W/4), each row a distribution over pooled keys."""
        height, width = x.shape[-2:]
        if height % 2 or width % 2:
            raise ShapeError(f"self-attention pools 2x2: even sides needed, got {height}x{width}.")
        queries = self.theta(x).flatten(2)  # (N, C/8, HW)
        keys = F.max_pool2d(self.phi(x), 2).flatten(2)  # (N, C/8, HW/4)
        return torch.softmax(queries.transpose(1, 2) @ keys, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, height, width = x.shape
        beta = self.attention(x)
        values = F.max_pool2d(self.g(x), 2).flatten(2)  # (N, C/2, HW/4)
        attended = (values @ beta.transpose(1, 2)).view(n, self.channels // 2, height, width)
        return self.gamma * self.out(attended) + x
