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
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.runtime import distributed_context, resolve_device, seed_everything
from counterfeit.gan.tracking import Tracker
from counterfeit.recipes.context import RunContext, TaskOutput
from counterfeit.recipes.loader import LoadedRecipe
from counterfeit.recipes.schema import RecipeBase
from counterfeit.recipes.tasks import TASKS

RUN_STATE = "run.json"


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
        output = TASKS[recipe.task](ctx).run()
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
