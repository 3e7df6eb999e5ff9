"""What a task runner gets (:class:`RunContext`) and what it returns (:class:`TaskOutput`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from counterfeit.gan.callbacks import Callback
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.export import export_classifier
from counterfeit.gan.method import TrainingMethod
from counterfeit.gan.runtime import DistributedContext
from counterfeit.gan.tracking import Tracker
from counterfeit.gan.train import Trainer, TrainerConfig, TrainResult
from counterfeit.recipes.schema import TrainConfig


@dataclass
class TaskOutput:
    """What a task returns: headline metrics and any extra summary entries."""

    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    table: list[tuple[str, ...]] = field(default_factory=list)


@dataclass
class RunContext:
    """What a task runner gets: the recipe, where to write, the tracker, the process."""

    recipe: Any
    out: Path
    resume: bool
    tracker: Tracker
    dist: DistributedContext
    device: torch.device

    def checkpoint_path(self, name: str) -> Path:
        return self.out / "checkpoints" / f"{name}.ckpt"

    def resumes(self, name: str) -> bool:
        """Whether training ``name`` continues a checkpoint: asked to resume, and it exists."""
        return self.resume and self.checkpoint_path(name).is_file()

    def trainer(
        self,
        method: TrainingMethod,
        data: Any,
        name: str,
        *,
        train: TrainConfig,
        callbacks: list[Callback] | None = None,
        scoped: bool = True,
    ) -> Trainer:
        """A :class:`~gan.train.Trainer` set up from the training block ``train``.

        ``train`` is the recipe block this method trains by (``recipe.train``, or another
        such as a baselines block): its length and cadence are the ones used.
        Checkpoints go to ``OUT/checkpoints/NAME.ckpt``; metrics go to MLflow under
        ``NAME/`` (or unprefixed with ``scoped=False``) and the progress bar says NAME.
        """
        config = TrainerConfig(
            max_steps=train.steps,
            max_minutes=train.max_minutes,
            device=str(self.device),
            amp=train.amp,
            channels_last=train.channels_last,
            log_every=train.log_every,
            checkpoint_every=train.checkpoint_every,
            progress=train.progress,
            seed=self.recipe.seed,
        )
        tracker = None
        if self.tracker.active:
            tracker = self.tracker.scoped(f"{name}/") if scoped else self.tracker
        return Trainer(
            method,
            data,
            config,
            tracker=tracker,
            callbacks=callbacks or [],
            checkpoint_path=self.checkpoint_path(name),
            description=name,
        )

    def train_record(self, name: str, result: TrainResult) -> dict[str, Any]:
        """What a summary says about one training run: length, speed, resume, stop, checkpoint."""
        return {
            "steps": result.steps,
            "train_seconds": round(result.wall_time, 2),
            "steps_per_second": round(result.steps_per_second, 3),
            "resumed_from": result.resumed_from,
            "stopped_early": result.stopped_early,
            "checkpoint": str(self.checkpoint_path(name)),
        }

    def save_figure(self, figure, name: str) -> Path:
        """Save a matplotlib figure to ``OUT/plots/NAME.png`` and log it."""
        import matplotlib.pyplot as plt

        path = self.out / "plots" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(figure)
        self.tracker.log_artifact(path, "plots")
        return path

    def export(self, model: torch.nn.Module, examples: ImageTensors, name: str) -> Path:
        """Export a classifier to ``OUT/models/NAME.pt2`` for inputs shaped like ``examples``'s
        images, and log it."""
        example = examples.get_batch(torch.arange(2))[0].to(self.device)
        path = export_classifier(model, example, self.out / "models" / f"{name}.pt2")
        self.log_file(path, "models")
        register_as = self.recipe.tracking.register_as
        if register_as and self.dist.is_main:
            registered = f"{register_as}-{name}"
            version = self.tracker.register_model(f"models/{path.name}", registered)
            if version is not None:
                self.print(f"registered {path.name} as models:/{registered}/{version}")
        return path

    def log_file(self, path: Path, artifact_path: str | None = None) -> None:
        self.tracker.log_artifact(path, artifact_path)

    def print(self, message: str) -> None:
        if self.dist.is_main:
            print(message, flush=True)
