"""Learning-rate schedules the methods share, stepped once per training step by the Trainer."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR

from counterfeit.gan.errors import ConfigError


def linear_decay(optimizer: torch.optim.Optimizer, total_steps: int, decay_start: int) -> LambdaLR:
    """Constant learning rate for ``decay_start`` steps, then linear decay to 0 at
    ``total_steps`` (CycleGAN, Zhu et al. 2017, Sec. 4: 100 epochs constant, then 100
    decaying; pix2pix's code uses the same policy). Counted in steps, not epochs."""
    if not 0 <= decay_start <= total_steps:
        raise ConfigError(
            f"the learning-rate decay must start within the run: decay_start={decay_start}, "
            f"total_steps={total_steps}."
        )
    span = total_steps - decay_start

    def factor(step: int) -> float:
        if step < decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start + 1) / (span + 1))

    return LambdaLR(optimizer, factor)
