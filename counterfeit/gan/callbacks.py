"""Training callbacks: periodic evaluation, early stopping on a collapse, sample grids.

A :class:`Callback` runs on rank 0 every ``every`` steps of
:meth:`gan.train.Trainer.fit` and once at its end; what it returns is logged and
printed. What it remembers between steps (its ``state_dict``) is part of the
Trainer's checkpoint, so a resumed run decides as an uninterrupted one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.method import TrainingMethod
from counterfeit.gan.plots import save_image_grid
from counterfeit.gan.runtime import model_mode


class TrainerView(Protocol):
    """What a callback sees of :class:`~counterfeit.gan.train.Trainer` (which drives it)."""

    method: TrainingMethod
    step: int

    def request_stop(self, reason: str, final: bool = True) -> None: ...


GridFn = Callable[[nn.Module], torch.Tensor]


class Callback:
    """Hook into training. ``on_step`` runs on rank 0 every ``every`` steps (0: never).

    Return a dict of scalars to have them logged and printed, or None. A callback that
    remembers something between steps returns it from :meth:`state_dict` (tensors and
    plain values) and takes it back in :meth:`load_state_dict`.
    """

    every: int = 0

    def state_dict(self) -> dict[str, Any]:
        """What this callback remembers between steps, for the Trainer's checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state_dict` returned (on resume)."""

    def on_step(self, trainer: TrainerView, step: int) -> dict[str, float] | None:
        return None

    def on_end(self, trainer: TrainerView) -> dict[str, float] | None:
        return None


class EvalCallback(Callback):
    """Periodic evaluation: ``fn(method) -> {name: value}``, run in eval mode and no_grad."""

    def __init__(
        self,
        fn: Callable[[TrainingMethod], dict[str, float]],
        every: int,
        prefix: str = "eval/",
        at_end: bool = True,
    ) -> None:
        self.fn = fn
        self.every = every
        self.prefix = prefix
        self.at_end = at_end

    def _run(self, trainer: TrainerView) -> dict[str, float]:
        method = trainer.method
        with model_mode(method, False), torch.no_grad():
            values = self.fn(method)
        return {f"{self.prefix}{k}": float(v) for k, v in values.items()}

    def on_step(self, trainer: TrainerView, step: int) -> dict[str, float] | None:
        return self._run(trainer)

    def on_end(self, trainer: TrainerView) -> dict[str, float] | None:
        return self._run(trainer) if self.at_end else None


class CollapseStop(Callback):
    """Stop when a monitored score collapses, keeping the weights from before the fall.

    Every ``every`` steps, :meth:`measure` (``score(method)``, higher is better, run in
    eval mode without gradients) is compared with the previous check's. When it falls
    by more than ``drop``, the method's weights of that previous check are restored and
    training stops (``TrainResult.stopped_early`` says when and why). Otherwise the
    weights are kept in memory as the new fallback. This is Wong et al. 2020's early stop for
    catastrophic overfitting (:class:`robust.CatastrophicOverfittingStop`), applied
    to any score: for DANN, source validation accuracy, which needs no target label
    and falls to chance when the adversarial game collapses.

    Its state (the last score, its step and the weights then) is part of the Trainer's
    checkpoint, so a resumed run compares its next check with the same baseline as an
    uninterrupted run.

    Args:
        score: ``fn(method) -> float``, higher is better (subclasses may override
            :meth:`measure` instead and pass None).
        every: check interval in steps (>= 1).
        drop: the fall between two checks that counts as a collapse.
        name: the metric key the score is logged under (None: not logged, e.g. when an
            :class:`EvalCallback` already logs the same value).
        what: how the stop message names the score.
    """

    reason = "collapse"

    def __init__(
        self,
        score: Callable[[TrainingMethod], float] | None,
        every: int,
        *,
        drop: float = 0.2,
        name: str | None = "collapse/score",
        what: str = "the monitored score",
    ) -> None:
        if every < 1:
            raise ConfigError(f"every must be >= 1, got {every}.")
        if drop <= 0:
            raise ConfigError(f"drop must be > 0, got {drop}.")
        if score is None and type(self).measure is CollapseStop.measure:
            raise ConfigError("CollapseStop needs a score function: score(method) -> float.")
        self.score = score
        self.every = every
        self.drop = drop
        self.name = name
        self.what = what
        self.previous: float | None = None
        self.saved_step: int | None = None
        self._saved_state: dict[str, torch.Tensor] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {
            "previous": self.previous,
            "saved_step": self.saved_step,
            "weights": self._saved_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.previous = state["previous"]
        self.saved_step = state["saved_step"]
        self._saved_state = state["weights"]

    def measure(self, method: TrainingMethod) -> float:
        """``score(method)`` in eval mode and without gradients."""
        with model_mode(method, False), torch.no_grad():
            return float(self.score(method))  # type: ignore[misc]

    def on_step(self, trainer: TrainerView, step: int) -> dict[str, float] | None:
        method = trainer.method
        value = self.measure(method)
        if self.previous is not None and value < self.previous - self.drop:
            method.load_state_dict(self._saved_state)
            trainer.request_stop(
                f"{self.reason} at step {step}: {self.what} fell from {self.previous:.3f} to "
                f"{value:.3f}; weights restored to step {self.saved_step}"
            )
        else:
            self.previous = value
            self.saved_step = step
            self._saved_state = copy.deepcopy(method.state_dict())
        return {self.name: value} if self.name else None


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

    def _write(self, trainer: TrainerView, step: int) -> None:
        method = trainer.method
        with model_mode(method, False), torch.no_grad():
            for name, (fn, nrow) in self.grids.items():
                images = fn(method).float().cpu()
                filename = f"{name}_step{step:06d}.png"
                if self.out_dir is not None:
                    self.written.append(save_image_grid(images, self.out_dir / filename, nrow))
                if self.tracker is not None:
                    self.tracker.log_image_grid(images, filename, "samples", nrow)

    def on_step(self, trainer: TrainerView, step: int) -> None:
        self._write(trainer, step)

    def on_end(self, trainer: TrainerView) -> None:
        self._write(trainer, trainer.step)
