"""The two detectors of generated images: a small CNN on the pixels (after Wang et al.,
"CNN-generated images are surprisingly easy to spot... for now", CVPR 2020, at digit scale)
and a linear classifier on the log spectrum (after Frank et al., ICML 2020, who found a
linear model on the spectrum enough). Both map images in [0, 1] (N, C, H, W) to two logits,
``[real, fake]``, so every attack and report of :mod:`counterfeit.robust` applies to them
as to any classifier.

Deviations: Wang et al. fine-tune an ImageNet ResNet-50 on 256 px crops; the CNN here is
four strided convolutions for 28-64 px images (no pretrained weights on this scale).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError, ShapeError
from counterfeit.gan.runtime import model_mode
from counterfeit.robust.counterfeits.spectrum import log_spectrum


def _check(images: torch.Tensor, shape: tuple[int, int, int], name: str) -> None:
    if images.ndim != 4 or tuple(images.shape[1:]) != shape:
        raise ShapeError(
            f"{name} was built for images of shape {shape} (C, H, W); got {tuple(images.shape)}."
        )


class ConvDetector(nn.Module):
    """Pixels -> 2 logits: four 3 x 3 convolutions (stride 2 from the second), BatchNorm,
    leaky ReLU, global average pooling, a linear head."""

    def __init__(self, channels: int = 1, size: int = 32, width: int = 32) -> None:
        super().__init__()
        self.shape = (channels, size, size)
        layers: list[nn.Module] = []
        widths = [channels, width, width, 2 * width, 4 * width]
        for i, (cin, cout) in enumerate(itertools.pairwise(widths)):
            layers += [
                nn.Conv2d(cin, cout, 3, 1 if i == 0 else 2, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.LeakyReLU(0.2),
            ]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(widths[-1], 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check(images, self.shape, "ConvDetector")
        return self.head(self.features(images * 2 - 1))


class SpectrumDetector(nn.Module):
    """The log spectrum (:func:`log_spectrum`) -> 2 logits by one linear layer. The spectrum
    is standardised per frequency with statistics kept like BatchNorm's (no affine part), so
    the linear layer sees comparable inputs at every frequency."""

    def __init__(self, channels: int = 1, size: int = 32) -> None:
        super().__init__()
        self.shape = (channels, size, size)
        features = channels * size * size
        self.standardise = nn.BatchNorm1d(features, affine=False)
        self.head = nn.Linear(features, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check(images, self.shape, "SpectrumDetector")
        return self.head(self.standardise(log_spectrum(images).flatten(1)))


DETECTOR_NETS: dict[str, type[nn.Module]] = {"cnn": ConvDetector, "spectrum": SpectrumDetector}


def build_detector_net(kind: str, channels: int, size: int) -> nn.Module:
    """``cnn`` or ``spectrum`` for images of ``channels`` x ``size`` x ``size``."""
    if kind not in DETECTOR_NETS:
        raise ConfigError(f"unknown detector '{kind}'; use one of {', '.join(DETECTOR_NETS)}.")
    return DETECTOR_NETS[kind](channels, size)


def fake_probability(net: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """P(fake) of each image (N,), in eval mode and without gradients, on the CPU."""
    device = next(net.parameters()).device
    with model_mode(net, False), torch.no_grad():
        return torch.cat(
            [net(b.to(device)).softmax(1)[:, 1].cpu() for b in images.split(batch_size)]
        )
