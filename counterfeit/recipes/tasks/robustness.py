"""The ``robustness`` task (recipe ``adapted-robustness`` and ``counterfeit robustness``).

Evaluates a saved classifier (``.pt2``, TorchScript or a state_dict with
``arch``) under attacks and corruptions with :func:`robust.evaluate`. Nothing is
trained; rank 0 does it all.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from counterfeit.gan.data.domains import DomainSpec, build_domain
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
    evaluate_robustness,
    image_shape,
    load_attacked_model,
)
from counterfeit.robust.evaluate import RobustnessWarning
from counterfeit.robust.loading import detect_format


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
    model: Path = Field(description=".pt2, TorchScript, or a state_dict with arch")
    produced_by: str | None = Field(
        None, description="the recipe that writes `model`, named when the file is missing"
    )
    arch: str | None = Field(None, description="module:Class for a state_dict")
    trust_pickle: bool = False
    normalize: NormalizeConfig | None = None
    data: EvaluationData
    evaluation: RobustEvaluationConfig = Field(default_factory=RobustEvaluationConfig)


class RobustnessTask(Task):
    """Evaluate a saved classifier under attacks and common corruptions."""

    schema = RobustnessRecipe
    recipe: RobustnessRecipe
    main_only = True  # evaluation needs no data parallelism
    model_files = ("model",)

    def check(self) -> None:
        """Load the model and the data and try the model on the data's shape, before any
        output exists (kept for :meth:`report`)."""
        super().check()
        r = self.recipe
        self.model = load_attacked_model(
            r.model,
            arch=r.arch,
            trust_pickle=r.trust_pickle,
            normalize=r.normalize,
            device=self.ctx.device,
            produced_by=r.produced_by,
        )
        channels, size = image_shape(self.model, r.data.channels, r.data.image_size, r.model)
        self.data = build_domain(r.data.dataset, r.data.split, size, channels)

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        r = self.recipe
        model, data = self.model, self.data
        self.ctx.print(
            f"evaluating {r.model} ({describe_format(r.model)}) on {data.name}: "
            f"{min(len(data), r.evaluation.n or len(data))} images of {data.shape}"
        )
        with warnings.catch_warnings():  # printed below, once, without a source line
            warnings.simplefilter("ignore", RobustnessWarning)
            report = evaluate_robustness(self.ctx, r.evaluation, model, data, r.model.name, r.seed)
        paths = report.save(self.ctx.out, tracker=self.ctx.tracker)
        for warning in report.warnings:
            self.ctx.print(f"warning: {warning}")
        for attack, by_budget in report.stages.items():
            for budget, table in by_budget.items():
                if float(budget) > 0:
                    steps = ", ".join(f"{stage} {accuracy:.4f}" for stage, accuracy in table)
                    self.ctx.print(f"{attack} at eps {float(budget):.4g}: {steps}")
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
        return TaskOutput(
            report.metrics(),
            {"report": {k: str(v) for k, v in paths.items()}, "warnings": report.warnings},
            table,
        )


def describe_format(model: Path) -> str:
    """The saved model's format, or where it comes from for an MLflow URI."""
    return "from MLflow" if is_mlflow_uri(model) else detect_format(model)
