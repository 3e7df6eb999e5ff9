"""How well does each label-free validator choose? A report over a sweep of a recipe with
``selection`` (``counterfeit sweep mnist-usps-da --seeds 0-4 ...``).

Every member's summary holds, per method, every kept checkpoint with every validator's
score and (read once, after training) its target test accuracy. From them:

- per method, mean +- sd over seeds of the target accuracy of the checkpoint the recipe's
  validator shipped, of the final checkpoint and of the oracle (the best checkpoint on
  the test labels: not selectable, for the record);
- per validator: Spearman's rho between its score and target accuracy over all methods'
  checkpoints of a seed (mean +- sd over seeds), the accuracy of the checkpoint it would
  ship per method against that method's oracle (mean gap), and the accuracy of the model
  it would ship out of all methods, grid points and checkpoints against the best of them;
- a figure of score against target accuracy per validator (``OUT/plots/validators.png``).

Usage: ``python benchmarks/selection.py SWEEP_DIR [--markdown docs/results.md]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from counterfeit.adapt.selection import Candidate, rank_correlations, select
from counterfeit.gan.plots import validator_scatter_figure

Runs = dict[int, dict[str, dict[str, Any]]]  # seed -> method -> selection summary


def read_runs(sweep: Path) -> Runs:
    """Every finished member's selection summaries, by seed and method."""
    runs: Runs = {}
    for path in sorted(sweep.glob("**/summary.json")):
        summary = json.loads(path.read_text())
        models = summary.get("models", {})
        selections = {
            m: d["selection"] for m, d in models.items() if "checkpoints" in d.get("selection", {})
        }
        if selections:
            runs[int(summary["seed"])] = selections
    if not runs:
        raise SystemExit(f"no finished member with a selection summary under {sweep}")
    return runs


def _candidates(checkpoints: list[dict[str, Any]], tag: str = "") -> list[Candidate]:
    return [Candidate(c["step"], f"{tag}{c['step']}", c["scores"]) for c in checkpoints]


def _mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}" if values else "n/a"
    return f"{statistics.mean(values):.4f} +- {statistics.stdev(values):.4f}"


def method_table(runs: Runs) -> str:
    methods = list(next(iter(runs.values())))
    validator = next(iter(next(iter(runs.values())).values()))["validator"]
    lines = [
        f"| method | shipped by {validator} | final checkpoint | oracle (not selectable) | n |",
        "|---|---|---|---|---|",
    ]
    for method in methods:
        rows = [r[method] for r in runs.values() if method in r]
        cells = [
            _mean_sd([r[key] for r in rows])
            for key in (
                "selected_target_accuracy",
                "final_target_accuracy",
                "oracle_target_accuracy",
            )
        ]
        lines.append(f"| {method} | {' | '.join(cells)} | {len(rows)} |")
    return "\n".join(lines) + "\n"


def validator_table(runs: Runs) -> tuple[str, dict[str, float]]:
    """Per validator: rho, within-method choice vs oracle, across-method choice vs best."""
    first = next(iter(next(iter(runs.values())).values()))
    validators = list(first["checkpoints"][0]["scores"])
    lines = [
        "| validator | Spearman rho (all checkpoints of a seed) | per method: shipped acc "
        "| gap to oracle | across methods: shipped acc | gap to best |",
        "|---|---|---|---|---|---|",
    ]
    mean_rho = {}
    for v in validators:
        rhos, within, within_gap, across, across_gap = [], [], [], [], []
        for selections in runs.values():
            pooled = [c for s in selections.values() for c in s["checkpoints"]]
            rhos.append(rank_correlations(pooled).get(v, float("nan")))
            accuracy_of = {}
            tagged = []
            for method, s in selections.items():
                by_step = {c["step"]: c["target_accuracy"] for c in s["checkpoints"]}
                chosen = select(_candidates(s["checkpoints"]), v)
                within.append(by_step[chosen.step])
                within_gap.append(s["oracle_target_accuracy"] - by_step[chosen.step])
                for c in s["checkpoints"]:
                    accuracy_of[f"{method}@{c['step']}"] = c["target_accuracy"]
                tagged += _candidates(s["checkpoints"], f"{method}@")
            best = select(tagged, v)
            across.append(accuracy_of[best.path])
            across_gap.append(max(accuracy_of.values()) - accuracy_of[best.path])
        finite = [r for r in rhos if r == r]
        mean_rho[v] = statistics.mean(finite) if finite else float("nan")
        lines.append(
            f"| {v} | {_mean_sd(finite)} | {_mean_sd(within)} | {statistics.mean(within_gap):.4f} "
            f"| {_mean_sd(across)} | {statistics.mean(across_gap):.4f} |"
        )
    return "\n".join(lines) + "\n", mean_rho


def figure(runs: Runs, correlations: dict[str, float], out: Path) -> Path:
    first = next(iter(next(iter(runs.values())).values()))
    validators = list(first["checkpoints"][0]["scores"])
    points: dict[str, dict[str, list[tuple[float, float]]]] = {v: {} for v in validators}
    for selections in runs.values():
        for method, s in selections.items():
            for c in s["checkpoints"]:
                for v in validators:
                    points[v].setdefault(method, []).append((c["scores"][v], c["target_accuracy"]))
    path = out / "plots" / "validators.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    validator_scatter_figure(points, correlations, f"{len(runs)} seeds").savefig(path, dpi=110)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="a sweep's output folder")
    parser.add_argument("--markdown", help="append the report to this file")
    args = parser.parse_args()
    runs = read_runs(args.sweep)
    validators, rho = validator_table(runs)
    plot = figure(runs, rho, args.sweep)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = (
        f"## Label-free selection on {args.sweep.name} ({stamp}, seeds {sorted(runs)})\n\n"
        f"Command: `python {' '.join(sys.argv)}`\n\n### Target accuracy per method\n\n"
        f"{method_table(runs)}\n### Validators\n\n{validators}\nFigure: `{plot}`\n"
    )
    (args.sweep / "selection.md").write_text(text)
    print(text)
    if args.markdown:
        with open(args.markdown, "a") as handle:
            handle.write("\n" + text)


if __name__ == "__main__":
    main()
