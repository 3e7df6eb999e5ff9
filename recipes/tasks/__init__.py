"""The task registry: each recipe ``task`` maps to a schema and a runner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from recipes.schema import DANNRecipe, RecipeBase


@dataclass(frozen=True)
class Task:
    schema: type[RecipeBase]
    run: Callable  # (RunContext) -> TaskOutput
    description: str


def _dann(ctx):
    from recipes.tasks.dann import run

    return run(ctx)


TASKS: dict[str, Task] = {
    "dann": Task(DANNRecipe, _dann, "DANN and its source-only / train-on-target baselines"),
}
