"""Training callbacks for generative models: sample grids as training goes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from counterfeit.gan.plots import save_image_grid
from counterfeit.gan.train import Callback, Trainer

GridFn = Callable[[nn.Module], torch.Tensor]


class SampleGridCallback(Callback):
    """Every ``every`` steps and at the end, draw image grids from the method and save them.

    Args:
        grids: ``name -> (fn(method) -> images in [0, 1], images per row)``, e.g.
            ``{"samples": (lambda m: m.fixed_samples(), 8)}``. Run in eval mode, no grad.
        every: steps between grids (0: only at the end).
        out_dir: folder for ``NAME_stepNNNNNN.png`` files (None: no files).
        tracker: a :class:`gan.Tracker`; grids are logged under its ``samples/`` artifacts.
    """

    def __init__(
        self,
        grids: Mapping[str, tuple[GridFn, int]],
        every: int = 0,
        out_dir: str | Path | None = None,
        tracker: Any = None,
    ) -> None:
        self.grids = dict(grids)
        self.every = every
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.tracker = tracker
        self.written: list[Path] = []

    def _write(self, trainer: Trainer, step: int) -> None:
        method = trainer.method
        was_training = method.training
        method.eval()
        try:
            with torch.no_grad():
                for name, (fn, nrow) in self.grids.items():
                    images = fn(method).float().cpu()
                    filename = f"{name}_step{step:06d}.png"
                    if self.out_dir is not None:
                        self.written.append(save_image_grid(images, self.out_dir / filename, nrow))
                    if self.tracker is not None:
                        self.tracker.log_image_grid(images, filename, "samples", nrow)
        finally:
            method.train(was_training)

    def on_step(self, trainer: Trainer, step: int) -> None:
        self._write(trainer, step)

    def on_end(self, trainer: Trainer) -> None:
        self._write(trainer, trainer.step)
