"""The InfoGAN networks for MNIST (Chen et al., NeurIPS 2016, Appendix C.1, Table 1).

* Generator: input (noise, codes) -> FC 1024, BN, ReLU -> FC 7x7x128, BN, ReLU
  -> 4x4 up-conv 64 stride 2, BN, ReLU -> 4x4 up-conv 1 stride 2 -> sigmoid.
* Discriminator body: 4x4 conv 64 stride 2, lReLU -> 4x4 conv 128 stride 2,
  BN, lReLU -> FC 1024, BN, lReLU. D head: FC 1. Q head (shares the body):
  FC 128, BN, lReLU -> FC to the code distributions' parameters.

The lReLU leak is the paper's 0.1 (Appendix C; the authors' code,
``openai/InfoGAN``, defaults to 0.01); weights from N(0, 0.02) as in that code. Their MNIST generator outputs
Bernoulli means (a sigmoid), so images are in [0, 1] with no conversion.
``image_size`` must be a multiple of 4 (28 for MNIST: 7x7 -> 14 -> 28).
"""

from __future__ import annotations

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.nets.blocks import conv_block, init_normal_, linear_block

LEAK = 0.1


def _base(image_size: int) -> int:
    if image_size < 8 or image_size % 4:
        raise ConfigError(
            f"the InfoGAN MNIST nets need an image size that is a multiple of 4 (28 for "
            f"MNIST), got {image_size}."
        )
    return image_size // 4


class InfoGANGenerator(nn.Module):
    """Latent vector (N, in_features) -> images (N, channels, size, size) in [0, 1]."""

    def __init__(self, in_features: int = 74, image_size: int = 28, channels: int = 1) -> None:
        super().__init__()
        base = _base(image_size)
        self.in_features = in_features
        self.base = base
        self.fc = nn.Sequential(
            linear_block(in_features, 1024, "batch", "relu"),
            linear_block(1024, 128 * base * base, "batch", "relu"),
        )
        self.deconv = nn.Sequential(
            conv_block(128, 64, 4, 2, 1, "batch", "relu", transpose=True),
            conv_block(64, channels, 4, 2, 1, "none", "sigmoid", transpose=True),
        )
        init_normal_(self)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        if latent.ndim != 2 or latent.shape[1] != self.in_features:
            raise ConfigError(
                f"generator expects a latent of shape (N, {self.in_features}), "
                f"got {tuple(latent.shape)}."
            )
        h = self.fc(latent).view(-1, 128, self.base, self.base)
        return self.deconv(h)


class InfoGANDiscriminator(nn.Module):
    """images in [0, 1] -> (D logit (N,), Q's code parameters (N, q_features)).

    Args:
        q_features: width of Q's output (categorical logits, then continuous
            means, then continuous log-std when learned).
        leak: the lReLUs' negative slope (the paper's 0.1; the authors' code 0.01).
    """

    def __init__(
        self, q_features: int, image_size: int = 28, channels: int = 1, leak: float = LEAK
    ) -> None:
        super().__init__()
        base = _base(image_size)
        self.shape = (channels, image_size, image_size)
        self.body = nn.Sequential(
            conv_block(channels, 64, 4, 2, 1, "none", "lrelu", slope=leak),
            conv_block(64, 128, 4, 2, 1, "batch", "lrelu", slope=leak),
            nn.Flatten(),
            linear_block(128 * base * base, 1024, "batch", "lrelu", slope=leak),
        )
        self.d_head = nn.Linear(1024, 1)
        self.q_head = nn.Sequential(
            linear_block(1024, 128, "batch", "lrelu", slope=leak), nn.Linear(128, q_features)
        )
        init_normal_(self)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.ndim != 4 or tuple(images.shape[1:]) != self.shape:
            raise ConfigError(
                f"discriminator expects images of shape (N, {', '.join(map(str, self.shape))}), "
                f"got {tuple(images.shape)}."
            )
        h = self.body(images)
        return self.d_head(h).flatten(), self.q_head(h)
