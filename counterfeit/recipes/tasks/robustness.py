"""The ``robustness`` task (recipe ``adapted-robustness`` and ``counterfeit robustness``).

Evaluates a saved classifier (``.pt2``, TorchScript or a state_dict with
``arch``) under attacks and corruptions with :func:`robust.evaluate`, or several
(``models: {name: path}``, e.g. every method an adaptation recipe shipped) on the same
images, side by side: one table, ``robustness.md`` and an accuracy-vs-eps figure. Nothing
is trained; rank 0 does it all.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, model_validator

from counterfeit.gan.data.domains import DomainSpec, build_domain
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.tracking import is_mlflow_uri
from counterfeit.gan.train import TrainResult
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.schema import (
    NormalizeConfig,
    RecipeBase,
    RobustEvaluationConfig,
    StrictModel,
)
from counterfeit.recipes.tasks.base import Task
from counterfeit.recipes.tasks.common.attacks import (
    comparison_table,
    evaluate_robustness,
    image_shape,
    load_attacked_model,
)
from counterfeit.robust.evaluate import RobustnessWarning
from counterfeit.robust.loading import detect_format
from counterfeit.robust.report import RobustnessReport, compare_markdown, eps_curve_figure


class EvaluationData(StrictModel):
    """The labelled images a saved model is evaluated on."""

    dataset: DomainSpec
    root: Path | None = None
    split: Literal["train", "test"] = "test"
    image_size: int | None = Field(
        None, ge=8, le=1024, description="null: the size a .pt2 model was exported for"
    )
    channels: Literal[1, 3] | None = Field(None, description="null: from a .pt2 model")

    @model_validator(mode="after")
    def _share_root(self) -> EvaluationData:
        if self.dataset.root is None and self.root is not None:
            self.dataset.root = self.root
        return self


class RobustnessRecipe(RecipeBase):
    """Evaluate a saved classifier under attacks and corruptions."""

    task: Literal["robustness"]
    model: Path | None = Field(None, description=".pt2, TorchScript, or a state_dict with arch")
    models: dict[str, Path] | None = Field(
        None, description="name -> saved model: several compared on the same images"
    )
    produced_by: str | None = Field(
        None, description="the recipe that writes the models, named when a file is missing"
    )
    arch: str | None = Field(None, description="module:Class for a state_dict")
    trust_pickle: bool = False
    normalize: NormalizeConfig | None = None
    data: EvaluationData
    evaluation: RobustEvaluationConfig = Field(default_factory=RobustEvaluationConfig)

    @model_validator(mode="after")
    def _one_source(self) -> RobustnessRecipe:
        if (self.model is None) == (self.models is None):
            raise ValueError("set exactly one of model (a saved model) and models (name -> path)")
        if self.models is not None and not self.models:
            raise ValueError("models is empty: name at least one saved model")
        return self

    def named_models(self) -> dict[str, Path]:
        """The models to evaluate, by name (a single ``model`` goes by its file name)."""
        if self.models is not None:
            return dict(self.models)
        assert self.model is not None
        return {self.model.name: self.model}


class RobustnessTask(Task):
    """Evaluate a saved classifier under attacks and common corruptions."""

    schema = RobustnessRecipe
    recipe: RobustnessRecipe
    main_only = True  # evaluation needs no data parallelism
    model_files = ("model",)

    def check(self) -> None:
        """Load the models and the data and try each model on the data's shape, before any
        output exists (kept for :meth:`report`)."""
        super().check()
        r = self.recipe
        self.models: dict[str, torch.nn.Module] = {}
        for name, path in r.named_models().items():
            self.models[name] = load_attacked_model(
                path,
                arch=r.arch,
                trust_pickle=r.trust_pickle,
                normalize=r.normalize,
                device=self.ctx.device,
                produced_by=r.produced_by,
                setting="model" if r.model is not None else f"models.{name}",
            )
        shapes = {
            name: image_shape(model, r.data.channels, r.data.image_size, path)
            for (name, model), path in zip(self.models.items(), r.named_models().values())
        }
        if len(set(shapes.values())) > 1:
            raise ConfigError(f"the models take different image shapes: {shapes}")
        channels, size = next(iter(shapes.values()))
        self.data = build_domain(r.data.dataset, r.data.split, size, channels)

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        r = self.recipe
        n = min(len(self.data), r.evaluation.n or len(self.data))
        reports: dict[str, RobustnessReport] = {}
        for name, model in self.models.items():
            path = r.named_models()[name]
            self.ctx.print(
                f"evaluating {name} ({describe_format(path)}) on {self.data.name}: "
                f"{n} images of {self.data.shape}"
            )
            reports[name] = self._evaluate(name, model)
        if r.model is not None:
            report = next(iter(reports.values()))
            paths = report.save(self.ctx.out, tracker=self.ctx.tracker)
            details = {"report": {k: str(v) for k, v in paths.items()}}
            return TaskOutput(
                report.metrics(), {**details, "warnings": report.warnings}, eps_table(report)
            )
        details = {}
        for name, report in reports.items():
            folder = self.ctx.out / "robustness" / name
            paths = report.save(folder, tracker=self.ctx.tracker, prefix=f"{name}/")
            details[name] = {"report": str(paths["json"]), "warnings": report.warnings}
        self.ctx.save_figure(eps_curve_figure(reports), "eps_curves")
        (self.ctx.out / "robustness.md").write_text(compare_markdown(reports))
        self.ctx.log_file(self.ctx.out / "robustness.md")
        metrics = {
            k: v for name, rep in reports.items() for k, v in rep.metrics(f"{name}/").items()
        }
        return TaskOutput(metrics, {"models": details}, comparison_table(reports))

    def _evaluate(self, name: str, model: torch.nn.Module) -> RobustnessReport:
        """One model's report; its warnings and per-stage accuracies printed once."""
        r = self.recipe
        with warnings.catch_warnings():  # printed below, once, without a source line
            warnings.simplefilter("ignore", RobustnessWarning)
            report = evaluate_robustness(self.ctx, r.evaluation, model, self.data, name, r.seed)
        for warning in report.warnings:
            self.ctx.print(f"warning: {name}: {warning}")
        for attack, by_budget in report.stages.items():
            for budget, table in by_budget.items():
                if float(budget) > 0:
                    steps = ", ".join(f"{stage} {accuracy:.4f}" for stage, accuracy in table)
                    self.ctx.print(f"{name}: {attack} at eps {float(budget):.4g}: {steps}")
        return report


def eps_table(report: RobustnessReport) -> list[tuple[str, ...]]:
    """One model's accuracy per eps under each attack and in the worst case."""
    header = ("eps", *report.attacks, "worst case")
    table = [header]
    for i, eps in enumerate(report.eps):
        table.append(
            (
                f"{eps:.4g}",
                *(f"{curve[i]:.4f}" for curve in report.attacks.values()),
                f"{report.worst_case[i]:.4f}",
            )
        )
    if report.mean_corruption_accuracy is not None:
        mean = f"mean {report.mean_corruption_accuracy:.4f}"
        table.append(("corruptions", mean, *[""] * (len(header) - 2)))
    return table


def describe_format(model: Path) -> str:
    """The saved model's format, or where it comes from for an MLflow URI."""
    return "from MLflow" if is_mlflow_uri(model) else detect_format(model)
