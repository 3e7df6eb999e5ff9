"""The task registry: each recipe ``task`` maps to a schema and a runner.

A task lives in its own module ``recipes/tasks/NAME.py`` with a ``run(ctx:
RunContext) -> TaskOutput`` function; its schema (a ``RecipeBase`` subclass)
lives beside it or in :mod:`recipes.schema`. Register it here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from recipes.schema import DANNRecipe, RecipeBase
from recipes.tasks import dann


@dataclass(frozen=True)
class Task:
    schema: type[RecipeBase]
    run: Callable  # (RunContext) -> TaskOutput
    description: str


TASKS: dict[str, Task] = {
    "dann": Task(DANNRecipe, dann.run, "DANN and its source-only / train-on-target baselines"),
}
