"""The report's side of label-free selection: score every kept checkpoint on the opened
target test set, ship the validator's choice, plot scores against accuracy."""

from __future__ import annotations

from typing import Any

from counterfeit.adapt.dann import DANN
from counterfeit.adapt.evaluate import accuracy, predict
from counterfeit.adapt.selection import (
    CheckpointSelector,
    load_candidate,
    select,
    selection_summary,
)
from counterfeit.adapt.selection_report import selection_figure
from counterfeit.gan.data.tensors import ImageTensors
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
        ctx.save_figure(selection_figure({0: summaries}), "validators")
    return summaries
