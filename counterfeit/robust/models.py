"""Classifiers: the ones the robustness recipes and benchmarks train, and calling any of them.

Attacks and evaluations take any classifier that maps images in [0, 1] (NCHW)
to logits; :func:`checked_logits` runs it and refuses other outputs with a
message that says what to do, and :func:`model_device` says where it lives.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.nets.blocks import output_features


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


def model_device(model: nn.Module) -> torch.device:
    """Where ``model`` lives: its first parameter's device, else its first buffer's, else CPU."""
    if isinstance(model, nn.Module):
        for tensor in (*model.parameters(), *model.buffers()):
            return tensor.device
    return torch.device("cpu")


def checked_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)``, refused unless it is a logits tensor of shape (N, num_classes).

    Raises:
        DataError: the model returned anything else (naming what it returned).
    """
    out = model(x)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != x.shape[0]:
        got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise DataError(
            f"the model must return logits of shape (N, num_classes) = ({x.shape[0]}, K); "
            f"it returned {got}. Wrap it so that forward() returns the logits."
        )
    return out


def logit_margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``z_y - max_{j != y} z_j`` per row: negative once the row is misclassified."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    return true - logits.scatter(1, y[:, None], float("-inf")).amax(1)
