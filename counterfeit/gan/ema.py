"""Exponential moving average of a network's weights.

Sampling from a running average of the generator's weights rather than its
last iterate gives steadier, usually better samples (Karras et al. 2018,
"Progressive Growing of GANs"; Yazici et al. 2019, "The Unusual Effectiveness
of Averaging in GAN Training"). :class:`EMA` is an ``nn.Module`` holding the
averaged copy, so a method that registers it is checkpointed with it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError


class EMA(nn.Module):
    """An averaged copy of ``module``: ``avg <- d * avg + (1 - d) * weights`` per update.

    The decay warms up as ``d_t = min(decay, (1 + t) / (10 + t))`` over the first
    updates (TensorFlow's ``ExponentialMovingAverage(num_updates=t)``), so short
    runs are not dominated by the random initial weights. Buffers (BatchNorm
    running statistics) are copied, not averaged. The copy is kept in eval
    mode and never receives gradients.

    Args:
        module: the network to track (its current weights start the average).
        decay: the target decay d in [0, 1).
    """

    def __init__(self, module: nn.Module, decay: float = 0.999) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ConfigError(f"EMA decay must be in [0, 1), got {decay}.")
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def train(self, mode: bool = True) -> EMA:
        """The averaged copy stays in eval mode."""
        super().train(mode)
        self.module.eval()
        return self

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Move the average towards ``module``'s current weights."""
        t = float(self.updates)
        decay = min(self.decay, (1.0 + t) / (10.0 + t))
        averaged = list(self.module.parameters())
        current = [p.detach() for p in module.parameters()]
        if len(averaged) != len(current):
            raise ConfigError("EMA.update was given a module that is not the tracked one.")
        torch._foreach_lerp_(averaged, current, 1.0 - decay)
        for mine, theirs in zip(self.module.buffers(), module.buffers()):
            mine.copy_(theirs)
        self.updates += 1

    def forward(self, *args, **kwargs):
        """Run the averaged copy."""
        return self.module(*args, **kwargs)


def sampling_network(network: nn.Module, average: EMA | None, use_average: bool) -> nn.Module:
    """The network to sample from: the weight average when asked for and kept, else the last
    iterate."""
    return average.module if use_average and average is not None else network
