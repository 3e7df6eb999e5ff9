"""Recipes and the ``counterfeit`` CLI: YAML files validated by pydantic, run end to end.

Public API::

    from counterfeit.recipes import load_recipe, run_recipe
    summary = run_recipe(load_recipe("digits-dann", ["train.steps=200"]), out="runs/x")
"""

from counterfeit.recipes.loader import builtin_recipes, load_recipe
from counterfeit.recipes.run import run_recipe

__all__ = ["builtin_recipes", "load_recipe", "run_recipe"]
