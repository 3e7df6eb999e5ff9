"""Classifiers the robustness recipes and benchmarks train."""

from __future__ import annotations

from collections.abc import Callable

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.nets.blocks import output_features
from torch import nn


def digits_cnn(in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> nn.Sequential:
    """The MNIST network of Wong, Rice & Kolter, "Fast is better than free", ICLR 2020.

    conv 4x4x16 stride 2, ReLU; conv 4x4x32 stride 2, ReLU; fc100, ReLU; fc
    ``num_classes``. It takes images in [0, 1] with no normalization (as in
    their code), so attack budgets are pixel budgets.
    """
    features = nn.Sequential(
        nn.Conv2d(in_channels, 16, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
    )
    width = output_features(features, (in_channels, image_size, image_size))
    return nn.Sequential(*features, nn.Linear(width, 100), nn.ReLU(), nn.Linear(100, num_classes))


MODELS: dict[str, Callable[[int, int, int], nn.Module]] = {"digits-cnn": digits_cnn}


def build_model(name: str, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    """Build a registered classifier by name."""
    if name not in MODELS:
        raise ConfigError(f"unknown model '{name}'; known: {', '.join(MODELS)}.")
    return MODELS[name](in_channels, num_classes, image_size)
