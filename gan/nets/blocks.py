"""Small building blocks shared by every network family."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def mlp(
    in_features: int, hidden: Sequence[int], out_features: int, dropout: float = 0.0
) -> nn.Sequential:
    """Linear-ReLU(-Dropout) layers of widths ``hidden``, then a final Linear."""
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


class ChannelShift(nn.Module):
    """Subtract a fixed per-channel mean (a buffer, so it travels with checkpoints).

    Keeps preprocessing inside the model: callers always pass images in [0, 1].
    """

    def __init__(self, mean: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer(
            "mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.mean


def output_features(module: nn.Module, in_shape: tuple[int, int, int]) -> int:
    """Number of features ``module`` produces per image of shape (C, H, W)."""
    was_training = module.training
    module.eval()
    with torch.no_grad():
        out = module(torch.zeros(1, *in_shape))
    module.train(was_training)
    return int(out.flatten(1).shape[1])
