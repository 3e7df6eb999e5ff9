"""Fixtures of the training-engine tests: a toy method that uses every piece of state."""

from __future__ import annotations

import signal

import torch
from torch import nn

from counterfeit.gan import Callback, TrainerConfig, TrainingMethod
from counterfeit.gan.data import ImageTensors, InfiniteLoader


class Regression(TrainingMethod):
    """A toy method that uses every piece of state: dropout RNG, momentum, a scheduler."""

    def __init__(self, nan_at: int | None = None):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Dropout(0.3), nn.Linear(8, 1))
        self.nan_at = nan_at

    def configure_optimizers(self):
        return {"net": torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)}

    def configure_schedulers(self, optimizers, total_steps):
        return {"net": torch.optim.lr_scheduler.StepLR(optimizers["net"], step_size=4, gamma=0.5)}

    def train_step(self, batch, ctx):
        x, y = batch
        opt = ctx.optimizers["net"]
        with ctx.autocast():
            loss = (self.net(x).squeeze(1) - y.float()).pow(2).mean()
        if self.nan_at is not None and ctx.step == self.nan_at:
            loss = loss * float("nan")
        opt.zero_grad(set_to_none=True)
        ctx.backward(loss)
        ctx.optimizer_step(opt)
        return {"loss": loss.detach(), "noise": torch.rand(())}


def toy_data(seed: int = 0) -> InfiniteLoader:
    """40 random 1x4x4 images with labels 0-2, in batches of 8, shuffled by ``seed``."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 1, 4, 4), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 3, (40,), generator=g)
    return InfiniteLoader(ImageTensors(images, labels, "toy"), batch_size=8, seed=seed)


def toy_config(**kw) -> TrainerConfig:
    """20 steps, log every 3, checkpoint every 5, seed 3, no progress; ``kw`` overrides."""
    base = dict(max_steps=20, progress=False, log_every=3, checkpoint_every=5, seed=3)
    base.update(kw)
    return TrainerConfig(**base)


class InterruptAt(Callback):
    """Sends this process a real SIGINT (Ctrl-C) at one step."""

    def __init__(self, step: int) -> None:
        self.every = step
        self.sent = False

    def on_step(self, trainer, step):
        if not self.sent:
            self.sent = True
            signal.raise_signal(signal.SIGINT)
