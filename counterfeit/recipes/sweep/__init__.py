"""Sweeps: a recipe over seeds and a grid of settings, with statistics over seeds.

Each member (one grid point, one seed) is its own ``counterfeit run`` process in its own
folder; ``workers`` run at once on this machine, or as Ray tasks on a cluster. The sweep
writes ``OUT/sweep.json``, ``OUT/sweep.md`` and ``OUT/plots/``, and logs one MLflow run that
holds the aggregate with every member's run nested under it::

    from counterfeit.recipes.sweep import sweep
    result = sweep("digits-dann", seeds="0-9", grid={"model.lr": [0.01, 0.03]}, workers=4)
    result.aggregate[0]["metrics"]["dann/target_accuracy"]["mean"]
"""

from counterfeit.recipes.sweep.member import MemberResult
from counterfeit.recipes.sweep.runner import SweepInterrupted, SweepResult, sweep

__all__ = ["MemberResult", "SweepInterrupted", "SweepResult", "sweep"]
