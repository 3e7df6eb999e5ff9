"""The robustness report: numbers, and the same as JSON, Markdown, PNG plots and MLflow."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from counterfeit.gan.plots import labelled_grid_figure

WORST_CASE = "worst case"
_TARGETED_NOTE = (
    "Targeted success: the fraction of images classified as the attack's target, among "
    "those whose true class is not the target."
)


@dataclass
class Examples:
    """A few images behind the numbers, for plots (not written to JSON).

    Attributes:
        images, labels, clean_predictions: the first images of the data.
        eps: the budget the adversarial images were made with (the largest evaluated).
        adversarial: attack -> (adversarial images, predictions on them).
        corrupted: corruption -> images of the first example at each severity.
    """

    images: torch.Tensor
    labels: torch.Tensor
    clean_predictions: torch.Tensor
    eps: float
    adversarial: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    corrupted: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class AttackCurve:
    """An attack measured at budgets of its own kind rather than the report's eps curve.

    Attributes:
        budget: what the budgets measure, e.g. ``"area"`` (a patch's fraction of the image).
        budgets: the budgets, in the order measured.
        accuracy: top-1 accuracy under the attack at each budget.
        targeted_success: for a targeted attack, the fraction of images (of those not
            already of the target class) classified as the target, at each budget;
            None for an untargeted attack.
        clean_success: for a targeted attack, the same fraction without the attack.
    """

    budget: str
    budgets: list[float]
    accuracy: list[float]
    targeted_success: list[float] | None = None
    clean_success: float | None = None


@dataclass
class RobustnessReport:
    """How robust a classifier is: clean, under attack, under common corruptions.

    Attributes:
        model, data: short descriptions of what was evaluated.
        n: number of labelled images evaluated.
        clean_accuracy: top-1 accuracy on the unmodified images.
        eps: the attack budgets in pixel units (L-inf in [0, 1], or L2 over (C, H, W)).
        attacks: attack name -> accuracy under that attack at each eps (the curve).
        worst_case: accuracy at each eps when an image counts as robust only if
            it is classified correctly clean and under every attack (the
            per-example worst case of AutoAttack, Croce & Hein 2020).
        severities: the corruption severities evaluated.
        corruptions: corruption name -> accuracy at each severity.
        targeted_success: targeted attack on the eps curve -> at each eps, the fraction
            of images (of those not already of the target class) classified as the target.
        curves: attacks measured at budgets of their own (a patch's area) -> their curve.
        norm: the ball the attacks searched: ``"inf"`` or ``"2"``.
        minimum_norm: minimum-norm attack -> ``success`` (fooled among the images correct
            clean), ``median_l2`` and ``median_linf`` (an image not fooled counts as
            infinitely far).
        stages: for AutoAttack, budget -> ``(stage, robust accuracy after it)`` from
            ``clean`` to the last stage (Croce & Hein 2020's table).
        settings: attack options, seed, device, batch size and timings.
        warnings: problems noticed while evaluating (train mode, sanity flags).
        flags: the codes of the sanity flags raised (:mod:`robust.sanity`): when set,
            the robust accuracy may overstate the model's robustness.
        examples: images for the plots (not serialised).
    """

    model: str
    data: str
    n: int
    clean_accuracy: float
    eps: list[float]
    attacks: dict[str, list[float]]
    worst_case: list[float]
    severities: list[int]
    corruptions: dict[str, list[float]]
    targeted_success: dict[str, list[float]] = field(default_factory=dict)
    curves: dict[str, AttackCurve] = field(default_factory=dict)
    norm: str = "inf"
    minimum_norm: dict[str, dict[str, float]] = field(default_factory=dict)
    stages: dict[str, dict[str, list[tuple[str, float]]]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    examples: Examples | None = field(default=None, repr=False, compare=False)

    @property
    def mean_corruption_accuracy(self) -> float | None:
        """Mean accuracy over every corruption and severity (None without corruptions)."""
        values = [v for row in self.corruptions.values() for v in row]
        return float(np.mean(values)) if values else None

    # -- serialisation -----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("examples")
        out["mean_corruption_accuracy"] = self.mean_corruption_accuracy
        return out

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as JSON; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, default=str)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, path: str | Path) -> RobustnessReport:
        """Read a report written by :meth:`to_json` (without its example images)."""
        data = json.loads(Path(path).read_text())
        data.pop("mean_corruption_accuracy", None)
        data["curves"] = {k: AttackCurve(**v) for k, v in data.get("curves", {}).items()}
        return cls(**data)

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat scalar metrics (for MLflow and summaries)."""
        out = {
            f"{prefix}clean_accuracy": self.clean_accuracy,
            f"{prefix}sanity_flags": len(self.flags),
        }
        for name, curve in {**self.attacks, "worst_case": self.worst_case}.items():
            for eps, value in zip(self.eps, curve):
                out[f"{prefix}{name}/eps_{eps:.4g}"] = value
        for name, curve in self.targeted_success.items():
            for eps, value in zip(self.eps, curve):
                out[f"{prefix}{name}/targeted_success/eps_{eps:.4g}"] = value
        for name, c in self.curves.items():
            for budget, value in zip(c.budgets, c.accuracy):
                out[f"{prefix}{name}/{c.budget}_{budget:.4g}"] = value
            if c.targeted_success is not None:
                for budget, value in zip(c.budgets, c.targeted_success):
                    out[f"{prefix}{name}/targeted_success/{c.budget}_{budget:.4g}"] = value
                out[f"{prefix}{name}/targeted_success/clean"] = c.clean_success
        for name, sizes in self.minimum_norm.items():
            out.update({f"{prefix}{name}/{key}": value for key, value in sizes.items()})
        for name, by_budget in self.stages.items():
            for budget, table in by_budget.items():
                for stage, value in table:
                    out[f"{prefix}{name}/{stage}/eps_{float(budget):.4g}"] = value
        for name, row in self.corruptions.items():
            for severity, value in zip(self.severities, row):
                out[f"{prefix}corruption/{name}/severity_{severity}"] = value
        if self.mean_corruption_accuracy is not None:
            out[f"{prefix}corruption/mean"] = self.mean_corruption_accuracy
        return out

    def to_markdown(self) -> str:
        """A human-readable report: the eps table, the corruption table, the settings."""
        lines = [
            f"# Robustness of {self.model} on {self.data} ({self.n} images)",
            "",
            f"Clean accuracy: **{self.clean_accuracy:.4f}**",
            "",
        ]
        if self.flags:
            lines += [
                f"**Sanity flags: {', '.join(self.flags)}.** The robust accuracy below may "
                "overstate the model's robustness; see Warnings.",
                "",
            ]
        if self.attacks:
            names = list(self.attacks)
            lines += [
                f"## Accuracy under attack ({self.ball})",
                "",
                "| eps | " + " | ".join(names) + f" | {WORST_CASE} |",
                "| --- |" + " --- |" * (len(names) + 1),
            ]
            for i, eps in enumerate(self.eps):
                cells = [f"{self.attacks[n][i]:.4f}" for n in names] + [f"{self.worst_case[i]:.4f}"]
                lines.append(f"| {self._eps_cell(eps)} | " + " | ".join(cells) + " |")
            lines += [
                "",
                f"{WORST_CASE.capitalize()}: an image counts as robust only if it is classified "
                "correctly clean and under every attack (the per-example worst case that "
                "AutoAttack reports, Croce & Hein 2020).",
                "",
            ]
        lines += self._stages_markdown() + self._minimum_norm_markdown()
        lines += self._targeted_markdown() + self._curves_markdown()
        if self.corruptions:
            lines += [
                "## Accuracy under common corruptions (Hendrycks & Dietterich 2019)",
                "",
                "| corruption | " + " | ".join(str(s) for s in self.severities) + " | mean |",
                "| --- |" + " --- |" * (len(self.severities) + 1),
            ]
            for name, row in self.corruptions.items():
                cells = [f"{v:.4f}" for v in row] + [f"{np.mean(row):.4f}"]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
            means = np.mean(list(self.corruptions.values()), axis=0)
            lines.append(
                "| **mean** | "
                + " | ".join(f"{v:.4f}" for v in means)
                + f" | **{self.mean_corruption_accuracy:.4f}** |"
            )
            lines.append("")
        if self.settings:
            lines += ["## Settings", ""]
            lines += [f"- {key}: {_plain(value)}" for key, value in self.settings.items()]
            lines.append("")
        if self.warnings:
            lines += ["## Warnings", ""] + [f"- {w}" for w in self.warnings] + [""]
        return "\n".join(lines)

    @property
    def ball(self) -> str:
        """What the budgets measure, for titles."""
        if self.norm == "2":
            return "L2, eps over (C, H, W) in pixel units"
        return "L-inf, eps in [0, 1] pixel units"

    def _eps_cell(self, eps: float) -> str:
        return f"{eps:.4g} (= {eps * 255:.1f}/255)" if self.norm == "inf" else f"{eps:.4g}"

    def _stages_markdown(self) -> list[str]:
        """AutoAttack's robust accuracy after each stage, one column per budget."""
        lines = []
        for name, by_budget in self.stages.items():
            budgets = [b for b in by_budget if float(b) > 0]
            if not budgets:
                continue
            stages = [stage for stage, _ in by_budget[budgets[0]]]
            lines += [
                f"## {name}: robust accuracy after each stage ({self.ball})",
                "",
                "| stage | " + " | ".join(self._eps_cell(float(b)) for b in budgets) + " |",
                "| --- |" + " --- |" * len(budgets),
            ]
            for row, stage in enumerate(stages):
                cells = [f"{by_budget[b][row][1]:.4f}" for b in budgets]
                lines.append(f"| {stage} | " + " | ".join(cells) + " |")
            lines += [
                "",
                "Each stage attacks only the images every earlier stage left correct; the last "
                "row is the robust accuracy (Croce & Hein 2020).",
                "",
            ]
        return lines

    def _minimum_norm_markdown(self) -> list[str]:
        if not self.minimum_norm:
            return []
        lines = [
            "## Minimum-norm attacks: how far the decision boundary is",
            "",
            "| attack | success | median L2 | median L-inf |",
            "| --- | --- | --- | --- |",
        ]
        for name, s in self.minimum_norm.items():
            lines.append(
                f"| {name} | {s['success']:.4f} | {s['median_l2']:.4g} | {s['median_linf']:.4g} |"
            )
        note = (
            "Over the images correct clean; an image an attack did not fool counts as "
            "infinitely far, so a median of inf means it fooled fewer than half."
        )
        return [*lines, "", note, ""]

    def _targeted_markdown(self) -> list[str]:
        if not self.targeted_success:
            return []
        names = list(self.targeted_success)
        lines = [
            f"## Targeted success ({self.ball})",
            "",
            "| eps | " + " | ".join(names) + " |",
            "| --- |" + " --- |" * len(names),
        ]
        for i, eps in enumerate(self.eps):
            cells = [f"{self.targeted_success[n][i]:.4f}" for n in names]
            lines.append(f"| {self._eps_cell(eps)} | " + " | ".join(cells) + " |")
        return [*lines, "", _TARGETED_NOTE, ""]

    def _curves_markdown(self) -> list[str]:
        if not self.curves:
            return []
        lines = [
            "## Attacks with budgets of their own",
            "",
            "| attack | budget | accuracy | targeted success |",
            "| --- | --- | --- | --- |",
        ]
        for name, c in self.curves.items():
            if c.clean_success is not None:
                lines.append(
                    f"| {name} | none (clean) | {self.clean_accuracy:.4f} | {c.clean_success:.4f} |"
                )
            for i, budget in enumerate(c.budgets):
                success = "" if c.targeted_success is None else f"{c.targeted_success[i]:.4f}"
                lines.append(
                    f"| {name} | {c.budget} {budget:.4g} | {c.accuracy[i]:.4f} | {success} |"
                )
        targeted = any(c.targeted_success is not None for c in self.curves.values())
        return [*lines, "", *([_TARGETED_NOTE, ""] if targeted else [])]

    # -- figures -------------------------------------------------------------------

    def figures(self) -> dict[str, plt.Figure]:
        """The report's plots by file stem: the eps curve, corruptions, example images."""
        figures: dict[str, plt.Figure] = {}
        if self.attacks:
            figures["eps_curve"] = eps_curve_figure({self.model: self})
        if self.corruptions:
            figures["corruptions"] = corruption_heatmap(self)
        ex = self.examples
        if ex is not None and ex.adversarial:
            rows = [ex.images] + [images for images, _ in ex.adversarial.values()]
            predictions = [ex.clean_predictions] + [p for _, p in ex.adversarial.values()]
            names = ["clean"] + [f"{a} eps={ex.eps:.3g}" for a in ex.adversarial]
            titles, colours = [], []
            for name, preds in zip(names, predictions):
                for p, y in zip(preds.tolist(), ex.labels.tolist()):
                    titles.append(f"{name}\npred {p} (true {y})")
                    colours.append("black" if p == y else "red")
            figures["adversarial_examples"] = labelled_grid_figure(
                torch.cat(rows),
                titles,
                ncols=len(ex.images),
                suptitle="clean (top) and adversarial images; red: misclassified",
                title_colours=colours,
            )
        if ex is not None and ex.corrupted:
            images = torch.cat(list(ex.corrupted.values()))
            titles = [f"{name} s{s}" for name in ex.corrupted for s in self.severities]
            figures["corruption_examples"] = labelled_grid_figure(
                images, titles, ncols=len(self.severities), suptitle="corruptions by severity"
            )
        return figures

    def save(self, out_dir: str | Path, tracker: Any = None, prefix: str = "") -> dict[str, Path]:
        """Write ``report.json``, ``report.md`` and ``plots/*.png`` under ``out_dir``.

        With a :class:`gan.Tracker`, also log the metrics (names prefixed with
        ``prefix``) and the files to its MLflow run (under ``robustness/PREFIX``).
        """
        out = Path(out_dir)
        (out / "plots").mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "report.json", "markdown": out / "report.md"}
        self.to_json(paths["json"])
        paths["markdown"].write_text(self.to_markdown())
        for name, figure in self.figures().items():
            paths[name] = out / "plots" / f"{name}.png"
            figure.savefig(paths[name], dpi=120, bbox_inches="tight")
            plt.close(figure)
        if tracker is not None:
            tracker.log_metrics(self.metrics(prefix))
            tracker.log_artifact(out, f"robustness/{prefix}".rstrip("/"))
        return paths


def eps_curve_figure(reports: Mapping[str, RobustnessReport]) -> plt.Figure:
    """Accuracy against eps: one colour per model, a line per attack, dashed worst case."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osd^v<>"
    norms = {report.norm for report in reports.values()}
    for i, (label, report) in enumerate(reports.items()):
        colour = colours[i % len(colours)]
        prefix = f"{label}: " if len(reports) > 1 else ""
        for j, (attack, curve) in enumerate(report.attacks.items()):
            ax.plot(
                report.eps, curve, color=colour, marker=markers[j % 7], ms=4, label=prefix + attack
            )
        if len(report.attacks) > 1:
            ax.plot(report.eps, report.worst_case, color=colour, ls="--", label=prefix + WORST_CASE)
    ax.set_xlabel(
        "eps (L2, pixel units)" if norms == {"2"} else "eps (L-inf, pixel units in [0, 1])"
    )
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("accuracy under attack")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def corruption_heatmap(report: RobustnessReport) -> plt.Figure:
    """Accuracy per corruption (rows) and severity (columns), annotated."""
    names = list(report.corruptions)
    values = np.array([report.corruptions[n] for n in names])
    fig, ax = plt.subplots(figsize=(1.0 * len(report.severities) + 3.2, 0.38 * len(names) + 1.6))
    image = ax.imshow(values, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(report.severities)), [str(s) for s in report.severities])
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("severity")
    for (r, c), v in np.ndenumerate(values):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="accuracy")
    ax.set_title(
        f"accuracy under corruptions (clean {report.clean_accuracy:.3f}, "
        f"mean {report.mean_corruption_accuracy:.3f})"
    )
    fig.tight_layout()
    return fig


def compare_markdown(reports: Mapping[str, RobustnessReport]) -> str:
    """Side-by-side table: clean, each attack and the worst case at each eps > 0, corruptions."""
    first = next(iter(reports.values()))
    columns = ["clean"]
    for eps in first.eps:
        if eps > 0:
            columns += [f"{a} {eps:.3g}" for a in first.attacks]
            columns += [f"worst {eps:.3g}"] if len(first.attacks) > 1 else []
    has_corruptions = any(r.corruptions for r in reports.values())
    columns += ["corruptions (mean)"] if has_corruptions else []
    lines = ["| model | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    for label, r in reports.items():
        cells = [f"{r.clean_accuracy:.4f}"]
        for i, eps in enumerate(r.eps):
            if eps > 0:
                cells += [f"{r.attacks[a][i]:.4f}" for a in r.attacks]
                cells += [f"{r.worst_case[i]:.4f}"] if len(r.attacks) > 1 else []
        if has_corruptions:
            mean = r.mean_corruption_accuracy
            cells.append("n/a" if mean is None else f"{mean:.4f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items()) or "defaults"
    return str(value)
