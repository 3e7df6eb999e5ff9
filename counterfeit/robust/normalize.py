"""Normalization inside the model, so attack budgets stay in pixel units."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError, DataError


class Normalize(nn.Module):
    """``model((x - mean) / std)``: a model that wants normalized input, taking [0, 1] images.

    Attacks perturb the input of the module they are given. Wrapping a model
    that was trained on normalized images (e.g. ImageNet's mean and std) keeps
    ``x`` in [0, 1] pixel space, so ``eps=8/255`` means 8 grey levels whatever
    the normalization: the same convention as RobustBench and torchattacks'
    ``set_normalization_used``.

    Args:
        model: the classifier that expects normalized input.
        mean, std: per-channel statistics (one value per channel, or one value
            for every channel). ``std`` must be positive.
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        mean, std = list(_floats(mean, "mean")), list(_floats(std, "std"))
        if len(mean) != len(std):
            raise ConfigError(
                f"Normalize: mean has {len(mean)} values but std has {len(std)}; give one "
                "value per channel (or one for all channels) for both."
            )
        if any(s <= 0 for s in std):
            raise ConfigError(f"Normalize: every std must be > 0, got {std}.")
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = self.mean.shape[1]
        if x.ndim != 4 or (channels != 1 and x.shape[1] != channels):
            raise DataError(
                f"Normalize has statistics for {channels} channels but got input of shape "
                f"{tuple(x.shape)}; expected (N, {channels}, H, W)."
            )
        return self.model((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


def parse_normalize(text: str) -> tuple[list[float], list[float]]:
    """Parse ``"MEAN,STD"`` (one channel or all) or ``"M1,...,Mc,S1,...,Sc"`` (per channel)."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ConfigError(
            f"--normalize expects comma-separated numbers MEAN,STD (or C means then C stds), "
            f"got '{text}'."
        ) from None
    if not values or len(values) % 2:
        raise ConfigError(
            f"--normalize expects an even count of numbers: MEAN,STD or C means then C stds "
            f"(e.g. 0.485,0.456,0.406,0.229,0.224,0.225), got {len(values)} in '{text}'."
        )
    half = len(values) // 2
    return values[:half], values[half:]


def _floats(values: Sequence[float] | float, name: str) -> list[float]:
    if isinstance(values, (int, float)):
        return [float(values)]
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ConfigError(f"Normalize: {name} must be numbers, got {values!r}.") from None
    if not out:
        raise ConfigError(f"Normalize: {name} is empty.")
    return out
