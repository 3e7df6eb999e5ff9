"""Running a recipe: checks, output folder, MLflow run, task, summary.

Every run writes ``OUT/summary.json`` (metrics, resolved recipe, seed,
versions, device, wall time, MLflow ids), ``OUT/recipe.yaml`` (the resolved
recipe), ``OUT/run.json`` (its MLflow run and folder), plots under ``OUT/plots/``,
checkpoints under ``OUT/checkpoints/`` and exported models under ``OUT/models/``,
and logs the same to one MLflow run.

The run's lifecycle:

* Nothing is written before the inputs are checked: the output folder can be written,
  the task's inputs exist (:meth:`~counterfeit.recipes.tasks.base.Task.check`), a resume
  has a run to continue with the same recipe, and the tracking store takes a run.
* A run that fails ends FAILED in MLflow, tagged ``error`` and ``error_type``; Ctrl-C
  and SIGTERM (a scheduler's time limit) stop training at a checkpoint and end it KILLED.
* When the tracking store stops answering, training goes on and the tracking calls are
  kept in ``OUT/tracking-buffer`` (``counterfeit tracking replay OUT`` sends them later).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from counterfeit.gan.runtime import distributed_context, resolve_device, seed_everything
from counterfeit.gan.tracking import Tracker
from counterfeit.gan.tracking_buffer import BUFFER_DIR
from counterfeit.recipes.boundary import sigterm_stops_like_ctrl_c
from counterfeit.recipes.context import RunContext, TaskOutput
from counterfeit.recipes.loader import LoadedRecipe
from counterfeit.recipes.run_folder import (
    RECIPE_FILE,
    ResumeState,
    check_recipe_unchanged,
    check_run_folder,
    read_resume_state,
    write_run_state,
)
from counterfeit.recipes.schema import RecipeBase
from counterfeit.recipes.tasks import task_class


def versions() -> dict[str, str]:
    """Versions of Python and the packages that decide the numbers."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("counterfeit", "torch", "torchvision", "numpy", "mlflow", "scikit-learn"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def run_recipe(
    loaded: LoadedRecipe,
    out: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    allow_recipe_changes: bool = False,
) -> dict[str, Any]:
    """Run a validated recipe end to end; returns the summary (rank 0) or {} (other ranks).

    Args:
        loaded: the validated recipe.
        out: the run folder (default ``runs/NAME``).
        resume: continue the run in ``out`` from its checkpoints.
        overwrite: replace the run in ``out``.
        allow_recipe_changes: let ``resume`` continue with a recipe that differs from the
            run's ``recipe.yaml`` (refused by default, naming the changed keys).

    Raises:
        CounterfeitError: a bad input, found before anything is written.
        TrainingInterrupted: Ctrl-C or SIGTERM; a checkpoint was written, the run is KILLED.
    """
    recipe: RecipeBase = loaded.recipe
    out_dir = Path(out) if out else Path("runs") / recipe.name
    device = resolve_device(recipe.device)
    dist = distributed_context(device)
    seed_everything(recipe.seed)  # before check(): what it loads may draw random numbers
    resolved = recipe.model_dump(mode="json")
    state = read_resume_state(out_dir) if resume else ResumeState()
    changes: list[str] = []
    if dist.is_main:
        check_run_folder(out_dir, resume, overwrite)
        if resume:
            changes = check_recipe_unchanged(out_dir, resolved, allow_recipe_changes)
    copied = resume and state.is_copy(out_dir)
    tags = {"recipe": recipe.name, "task": recipe.task, "source": loaded.source}
    if copied and state.run_id:
        tags["resumed_from_run"] = state.run_id
    tracker = Tracker(
        experiment=recipe.tracking.experiment,
        run_name=recipe.tracking.run_name or recipe.name,
        uri=recipe.tracking.uri,
        tags=tags,
        enabled=recipe.tracking.enabled and dist.is_main,
        run_id=None if copied else state.run_id,
        buffer_dir=out_dir,
    )
    task = task_class(recipe.task)(RunContext(recipe, out_dir, resume, tracker, dist, device))
    started = time.perf_counter()
    task.check()
    tracker.check()
    if dist.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    with sigterm_stops_like_ctrl_c(), tracker:
        if dist.is_main:
            (out_dir / RECIPE_FILE).write_text(yaml.safe_dump(resolved, sort_keys=False))
            write_run_state(out_dir, tracker)
            if copied or state.run_id is None:
                tracker.log_params(resolved)
            if changes:
                tracker.set_tags({"recipe_changes_on_resume": "; ".join(changes)})
            tracker.log_artifact(out_dir / RECIPE_FILE)
            if copied:
                print(f"resuming a copy of {state.folder}: a new MLflow run", flush=True)
            if tracker.active:
                print(f"MLflow run {tracker.run_id} ({tracker.tracking_uri})", flush=True)
        output = task.run()
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
            **({"recipe_changes_on_resume": changes} if changes else {}),
            "versions": versions(),
            "argv": sys.argv,
            "mlflow": {
                "run_id": tracker.run_id,
                "experiment": recipe.tracking.experiment,
                "tracking_uri": tracker.tracking_uri if tracker.active else None,
                **({"resumed_from_run": state.run_id} if copied else {}),
                **({"offline_buffer": str(out_dir / BUFFER_DIR)} if tracker.offline else {}),
            },
        }
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        tracker.log_metrics(output.metrics)
        tracker.log_metrics({"wall_time_seconds": wall})
        tracker.log_artifact(out_dir / "summary.json")
    _print_closing(output, out_dir, tracker, wall)
    return summary


def _print_closing(output: TaskOutput, out: Path, tracker: Tracker, wall: float) -> None:
    """The results table, where the run's files are, and where to see it in MLflow."""
    if output.table:
        widths = [max(len(row[i]) for row in output.table) for i in range(len(output.table[0]))]
        for n, row in enumerate(output.table):
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
            if n == 0:
                print("  ".join("-" * w for w in widths))
    print(f"\nwrote {out}/summary.json in {wall:.0f}s")
    for line in _folder_lines(out):
        print(line)
    if tracker.active:
        print(f"MLflow run id: {tracker.run_id}  (open: {tracker.where()})")
    if tracker.offline:
        print(
            f"MLflow stopped answering during the run: its tracking calls are kept in "
            f"{out / BUFFER_DIR}. Once the store is back: counterfeit tracking replay {out}"
        )


def _folder_lines(out: Path, shown: int = 4) -> list[str]:
    """One line per sub-folder of ``out``: its files by name, or how many there are."""
    folders = sorted(p for p in out.iterdir() if p.is_dir() and p.name != BUFFER_DIR)
    names = [f"{folder}/" for folder in folders]
    width = max(map(len, names), default=0)
    lines = []
    for name, folder in zip(names, folders):
        files = sorted(f.name for f in folder.iterdir())
        listed = ", ".join(files) if len(files) <= shown else f"{len(files)} files"
        lines.append(f"  {name.ljust(width)}  {listed}")
    return lines
