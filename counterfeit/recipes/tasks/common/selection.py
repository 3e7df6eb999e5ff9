"""The report's side of label-free selection: score every kept checkpoint on the opened
target test set, ship the validator's choice, plot scores against accuracy."""

from __future__ import annotations

from typing import Any

from counterfeit.adapt.dann import DANN
from counterfeit.adapt.evaluate import accuracy, predict
from counterfeit.adapt.selection import (
    CheckpointSelector,
    load_candidate,
    rank_correlations,
    select,
    selection_summary,
)
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.plots import validator_scatter_figure
from counterfeit.recipes.context import RunContext


def report_selection(
    ctx: RunContext,
    models: dict[str, DANN],
    selectors: dict[str, CheckpointSelector],
    domains: dict[str, ImageTensors],
    validator: str,
) -> dict[str, dict[str, Any]]:
    """Per method: :func:`selection_summary` of its kept checkpoints, the selected
    checkpoint's weights loaded into the model (what the report then evaluates and
    exports). Target accuracies need labels: without them the summary has the choice only.
    """
    target_test = domains["target_test"]
    summaries: dict[str, dict[str, Any]] = {}
    for method, selector in selectors.items():
        if method not in models:  # diverged: nothing to ship
            continue
        model = models[method]
        candidates = selector.candidates
        if target_test.has_labels:
            accuracies = {}
            for candidate in candidates:
                load_candidate(model, candidate)
                nets = model.evaluated_nets()
                accuracies[candidate.step] = accuracy(
                    predict(model, target_test, selector.batch_size, *nets)
                )
            summaries[method] = selection_summary(candidates, accuracies, validator)
        chosen = select(candidates, validator)
        summaries.setdefault(method, {"validator": validator, "selected_step": chosen.step})
        load_candidate(model, chosen)
        ctx.print(f"{method}: shipping step {chosen.step}, chosen by {validator}")
    if target_test.has_labels and summaries:
        _scatter(ctx, summaries)
    return summaries


def _scatter(ctx: RunContext, summaries: dict[str, dict[str, Any]]) -> None:
    """Each validator's score against target accuracy, every method's checkpoints."""
    checkpoints = [c for s in summaries.values() for c in s["checkpoints"]]
    validators = list(checkpoints[0]["scores"])
    points = {
        v: {
            method: [(c["scores"][v], c["target_accuracy"]) for c in s["checkpoints"]]
            for method, s in summaries.items()
        }
        for v in validators
    }
    correlations = rank_correlations(checkpoints)
    figure = validator_scatter_figure(points, correlations, "validator score vs target accuracy")
    ctx.save_figure(figure, "validators")
