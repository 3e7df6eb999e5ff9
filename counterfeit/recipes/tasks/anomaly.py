"""The ``anomaly`` task (recipe ``mnist-anomaly``): anomaly detectors side by side under the
one-class (or leave-one-class-out) protocol.

Each method of ``methods`` (:data:`counterfeit.robust.anomaly.DETECTORS`, with its settings
from ``detectors``) runs every round of the protocol (:func:`~counterfeit.robust.anomaly.
evaluate_round`): fitted on the round's normal training images only, its threshold set on
held-out normal images, scored on the whole test set. The last iterate is scored; nothing is
chosen on test labels. Each round is written to ``OUT/anomaly/METHOD/class-K.json`` as it
ends, so ``--resume`` continues an interrupted run at the next round.

Reports: AUROC and AUPRC per class and their means (MLflow metrics ``METHOD/auroc_mean``,
``METHOD/auroc/class_K``...), ``anomaly.md``, an AUROC heat map (methods x classes), and for
the ``showcase`` class: ROC curves of every method, score histograms with the threshold, the
most anomalous test images beside their residual maps, and each method's fitted detector
(``OUT/detectors/METHOD-class-K.pt``, for ``counterfeit anomaly score``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from counterfeit.gan.data.domains import DomainSpec, build_domain
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.train import TrainResult
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.markdown import markdown_table
from counterfeit.recipes.schema import RecipeBase, StrictModel
from counterfeit.recipes.tasks.base import Task
from counterfeit.robust.anomaly import (
    AnomalyDetector,
    ClassResult,
    build_detector,
    evaluate_round,
    load_detector,
)


class AnomalyData(StrictModel):
    """Labelled images: the train split's normal classes fit, the test split measures."""

    dataset: DomainSpec = Field(default_factory=lambda: DomainSpec(name="mnist-small"))
    image_size: int = Field(28, ge=8, le=1024)
    channels: Literal[1, 3] = 1


class AnomalyEvaluation(StrictModel):
    """The threshold and the figures."""

    validation_fraction: float = Field(
        0.1, gt=0, lt=1, description="of each round's normal training images, for the threshold"
    )
    false_alarm: float = Field(0.05, gt=0, lt=1, description="share of normal images flagged")
    showcase: int | None = Field(None, description="the class drawn; null: the first class")


class AnomalyRecipe(RecipeBase):
    """Anomaly detectors compared under a protocol on one labelled dataset."""

    task: Literal["anomaly"]
    data: AnomalyData = Field(default_factory=AnomalyData)
    protocol: Literal["one-class", "leave-one-out"] = "one-class"
    classes: list[int] | None = Field(None, description="null: every class of the test set")
    methods: list[str] = Field(min_length=1)
    detectors: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="method -> its constructor arguments"
    )
    evaluation: AnomalyEvaluation = Field(default_factory=AnomalyEvaluation)

    @model_validator(mode="after")
    def _showcase_is_evaluated(self) -> AnomalyRecipe:
        shown = self.evaluation.showcase
        if shown is not None and self.classes is not None and shown not in self.classes:
            raise ValueError(f"evaluation.showcase {shown} is not one of classes {self.classes}")
        return self


