"""The ``robust-train`` task (recipes ``digits-fgsm``, ``digits-adversarial-training``).

Trains a classifier per listed method (``standard``, ``fgsm``, ``fgsm-rs``, ``trades``) from
the same seed through :class:`gan.Trainer`, exports each as ``.pt2``, evaluates
each with :func:`robust.evaluate` on the test split and plots the eps curves
side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from counterfeit.gan.callbacks import Callback
from counterfeit.gan.data.domains import DomainSpec, build_domain
from counterfeit.gan.data.loaders import InfiniteLoader
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.train import TrainResult
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.schema import RecipeBase, RobustEvaluationConfig, StrictModel, TrainConfig
from counterfeit.recipes.tasks.base import Task
from counterfeit.recipes.tasks.common.attacks import comparison_table, evaluate_robustness
from counterfeit.robust.models import build_model
from counterfeit.robust.report import RobustnessReport, compare_markdown, eps_curve_figure
from counterfeit.robust.training import AdversarialTraining, CatastrophicOverfittingStop


class RobustData(StrictModel):
    """A labelled domain to train on (its train split) and evaluate on (its test split)."""

    dataset: DomainSpec = Field(default_factory=lambda: DomainSpec(name="mnist-small"))
    root: Path | None = Field(None, description="data root for file-backed domains")
    image_size: int = Field(28, ge=8, le=1024)
    channels: Literal[1, 3] = 1
    holdout: int = Field(
        256, ge=0, description="training images kept out of training for the early-stop check"
    )

    @model_validator(mode="after")
    def _share_root(self) -> RobustData:
        if self.dataset.root is None and self.root is not None:
            self.dataset.root = self.root
        return self


class RobustModelConfig(StrictModel):
    arch: Literal["digits-cnn"] = Field(
        "digits-cnn", description="Wong et al. 2020's MNIST network (robust.models)"
    )


class AdversarialConfig(StrictModel):
    """Adversarial training; defaults are Wong et al. 2020's MNIST settings."""

    eps: float = Field(0.3, ge=0, le=1)
    step_size: float | None = Field(
        None, gt=0, description="FGSM-RS alpha (null: 1.25 eps); TRADES' step (null: eps / 30)"
    )
    fgsm_weight: float = Field(0.5, ge=0, le=1, description="Goodfellow's clean-loss weight")
    trades_beta: float = Field(1.0, ge=0, description="TRADES' beta (its MNIST code: 1)")
    trades_steps: int = Field(40, ge=1, description="TRADES' inner steps (its MNIST code: 40)")
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(5e-3, gt=0, description="peak learning rate of the cycle")
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    lr_schedule: Literal["cyclic", "constant"] = "cyclic"
    lr_peak: float = Field(0.4, gt=0, lt=1)
    early_stop: bool = Field(True, description="stop on catastrophic overfitting")
    check_every: int | None = Field(None, gt=0, description="steps between checks; null: an epoch")
    check_drop: float = Field(0.2, gt=0, le=1)


EARLY_STOP_FIELDS = {"early_stop", "check_every", "check_drop"}  # the task's, not the method's


class RobustTrainRecipe(RecipeBase):
    """Train classifiers (standard and/or adversarially), export them, evaluate robustness."""

    task: Literal["robust-train"]
    data: RobustData = Field(default_factory=RobustData)
    model: RobustModelConfig = Field(default_factory=RobustModelConfig)
    train: TrainConfig
    adversarial: AdversarialConfig = Field(default_factory=AdversarialConfig)
    methods: list[Literal["standard", "fgsm", "fgsm-rs", "trades"]] = Field(
        default_factory=lambda: ["standard", "fgsm-rs"], min_length=1
    )
    evaluation: RobustEvaluationConfig = Field(default_factory=RobustEvaluationConfig)

    @model_validator(mode="after")
    def _unique_methods(self) -> RobustTrainRecipe:
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods lists a method twice: {self.methods}")
        return self


def split_holdout(
    train: ImageTensors, n: int, seed: int
) -> tuple[ImageTensors, ImageTensors | None]:
    """(training images, ``n`` held-out images) drawn with a fixed seed."""
    if n == 0:
        return train, None
    if n >= len(train):
        raise ConfigError(
            f"data.holdout={n} leaves nothing to train on: {train.name} has {len(train)} images."
        )
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    return train.subset(order[n:]), train.subset(order[:n], f"{train.name} (held out)")


class RobustTrainTask(Task):
    """Train classifiers (standard, FGSM, FGSM-RS adversarial training), evaluate robustness."""

    schema = RobustTrainRecipe
    independent = True
    recipe: RobustTrainRecipe

    def prepare(self) -> None:
        r, d = self.recipe, self.recipe.data
        train = build_domain(d.dataset, "train", d.image_size, d.channels)
        self.test = build_domain(d.dataset, "test", d.image_size, d.channels)
        for split in (train, self.test):
            if not split.has_labels:
                raise DataError(f"{split.name} has no labels: robustness training needs them.")
        self.train_set, self.heldout = split_holdout(train, d.holdout, r.seed)
        self.num_classes = max(self.train_set.num_classes, self.test.num_classes)
        held = len(self.heldout) if self.heldout else 0
        self.ctx.print(
            f"{d.dataset.name}: {len(self.train_set)} train / {held} held out / "
            f"{len(self.test)} test; images {self.train_set.shape}; methods "
            f"{', '.join(r.methods)}"
        )

    def method_names(self) -> list[str]:
        return list(self.recipe.methods)

    def build(self, name: str) -> AdversarialTraining:
        r, d = self.recipe, self.recipe.data
        model = build_model(r.model.arch, d.channels, self.num_classes, d.image_size)
        return AdversarialTraining(
            model,
            method=name,  # type: ignore[arg-type]
            **r.adversarial.model_dump(exclude=EARLY_STOP_FIELDS),
        )

    def data(self, name: str, method: AdversarialTraining) -> InfiniteLoader:
        return self.loader(self.train_set, self.recipe.train.batch_size, self.recipe.seed)

    def callbacks(self, name: str, method: AdversarialTraining, data: Any) -> list[Callback]:
        a, heldout = self.recipe.adversarial, self.heldout
        if name == "standard" or not a.early_stop or heldout is None:
            return []
        x, y = heldout.get_batch(torch.arange(len(heldout)))
        every = a.check_every or len(data)  # an epoch
        seed = self.recipe.seed
        return [CatastrophicOverfittingStop(x, y, a.eps, every, drop=a.check_drop, seed=seed)]

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        reports: dict[str, RobustnessReport] = {}
        details: dict[str, Any] = {}
        for name, method in self.methods.items():
            classifier = method.model.eval()
            export = self.ctx.export(classifier, self.test, name)
            report = evaluate_robustness(
                self.ctx, self.recipe.evaluation, classifier, self.test, name, self.recipe.seed
            )
            folder = self.ctx.out / "robustness" / name
            report.save(folder, tracker=self.ctx.tracker, prefix=f"{name}/")
            reports[name] = report
            details[name] = {
                **self.ctx.train_record(name, results[name]),
                "model": str(export),
                "report": str(folder / "report.json"),
            }
        self.ctx.save_figure(eps_curve_figure(reports), "eps_curves")
        (self.ctx.out / "robustness.md").write_text(compare_markdown(reports))
        self.ctx.log_file(self.ctx.out / "robustness.md")
        metrics = {k: v for name, r in reports.items() for k, v in r.metrics(f"{name}/").items()}
        return TaskOutput(metrics, {"models": details}, comparison_table(reports))
