"""How well does each validator choose? The selection report over several runs.

A sweep of a recipe with ``selection`` (several seeds, perhaps a grid of settings) holds,
per run and method, every kept checkpoint with every validator's score and its target test
accuracy (read once, after training). This module turns them into the evidence a user
needs to trust label-free selection:

- per model (a method, prefixed by its grid point in a sweep with a grid): the target
  accuracy of the checkpoint the recipe's validator shipped, of the final checkpoint and
  of the oracle (the best on the test labels; not selectable), over seeds;
- per validator: Spearman's rho between its score and target accuracy over all models'
  checkpoints of a seed; the accuracy of the checkpoint it would ship per model, against
  that model's oracle; and the accuracy of the model it would ship out of all models,
  settings and checkpoints of a seed, against the best of them (the choice a user makes);
- a figure of score against target accuracy per validator.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from typing import Any

import matplotlib.pyplot as plt

from counterfeit.adapt.selection import Candidate, rank_correlations, select
from counterfeit.gan.plots import validator_scatter_figure

Runs = Mapping[int, Mapping[str, Mapping[str, Any]]]  # seed -> model -> selection summary


def runs_from_summaries(
    summaries: Iterable[tuple[str, Mapping[str, Any]]],
) -> dict[int, dict[str, Any]]:
    """``(prefix, summary.json)`` pairs (prefix: a grid point's name, or "") -> :data:`Runs`,
    keeping the methods whose summary holds scored checkpoints."""
    runs: dict[int, dict[str, Any]] = {}
    for prefix, summary in summaries:
        for method, details in summary.get("models", {}).items():
            if "checkpoints" in details.get("selection", {}):
                label = f"{prefix}/{method}" if prefix else method
                runs.setdefault(int(summary["seed"]), {})[label] = details["selection"]
    return runs


def _candidates(checkpoints: list[dict[str, Any]], tag: str = "") -> list[Candidate]:
    return [Candidate(c["step"], f"{tag}{c['step']}", c["scores"]) for c in checkpoints]


def selection_report(runs: Runs) -> dict[str, Any]:
    """The report's numbers (lists over seeds; see the module docstring)."""
    first = next(iter(next(iter(runs.values())).values()))
    validators = list(first["checkpoints"][0]["scores"])
    models: dict[str, dict[str, list[float]]] = {}
    for selections in runs.values():
        for label, s in selections.items():
            row = models.setdefault(label, {"shipped": [], "final": [], "oracle": []})
            row["shipped"].append(s["selected_target_accuracy"])
            row["final"].append(s["final_target_accuracy"])
            row["oracle"].append(s["oracle_target_accuracy"])
    scores = {v: _validator_record(runs, v) for v in validators}
    return {
        "validator": first["validator"],
        "seeds": sorted(runs),
        "models": models,
        "validators": scores,
    }


def _validator_record(runs: Runs, validator: str) -> dict[str, list[float]]:
    record: dict[str, list[float]] = {
        k: [] for k in ("rho", "within", "within_gap", "across", "across_gap")
    }
    for selections in runs.values():
        pooled = [c for s in selections.values() for c in s["checkpoints"]]
        rho = rank_correlations(pooled).get(validator, float("nan"))
        if rho == rho:
            record["rho"].append(rho)
        accuracy_of: dict[str, float] = {}
        tagged: list[Candidate] = []
        for label, s in selections.items():
            by_step = {c["step"]: c["target_accuracy"] for c in s["checkpoints"]}
            chosen = select(_candidates(s["checkpoints"]), validator)
            record["within"].append(by_step[chosen.step])
            record["within_gap"].append(s["oracle_target_accuracy"] - by_step[chosen.step])
            accuracy_of.update({f"{label}@{step}": a for step, a in by_step.items()})
            tagged += _candidates(s["checkpoints"], f"{label}@")
        best = select(tagged, validator).path
        record["across"].append(accuracy_of[best])
        record["across_gap"].append(max(accuracy_of.values()) - accuracy_of[best])
    return record


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} +- {statistics.stdev(values):.4f}"


def _mean(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f}" if values else "n/a"


def selection_markdown(report: Mapping[str, Any]) -> str:
    """Two tables: target accuracy per model, and each validator's choices."""
    lines = [
        f"Seeds {', '.join(map(str, report['seeds']))}; target accuracy, mean +- sd over seeds.",
        "",
        f"| model | shipped by {report['validator']} | final checkpoint | oracle (not selectable) | n |",
        "|---|---|---|---|---|",
    ]
    for label, row in report["models"].items():
        cells = [_mean_sd(row[k]) for k in ("shipped", "final", "oracle")]
        lines.append(f"| {label} | {' | '.join(cells)} | {len(row['shipped'])} |")
    lines += [
        "",
        "| validator | Spearman rho | per model: shipped | gap to its oracle "
        "| across models: shipped | gap to the best |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in report["validators"].items():
        lines.append(
            f"| {name} | {_mean_sd(r['rho'])} | {_mean_sd(r['within'])} | {_mean(r['within_gap'])} "
            f"| {_mean_sd(r['across'])} | {_mean(r['across_gap'])} |"
        )
    return "\n".join(lines) + "\n"


def selection_figure(runs: Runs) -> plt.Figure:
    """Score against target accuracy per validator, every checkpoint of every run, with
    each validator's mean Spearman rho over seeds."""
    report = selection_report(runs)
    points: dict[str, dict[str, list[tuple[float, float]]]] = {v: {} for v in report["validators"]}
    for selections in runs.values():
        for label, s in selections.items():
            for c in s["checkpoints"]:
                for v in points:
                    points[v].setdefault(label, []).append((c["scores"][v], c["target_accuracy"]))
    rho = {
        v: statistics.mean(r["rho"]) if r["rho"] else float("nan")
        for v, r in report["validators"].items()
    }
    return validator_scatter_figure(points, rho, f"{len(runs)} seed(s)")