class AnomalyTask(Task):
    """Run the protocol for every method and report them side by side."""

    schema = AnomalyRecipe
    recipe: AnomalyRecipe
    main_only = True  # rounds are independent fits: no data parallelism

    def check(self) -> None:
        """Every method builds from its settings, and the data holds the classes asked for."""
        super().check()
        r = self.recipe
        for method in dict.fromkeys([*r.methods, *r.detectors]):  # settings of unused ones too
            self.make(method)
        self.train_set, self.test_set = (
            build_domain(r.data.dataset, split, r.data.image_size, r.data.channels).as_floats()
            for split in ("train", "test")
        )
        present = sorted(int(c) for c in self.test_set[1].unique())
        self.classes = r.classes if r.classes is not None else present
        missing = sorted(set(self.classes) - set(present))
        if missing:
            raise ConfigError(f"classes {missing} are not in {r.data.dataset.name}'s test split.")
        self.showcase = (
            r.evaluation.showcase if r.evaluation.showcase is not None else self.classes[0]
        )

    def make(self, method: str) -> AnomalyDetector:
        """A fresh detector ``method`` with the recipe's settings (its seed and device)."""
        settings = self.recipe.detectors.get(method, {})
        return build_detector(method, self.recipe.seed, str(self.ctx.device), **settings)

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        r = self.recipe
        self.ctx.print(
            f"{r.protocol} protocol on {r.data.dataset.name}: {len(self.classes)} rounds "
            f"x {len(r.methods)} methods ({', '.join(r.methods)})"
        )
        table = {
            method: [self.round(method, target) for target in self.classes] for method in r.methods
        }
        self.figures(table)
        metrics = {}
        for method, rounds in table.items():
            for key in ("auroc", "auprc", "detection_rate", "false_alarm_rate"):
                metrics[f"{method}/{key}_mean"] = mean(rounds, key)
            metrics.update({f"{method}/auroc/class_{x.target}": x.auroc for x in rounds})
        rows = summary_rows(table)
        (self.ctx.out / "anomaly.md").write_text(
            "\n".join(markdown_table(rows[0], rows[1:])) + "\n"
        )
        self.ctx.log_file(self.ctx.out / "anomaly.md")
        details = {
            "protocol": r.protocol,
            "classes": self.classes,
            "rounds": {m: [vars(x) for x in rounds] for m, rounds in table.items()},
        }
        return TaskOutput(metrics, details, rows)

    def round(self, method: str, target: int) -> ClassResult:
        """One round's result: read back when resuming, else fitted, scored and written."""
        folder = self.ctx.out / "anomaly" / method
        record, scores_path = folder / f"class-{target}.json", folder / f"class-{target}-scores.pt"
        if self.ctx.resume and record.is_file():
            return ClassResult(**json.loads(record.read_text()))
        r = self.recipe
        done = evaluate_round(
            lambda: self.make(method),
            self.train_set,
            self.test_set,
            target,
            r.protocol,
            r.evaluation.validation_fraction,
            r.evaluation.false_alarm,
            r.seed,
        )
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(done.scores, scores_path)
        if target == self.showcase:
            path = done.detector.save(self.detector_path(method))
            self.ctx.log_file(path, "detectors")
        result = done.result
        record.with_suffix(".tmp").write_text(json.dumps(vars(result), indent=1))
        record.with_suffix(".tmp").replace(record)  # written last: the round is complete
        self.ctx.tracker.log_metrics({f"{method}/auroc/class_{target}": result.auroc})
        self.ctx.print(
            f"{method}, class {target} {'normal' if r.protocol == 'one-class' else 'anomalous'}: "
            f"AUROC {result.auroc:.3f}, AUPRC {result.auprc:.3f} "
            f"(fit {result.fit_seconds:.0f} s, {result.score_ms_per_image:.2f} ms per image)"
        )
        return result

    def detector_path(self, method: str) -> Path:
        return self.ctx.out / "detectors" / f"{method}-class-{self.showcase}.pt"

    def figures(self, table: dict[str, list[ClassResult]]) -> None:
        """The AUROC heat map; ROC curves, histograms and top anomalies of the showcase class."""
        from counterfeit.robust.anomaly.plots import (
            auroc_grid_figure,
            roc_figure,
            score_histogram_figure,
            top_anomalies_figure,
        )

        ctx, target = self.ctx, self.showcase
        grid = {m: {x.target: x.auroc for x in rounds} for m, rounds in table.items()}
        ctx.save_figure(auroc_grid_figure(grid), "auroc_per_class")
        images, labels = self.test_set
        normal = labels == target if self.recipe.protocol == "one-class" else labels != target
        split = {}
        for method, rounds in table.items():
            scores = torch.load(
                ctx.out / "anomaly" / method / f"class-{target}-scores.pt", weights_only=True
            )
            split[method] = (scores[normal], scores[~normal])
            threshold = next(x.threshold for x in rounds if x.target == target)
            ctx.save_figure(
                score_histogram_figure(*split[method], threshold),
                f"{method}_histogram_class_{target}",
            )
            detector = load_detector(self.detector_path(method), device=str(ctx.device))
            if detector.reconstructs:
                top = torch.argsort(scores, descending=True)[:8]
                maps = detector.residual_map(images[top])
                ctx.save_figure(
                    top_anomalies_figure(images[top], scores[top], maps),
                    f"{method}_top_anomalies_class_{target}",
                )
        ctx.save_figure(roc_figure(split), f"roc_class_{target}")


def mean(rounds: list[ClassResult], key: str) -> float:
    return float(sum(getattr(x, key) for x in rounds) / len(rounds))


def summary_rows(table: dict[str, list[ClassResult]]) -> list[tuple[str, ...]]:
    """One row per method: mean AUROC and AUPRC, the threshold's rates, speed, per-class AUROC."""
    classes = [x.target for x in next(iter(table.values()))]
    header = (
        "method",
        "AUROC",
        "AUPRC",
        "detected",
        "false alarms",
        "fit s",
        "ms/image",
        *map(str, classes),
    )
    rows = [header]
    for method, rounds in table.items():
        rows.append(
            (
                method,
                f"{mean(rounds, 'auroc'):.3f}",
                f"{mean(rounds, 'auprc'):.3f}",
                f"{mean(rounds, 'detection_rate'):.3f}",
                f"{mean(rounds, 'false_alarm_rate'):.3f}",
                f"{mean(rounds, 'fit_seconds'):.0f}",
                f"{mean(rounds, 'score_ms_per_image'):.2f}",
                *(f"{x.auroc:.3f}" for x in rounds),
            )
        )
    return rows
