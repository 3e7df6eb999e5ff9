"""Recipes and the ``counterfeit`` CLI: YAML files validated by pydantic, run end to end.

Public API::

    from counterfeit.recipes import load_recipe, run_recipe
    summary = run_recipe(load_recipe("digits-dann", ["train.steps=200"]), out="runs/x")
"""

import importlib

# Public name -> its module, imported on first use: the CLI starts without torch.
_EXPORTS = {"builtin_recipes": "loader", "load_recipe": "loader", "run_recipe": "run"}


def __getattr__(name: str):
    """Import the module of a public name on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


__all__ = ["builtin_recipes", "load_recipe", "run_recipe"]
