"""The sweep's report: ``sweep.json`` (the record), ``sweep.md`` (tables) and ``plots/``.

Plots (one panel per metric): ``plots/strips.png`` shows every seed's value per grid point
beside the mean and its 95% interval; ``plots/vs_KEY.png`` draws the mean against a numeric
grid key with 95%-interval error bars (one line per combination of the other keys).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from counterfeit.recipes.markdown import markdown_table
from counterfeit.recipes.sweep.plan import numeric_values

STATE_FILE = "sweep.json"
MARKDOWN_FILE = "sweep.md"


def write_state(out: Path, record: Mapping[str, Any]) -> Path:
    """Write ``OUT/sweep.json`` atomically (a temp file renamed over it)."""
    path = out / STATE_FILE
    temp = path.with_suffix(".json.tmp")
    temp.write_text(json.dumps(record, indent=2, allow_nan=False))
    temp.replace(path)
    return path


def read_state(out: Path) -> dict[str, Any]:
    path = out / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def write_markdown(out: Path, record: Mapping[str, Any], headline: str | None) -> Path:
    """Write ``OUT/sweep.md``: per grid point a table of every metric, the paired differences,
    then one row per member."""
    members = record["members"]
    counts = {s: sum(m["status"] == s for m in members) for s in ("finished", "failed")}
    grid = ", ".join(f"{k}={','.join(v)}" for k, v in record["grid"].items()) or "none"
    state = "" if record["status"] == "finished" else f"; the sweep was {record['status']}"
    lines = [
        f"# Sweep of {record['recipe']}",
        "",
        f"Seeds {', '.join(map(str, record['seeds']))}; grid: {grid}; overrides: "
        f"{' '.join(record['overrides']) or 'none'}. {len(members)} members: "
        f"{counts['finished']} finished, {counts['failed']} failed{state}.",
        "",
        f"Interval: {record['interval']}.",
    ]
    for group in record["aggregate"]:
        lines += ["", f"## {group['slug'] or 'all members'}", ""]
        if not group["metrics"]:
            lines.append("No finished member.")
            continue
        lines += markdown_table(
            ["metric", "n", "mean", "sd", "median", "min", "max", "95% CI"],
            [[name, *_stat_cells(s)] for name, s in group["metrics"].items()],
        )
        if group["paired"]:
            lines += ["", "Paired differences (same seed, a - b):", ""]
            lines += markdown_table(
                ["difference", "n", "mean", "sd", "median", "min", "max", "95% CI"],
                [[f"{p['a']} - {p['b']}: {p['metric']}", *_stat_cells(p)] for p in group["paired"]],
            )
    if record.get("selection"):
        from counterfeit.adapt.selection_report import selection_markdown

        lines += ["", "## Label-free selection", "", selection_markdown(record["selection"])]
    lines += ["", "## Members", ""]
    lines += markdown_table(
        ["member", "status", "exit", "wall s", headline or "headline", "error (last line)"],
        [
            [
                m["name"],
                m["status"],
                "" if m["exit_code"] is None else str(m["exit_code"]),
                "" if m["wall_seconds"] is None else f"{m['wall_seconds']:.1f}",
                _number(m["metrics"].get(headline)) if headline else "",
                (m["error"] or "").strip().splitlines()[-1:][0] if m["error"] else "",
            ]
            for m in members
        ],
    )
    path = out / MARKDOWN_FILE
    path.write_text("\n".join(lines) + "\n")
    return path


def write_selection_plot(out: Path, runs: Mapping[int, Mapping[str, Any]]) -> Path:
    """``plots/selection.png``: each validator's score against target accuracy."""
    import matplotlib.pyplot as plt

    from counterfeit.adapt.selection_report import selection_figure

    path = out / "plots" / "selection.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = selection_figure(runs)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_plots(out: Path, record: Mapping[str, Any]) -> list[Path]:
    """``plots/strips.png`` (every seed's value per grid point, one panel per metric) and
    ``plots/vs_KEY.png`` for each numeric grid key (mean and 95% CI against the key)."""
    finished = [m for m in record["members"] if m["status"] == "finished"]
    if not finished:
        return []
    folder = out / "plots"
    folder.mkdir(exist_ok=True)
    groups = record["aggregate"]
    names = list(dict.fromkeys(n for g in groups for n in g["metrics"]))
    paths = [
        _panels(
            folder / "strips.png",
            names,
            "each seed (dots); mean and 95% CI (black)",
            lambda axes, name: _strip(axes, name, groups, finished),
        )
    ]
    for key, values in record["grid"].items():
        numbers = numeric_values(values)
        if numbers is None or len(values) < 2:
            continue

        def draw(axes: Any, name: str, key: str = key, numbers: list[float] = numbers) -> None:
            _versus(axes, name, key, record["grid"][key], numbers, groups)

        title = f"mean over seeds and 95% CI against {key}"
        paths.append(_panels(folder / f"vs_{_safe(key)}.png", names, title, draw))
    return paths


