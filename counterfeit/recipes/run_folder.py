"""A run's folder: whether a run may start in it, and what a ``--resume`` continues.

Everything here reads and checks; nothing is written before :func:`check_run_folder` and
:func:`check_recipe_unchanged` have passed. ``OUT/run.json`` records the MLflow run the
folder belongs to and the folder's absolute path: a resume in the same folder reopens that
MLflow run; a resume in a copy of the folder (another path) starts a new MLflow run tagged
``resumed_from_run``, so whatever happens to the copy leaves the original run as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.tracking import Tracker, flatten
from counterfeit.recipes import preflight

RUN_STATE = "run.json"
RECIPE_FILE = "recipe.yaml"


@dataclass(frozen=True)
class ResumeState:
    """What ``OUT/run.json`` says about the run a resume continues.

    Attributes:
        run_id: the MLflow run of the folder (None: tracking was off).
        folder: the absolute path the run was written to (None: not recorded).
    """

    run_id: str | None = None
    folder: str | None = None

    def is_copy(self, out: Path) -> bool:
        """Whether ``out`` is not the folder the run was written to (a copy, or moved)."""
        return self.folder is not None and self.folder != str(out.resolve())


def check_run_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to mix a new run into a folder that holds another one; check it can be written.

    Raises:
        ConfigError: ``--resume`` with ``--overwrite``; a run is there and neither is given;
            ``--resume`` and no run is there.
        OutputError: ``out`` cannot be created or written.
    """
    if resume and overwrite:
        raise ConfigError(
            "--resume and --overwrite contradict each other: --resume continues the run in "
            f"{out}, --overwrite replaces it. Pass one of them."
        )
    has_run = (out / "checkpoints").is_dir() or (out / "summary.json").is_file()
    if has_run and not (resume or overwrite):
        raise ConfigError(
            f"{out} already holds a run. Pass --resume to continue it, --overwrite to replace "
            "it, or --out NEW_DIR."
        )
    if resume and not has_run:
        raise ConfigError(f"nothing to resume in {out}: it holds no checkpoints.")
    preflight.writable_folder(out)


def read_resume_state(out: Path) -> ResumeState:
    """``OUT/run.json`` (an empty state when the folder has none)."""
    path = out / RUN_STATE
    if not path.is_file():
        return ResumeState()
    try:
        state = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}): it records which MLflow "
            "run the folder belongs to. Delete it to resume into a new MLflow run."
        ) from None
    return ResumeState(state.get("mlflow_run_id"), state.get("out"))


def write_run_state(out: Path, tracker: Tracker) -> None:
    """Record the folder's MLflow run and the folder's absolute path in ``OUT/run.json``."""
    state = {"mlflow_run_id": tracker.run_id, "out": str(out.resolve())}
    (out / RUN_STATE).write_text(json.dumps(state))


def recipe_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """``"key: old -> new"`` for every setting that differs between two resolved recipes."""
    old, new = flatten(before), flatten(after)
    missing = "(not set)"
    return [
        f"{key}: {old.get(key, missing)} -> {new.get(key, missing)}"
        for key in sorted(old.keys() | new.keys())
        if old.get(key, missing) != new.get(key, missing)
    ]


def check_recipe_unchanged(out: Path, resolved: dict[str, Any], allow: bool) -> list[str]:
    """The changes between the run's ``OUT/recipe.yaml`` and ``resolved``; refused unless
    ``allow``.

    A resume continues the recipe a run started with. Any change is refused by default,
    a longer ``train.steps`` included: the learning-rate and adaptation schedules follow
    the planned length, so a run extended from 300 to 400 steps does not end where a
    400-step run does. ``allow`` (``--allow-recipe-changes``) continues with the new values.

    Raises:
        ConfigError: the recipes differ and ``allow`` is False; the message names each key.
    """
    path = out / RECIPE_FILE
    if not path.is_file():
        return []
    changes = recipe_changes(yaml.safe_load(path.read_text()) or {}, resolved)
    if changes and not allow:
        raise ConfigError(
            f"--resume continues the run in {out} with the recipe it started with "
            f"({path}), and this one differs: {'; '.join(changes)}. Run the same command as "
            "the first time, pass --allow-recipe-changes to continue with the new values "
            "(from the checkpoint's step on; the result is not that of a fresh run with "
            "them), or give --out NEW_DIR for a new run."
        )
    return changes
