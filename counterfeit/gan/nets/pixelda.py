"""The networks of PixelDA.

Bousmalis, Silberman, Dohan, Erhan, Krishnan, "Unsupervised Pixel-Level Domain
Adaptation with Generative Adversarial Networks", CVPR 2017, Sec. 3 and the
authors' released code (tensorflow/models, research/domain_adaptation/
pixel_domain_adaptation: ``resnet_generator``, ``predict_domain``,
``mnist_classifier``; defaults from its ``hparams.py``).

All three networks work on images in [-1, 1] (the released code's convention);
:class:`adapt.PixelDA` converts from counterfeit's [0, 1] at its boundary.
TensorFlow's batch-norm epsilon (1e-3) and decay (0.9, i.e. momentum 0.1) are kept.
"""

from __future__ import annotations

import torch
from torch import nn

from counterfeit.gan.nets.blocks import conv_block, init_normal_

BN_EPS = 1e-3


def _tf_batchnorm(module: nn.Module) -> nn.Module:
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.eps = BN_EPS
    return module


class NoiseChannel(nn.Module):
    """Projects z (B, noise_dims) to one extra H x W input channel: FC -> BN -> ReLU.

    The released ``project_latent_vars`` with ``proj_shape = [H, W, 1]``.
    """

    def __init__(self, noise_dims: int, size: int) -> None:
        super().__init__()
        self.size = size
        self.project = nn.Sequential(
            nn.Linear(noise_dims, size * size, bias=False),
            nn.BatchNorm1d(size * size),
            nn.ReLU(inplace=True),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.project(z).view(-1, 1, self.size, self.size)


class ResidualBlock(nn.Module):
    """conv3x3-BN-ReLU, conv3x3-BN, plus the input (the released ``resnet_block``)."""

    def __init__(self, filters: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_block(filters, filters, 3, 1, 1, norm="batch", act="relu"),
            conv_block(filters, filters, 3, 1, 1, norm="batch", act="none"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PixelDAGenerator(nn.Module):
    """G(x, z): a source image and noise in, an adapted image out (same size), tanh.

    Args:
        in_channels, out_channels: source and target image channels.
        size: image height and width.
        noise_dims: length of z ~ U(-1, 1) (paper: 10).
        filters: width of every conv (paper: 64).
        blocks: residual blocks (paper: 6).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        size: int,
        noise_dims: int = 10,
        filters: int = 64,
        blocks: int = 6,
    ) -> None:
        super().__init__()
        self.noise_dims = noise_dims
        self.noise = NoiseChannel(noise_dims, size) if noise_dims else None
        stem_in = in_channels + (1 if noise_dims else 0)
        self.body = nn.Sequential(
            conv_block(stem_in, filters, 3, 1, 1, norm="none", act="relu"),
            *[ResidualBlock(filters) for _ in range(blocks)],
            conv_block(filters, out_channels, 1, 1, 0, norm="none", act="tanh"),
        )
        _tf_batchnorm(init_normal_(self))

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if self.noise is not None:
            if z is None:
                raise ValueError("this generator takes noise: pass z of shape (B, noise_dims)")
            x = torch.cat([x, self.noise(z)], dim=1)
        return self.body(x)

    def sample_noise(
        self, n: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z ~ U(-1, 1)^(n x noise_dims), as the released code draws it."""
        return torch.rand(n, self.noise_dims, device=device, generator=generator) * 2 - 1


class GaussianNoise(nn.Module):
    """Adds N(0, sigma^2) noise to its input while training."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.sigma > 0:
            return x + torch.randn_like(x) * self.sigma
        return x


class PixelDADiscriminator(nn.Module):
    """D(x): logit that x is a real target image (the released ``predict_domain``).

    3x3 convs with LeakyReLU 0.2; the first has stride 1 and no batch norm,
    then stride-2 convs with batch norm, filters doubling, until the feature
    map is at most 4x4; after each conv dropout (keep 0.9) and Gaussian noise
    (sigma 0.2); a linear logit on top.
    """

    def __init__(
        self,
        in_channels: int,
        size: int,
        filters: int = 64,
        first_stride: int = 1,
        noise_sigma: float = 0.2,
        dropout: float = 0.1,
        final_size: int = 4,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            conv_block(in_channels, filters, 3, first_stride, 1, norm="none", act="lrelu"),
            nn.Dropout(dropout),
            GaussianNoise(noise_sigma),
        ]
        width, current = filters, -(-size // first_stride)
        while current > final_size:
            layers += [
                conv_block(width, width * 2, 3, 2, 1, norm="batch", act="lrelu"),
                nn.Dropout(dropout),
                GaussianNoise(noise_sigma),
            ]
            width *= 2
            current = -(-current // 2)
        layers += [nn.Flatten(), nn.Linear(width * current * current, 1)]
        self.net = nn.Sequential(*layers)
        _tf_batchnorm(init_normal_(self))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


class PixelDATaskClassifier(nn.Module):
    """T: the MNIST task tower of the released code (Ganin et al.'s network, SAME padding).

    The first conv (5x5x32 + max-pool) is *private*: one copy for source
    images and one for adapted images, which is also the copy used for real
    target images; the rest (5x5x48 conv, pool, fc100, fc100, fc-classes) is shared.
    """

    def __init__(self, in_channels: int, size: int, num_classes: int = 10) -> None:
        super().__init__()

        def private() -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(in_channels, 32, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2)
            )

        self.source_private = private()
        self.adapted_private = private()
        reduced = size // 4
        self.shared = nn.Sequential(
            nn.Conv2d(32, 48, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Flatten(),
            nn.Linear(48 * reduced * reduced, 100),
            nn.ReLU(inplace=True),
            nn.Linear(100, 100),
            nn.ReLU(inplace=True),
            nn.Linear(100, num_classes),
        )
        init_normal_(self)

    def forward(self, x: torch.Tensor, source: bool = False) -> torch.Tensor:
        """Logits; ``source=True`` uses the source-private first layer."""
        private = self.source_private if source else self.adapted_private
        return self.shared(private(x))
