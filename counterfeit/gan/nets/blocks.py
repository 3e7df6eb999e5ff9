"""Small building blocks shared by every network family."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.runtime import model_mode


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
    with model_mode(module, False), torch.no_grad():
        out = module(torch.zeros(1, *in_shape))
    return int(out.flatten(1).shape[1])


NormKind = Literal["batch", "instance", "layer", "none"]
ActKind = Literal["relu", "lrelu", "tanh", "sigmoid", "none"]


def norm_layer(kind: NormKind, channels: int, dims: int = 2) -> nn.Module:
    """A normalisation layer by name: ``batch`` (BatchNorm), ``instance`` (InstanceNorm
    without affine parameters or running statistics, as in the CycleGAN/pix2pix code),
    ``layer`` (LayerNorm over all of a sample's features: GroupNorm with one group for
    images), ``none`` (identity)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)
    if kind == "instance" and dims == 2:
        return nn.InstanceNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels) if dims == 2 else nn.LayerNorm(channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(
        f"unknown normalisation '{kind}' for {dims}-d features; use batch, "
        + ("instance, " if dims == 2 else "")
        + "layer or none."
    )


def activation(kind: ActKind, slope: float = 0.2) -> nn.Module:
    """An activation by name; ``lrelu`` is LeakyReLU with negative ``slope``."""
    layers: dict[str, nn.Module] = {
        "relu": nn.ReLU(inplace=True),
        "lrelu": nn.LeakyReLU(slope, inplace=True),
        "tanh": nn.Tanh(),
        "sigmoid": nn.Sigmoid(),
        "none": nn.Identity(),
    }
    if kind not in layers:
        raise ConfigError(f"unknown activation '{kind}'; use one of {', '.join(layers)}.")
    return layers[kind]


def conv_block(
    in_channels: int,
    out_channels: int,
    kernel: int = 4,
    stride: int = 2,
    padding: int = 1,
    norm: NormKind = "batch",
    act: ActKind = "relu",
    transpose: bool = False,
    slope: float = 0.2,
) -> nn.Sequential:
    """Conv (or transposed conv) -> norm -> activation; no conv bias when a norm with its own
    shift follows (batch, layer; InstanceNorm here has none, so the conv keeps its bias)."""
    conv_type = nn.ConvTranspose2d if transpose else nn.Conv2d
    bias = norm in ("none", "instance")
    conv = conv_type(in_channels, out_channels, kernel, stride, padding, bias=bias)
    return nn.Sequential(conv, norm_layer(norm, out_channels), activation(act, slope))


def linear_block(
    in_features: int, out_features: int, norm: NormKind = "batch", act: ActKind = "relu", slope=0.2
) -> nn.Sequential:
    """Linear -> norm -> activation; no bias when a norm follows."""
    linear = nn.Linear(in_features, out_features, bias=norm == "none")
    return nn.Sequential(linear, norm_layer(norm, out_features, dims=1), activation(act, slope))


def init_normal_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """DCGAN initialisation (Radford et al. 2016, Sec. 4), in place.

    Conv, transposed-conv and linear weights from N(0, ``std``), biases 0;
    normalisation scales from N(1, ``std``), shifts 0 (as in the reference
    implementation's ``weights_init``). Returns ``module``.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif (
            isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm))
            and m.weight is not None
        ):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module
