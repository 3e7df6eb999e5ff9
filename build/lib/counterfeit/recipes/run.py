"""Running a recipe: output folder, MLflow run, task, summary.

Every run writes ``OUT/summary.json`` (metrics, resolved recipe, seed,
versions, device, wall time, MLflow ids), ``OUT/recipe.yaml`` (the resolved
recipe), plots under ``OUT/plots/``, checkpoints under ``OUT/checkpoints/`` and
exported models under ``OUT/models/``, and logs the same to one MLflow run.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
import yaml

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.runtime import (
    DistributedContext,
    distributed_context,
    resolve_device,
    seed_everything,
)
from counterfeit.gan.tracking import Tracker
from counterfeit.gan.train import Callback, Trainer, TrainerConfig, TrainingMethod, TrainResult
from counterfeit.recipes.loader import LoadedRecipe
from counterfeit.recipes.schema import RecipeBase

RUN_STATE = "run.json"


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

    def trainer(
        self,
        method: TrainingMethod,
        data: Any,
        name: str,
        callbacks: list[Callback] | None = None,
        *,
        scoped: bool = True,
    ) -> Trainer:
        """A :class:`~gan.train.Trainer` set up from the recipe's ``train`` block.

        Checkpoints go to ``OUT/checkpoints/NAME.ckpt``; metrics go to MLflow under
        ``NAME/`` (or unprefixed with ``scoped=False``) and the progress bar says NAME.
        """
        t = self.recipe.train
        config = TrainerConfig(
            max_steps=t.steps,
            max_minutes=t.max_minutes,
            device=str(self.device),
            amp=t.amp,
            channels_last=t.channels_last,
            log_every=t.log_every,
            checkpoint_every=t.checkpoint_every,
            progress=t.progress,
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
        """What a summary says about one training run: length, speed, resume, checkpoint."""
        return {
            "steps": result.steps,
            "train_seconds": round(result.wall_time, 2),
            "steps_per_second": round(result.steps_per_second, 3),
            "resumed_from": result.resumed_from,
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

    def log_file(self, path: Path, artifact_path: str | None = None) -> None:
        self.tracker.log_artifact(path, artifact_path)

    def print(self, message: str) -> None:
        if self.dist.is_main:
            print(message, flush=True)


def versions() -> dict[str, str]:
    """Versions of Python and the packages that decide the numbers."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("counterfeit", "torch", "torchvision", "numpy", "mlflow", "scikit-learn"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def prepare_out_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to silently mix a new run into a folder that holds another one."""
    has_run = (out / "checkpoints").is_dir() or (out / "summary.json").is_file()
    if has_run and not (resume or overwrite):
        raise ConfigError(
            f"{out} already holds a run. Pass --resume to continue it, --overwrite to replace "
            "it, or --out NEW_DIR."
        )
    if resume and not has_run:
        raise ConfigError(f"nothing to resume in {out}: it holds no checkpoints.")
    out.mkdir(parents=True, exist_ok=True)


def run_recipe(
    loaded: LoadedRecipe,
    out: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run a validated recipe end to end; returns the summary (rank 0) or {} (other ranks)."""
    from counterfeit.recipes.tasks import TASKS

    recipe: RecipeBase = loaded.recipe
    out_dir = Path(out) if out else Path("runs") / recipe.name
    device = resolve_device(recipe.device)
    dist = distributed_context(device)
    if dist.is_main:
        prepare_out_dir(out_dir, resume, overwrite)
    seed_everything(recipe.seed)
    resolved = recipe.model_dump(mode="json")
    previous = _read_run_state(out_dir) if resume else {}
    tracker = Tracker(
        experiment=recipe.tracking.experiment,
        run_name=recipe.tracking.run_name or recipe.name,
        uri=recipe.tracking.uri,
        tags={"recipe": recipe.name, "task": recipe.task, "source": loaded.source},
        enabled=recipe.tracking.enabled and dist.is_main,
        run_id=previous.get("mlflow_run_id"),
    )
    started = time.perf_counter()
    with tracker:
        if dist.is_main:
            (out_dir / "recipe.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
            _write_run_state(out_dir, tracker)
            if not previous:
                tracker.log_params(resolved)
            tracker.log_artifact(out_dir / "recipe.yaml")
            if tracker.active:
                print(f"MLflow run {tracker.run_id} ({tracker.tracking_uri})", flush=True)
        ctx = RunContext(recipe, out_dir, resume, tracker, dist, device)
        output: TaskOutput = TASKS[recipe.task].run(ctx)
        if not dist.is_main:
            return {}
        wall = time.perf_counter() - started
        summary = {
            "recipe": recipe.name,
            "task": recipe.task,
            "seed": recipe.seed,
            "device": str(device),
            "world_size": dist.world_size,
            "wall_time_seconds": round(wall, 2),
            "metrics": output.metrics,
            **output.details,
            "resolved_recipe": resolved,
            "versions": versions(),
            "argv": sys.argv,
            "mlflow": {
                "run_id": tracker.run_id,
                "experiment": recipe.tracking.experiment,
                "tracking_uri": tracker.tracking_uri if tracker.active else None,
            },
        }
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        tracker.log_metrics(output.metrics)
        tracker.log_metrics({"wall_time_seconds": wall})
        tracker.log_artifact(out_dir / "summary.json")
    _print_table(output, out_dir, tracker, wall)
    return summary


def _print_table(output: TaskOutput, out: Path, tracker: Tracker, wall: float) -> None:
    if output.table:
        widths = [max(len(row[i]) for row in output.table) for i in range(len(output.table[0]))]
        for n, row in enumerate(output.table):
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
            if n == 0:
                print("  ".join("-" * w for w in widths))
    print(f"\nwrote {out}/summary.json in {wall:.0f}s")
    if tracker.active:
        print(
            f"MLflow run id: {tracker.run_id}  (open with: mlflow ui --backend-store-uri {tracker.tracking_uri})"
        )


def _read_run_state(out: Path) -> dict[str, Any]:
    path = out / RUN_STATE
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_run_state(out: Path, tracker: Tracker) -> None:
    (out / RUN_STATE).write_text(json.dumps({"mlflow_run_id": tracker.run_id}))