def _panels(path: Path, names: Sequence[str], title: str, draw: Callable[[Any, str], None]) -> Path:
    """One figure with a panel per metric, drawn by ``draw(axes, name)``."""
    from matplotlib.figure import Figure

    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    figure = Figure(figsize=(3.4 * columns, 2.8 * rows))
    grid = figure.subplots(rows, columns, squeeze=False, gridspec_kw={"hspace": 0.7, "wspace": 0.3})
    for axes, name in zip(grid.flat, names):
        draw(axes, name)
        axes.set_title(name, fontsize=8)
        axes.tick_params(labelsize=7)
    for axes in list(grid.flat)[len(names) :]:
        axes.set_visible(False)
    figure.suptitle(title, fontsize=9)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    return path


def _strip(axes: Any, name: str, groups: list[dict], finished: list[dict]) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    for x, group in enumerate(groups):
        values = [
            m["metrics"][name]
            for m in finished
            if m["point"] == group["point"] and name in m["metrics"]
        ]
        axes.scatter(x + rng.uniform(-0.12, 0.12, len(values)), values, s=14, alpha=0.7)
        stats = group["metrics"].get(name)
        if stats:
            low, high = stats["ci95"] or (stats["mean"], stats["mean"])
            axes.errorbar(
                x + 0.3,
                stats["mean"],
                yerr=[[stats["mean"] - low], [high - stats["mean"]]],
                fmt="o",
                color="black",
                capsize=3,
            )
    labels = [g["slug"] or "all" for g in groups]
    axes.set_xticks(range(len(groups)), labels, rotation=20, ha="right")


def _versus(
    axes: Any,
    name: str,
    key: str,
    values: Sequence[str],
    numbers: Sequence[float],
    groups: list[dict],
) -> None:
    lines: dict[str, list[tuple[float, dict]]] = {}
    for group in groups:
        stats = group["metrics"].get(name)
        if stats is None:
            continue
        rest = ",".join(f"{k}={v}" for k, v in group["point"].items() if k != key)
        x = numbers[list(values).index(group["point"][key])]
        lines.setdefault(rest, []).append((x, stats))
    for rest, points in lines.items():
        points.sort(key=lambda p: p[0])
        means = [s["mean"] for _, s in points]
        lows = [(s["ci95"] or [s["mean"]] * 2)[0] for _, s in points]
        highs = [(s["ci95"] or [s["mean"]] * 2)[1] for _, s in points]
        axes.errorbar(
            [x for x, _ in points],
            means,
            yerr=[[m - lo for m, lo in zip(means, lows)], [h - m for m, h in zip(means, highs)]],
            fmt="o-",
            capsize=3,
            label=rest or None,
        )
    if any(lines):
        axes.legend(fontsize=6)
    axes.set_xlabel(key, fontsize=7)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


def _stat_cells(stats: Mapping[str, Any]) -> list[str]:
    ci = stats["ci95"]
    return [
        str(stats["n"]),
        _number(stats["mean"]),
        _number(stats["sd"]),
        _number(stats["median"]),
        _number(stats["min"]),
        _number(stats["max"]),
        f"[{_number(ci[0])}, {_number(ci[1])}]" if ci else "",
    ]


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.4g}"
