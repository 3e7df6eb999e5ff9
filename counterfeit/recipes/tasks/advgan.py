"""The ``advgan`` task (recipe ``digits-advgan``).

Trains :class:`robust.AdvGAN` (Xiao et al. 2018) through :class:`gan.Trainer`
against a saved classifier (``classifier.path``) or, when none is given, Wong et
al.'s digits CNN trained first (a minute on CPU); then compares its success and
speed with FGSM and PGD at the same L-inf eps on the test split.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, field_validator

from counterfeit.gan.data.loaders import InfiniteLoader
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import DataError
from counterfeit.gan.losses import LOSSES
from counterfeit.gan.plots import labelled_grid_figure
from counterfeit.gan.train import TrainResult
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.schema import (
    AttackData,
    AttackedModelConfig,
    RecipeBase,
    StrictModel,
    TrainConfig,
)
from counterfeit.recipes.tasks.common.attacks import AttackedModelTask, attack_success, correct
from counterfeit.robust.advgan import AdvGAN
from counterfeit.robust.attacks import fgsm, pgd


class AdvGANConfig(StrictModel):
    """AdvGAN (Xiao et al. 2018); see robust.AdvGAN."""

    eps: float = Field(0.3, gt=0, le=1, description="L-inf budget in pixel units")
    target: int | None = Field(None, ge=0, description="null: untargeted")
    gan_loss: str = "least-squares"
    adv_weight: float = Field(10.0, ge=0)
    gan_weight: float = Field(1.0, ge=0)
    hinge_weight: float = Field(0.0, ge=0)
    hinge_bound: float = Field(1.0, ge=0)
    kappa: float = Field(0.0, ge=0)
    lr: float = Field(1e-3, gt=0)
    width: int = Field(8, gt=0)
    blocks: int = Field(4, ge=0)

    @field_validator("gan_loss")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        if value not in LOSSES:
            raise ValueError(f"unknown gan_loss '{value}'; choose one of {', '.join(LOSSES)}")
        return value


class AdvGANEvaluationConfig(StrictModel):
    n: int | None = Field(1000, gt=0)
    compare: list[Literal["fgsm", "pgd"]] = Field(default_factory=lambda: ["fgsm", "pgd"])
    pgd_steps: int = Field(10, gt=0)
    batch_size: int = Field(256, gt=0)
    show: int = Field(10, ge=1, le=50)


class AdvGANRecipe(RecipeBase):
    """Train an AdvGAN generator against a classifier; compare with FGSM/PGD at the same eps."""

    task: Literal["advgan"]
    data: AttackData = Field(default_factory=AttackData)
    classifier: AttackedModelConfig = Field(default_factory=AttackedModelConfig)
    produced_by: str | None = None
    advgan: AdvGANConfig = Field(default_factory=AdvGANConfig)
    train: TrainConfig
    evaluation: AdvGANEvaluationConfig = Field(default_factory=AdvGANEvaluationConfig)


class AdvGANTask(AttackedModelTask):
    """Train an AdvGAN attack (Xiao et al. 2018) and compare it with FGSM/PGD."""

    schema = AdvGANRecipe
    recipe: AdvGANRecipe

    def method_names(self) -> list[str]:
        return ["advgan"]

    def build(self, name: str) -> AdvGAN:
        channels, size = self.train_set.shape[0], self.train_set.shape[1]
        return AdvGAN(
            self.model, channels=channels, image_size=size, **self.recipe.advgan.model_dump()
        )

    def data(self, name: str, method: AdvGAN) -> InfiniteLoader:
        return self.loader(self.train_set, self.recipe.train.batch_size, self.recipe.seed)

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        ctx, r, model, test = self.ctx, self.recipe, self.model, self.test
        advgan: AdvGAN = self.methods["advgan"]  # type: ignore[assignment]
        result = results["advgan"]
        generator_path = ctx.out / "models" / "advgan_generator.pt"
        generator_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {"init": advgan.init_args(), "generator": advgan.generator.state_dict()},
            generator_path,
        )
        ctx.log_file(generator_path, "models")
        rows, metrics = self._compare(advgan, test)
        metrics["train_seconds"] = result.wall_time
        x, y = test.get_batch(torch.arange(min(r.evaluation.show, len(test))))
        x_adv = advgan.generate(x.to(ctx.device))
        with torch.no_grad():
            clean_pred = model(x.to(ctx.device)).argmax(1).cpu()
            adv_pred = model(x_adv).argmax(1).cpu()
        titles = [f"clean: {int(v)}" for v in clean_pred] + [f"AdvGAN: {int(v)}" for v in adv_pred]
        colours = ["black"] * len(x) + ["red" if p != t else "black" for p, t in zip(adv_pred, y)]
        title = f"AdvGAN, eps = {r.advgan.eps:g}"
        figure = labelled_grid_figure(torch.cat([x, x_adv.cpu()]), titles, len(x), title, colours)
        ctx.save_figure(figure, "advgan_examples")
        details = {"generator": str(generator_path), **ctx.train_record("advgan", result)}
        return TaskOutput(metrics, details, rows)

    def _compare(
        self, advgan: AdvGAN, test: ImageTensors
    ) -> tuple[list[tuple[str, ...]], dict[str, float]]:
        """Success (of correctly classified test images) and images/s of AdvGAN, FGSM, PGD."""
        model, device = self.model, self.ctx.device
        e, eps, target = self.recipe.evaluation, self.recipe.advgan.eps, self.recipe.advgan.target
        n = min(e.n or len(test), len(test))
        x, y = test.take(e.n, seed=self.recipe.seed).get_batch(torch.arange(n))
        x, y = x.to(device), y.to(device)
        right = correct(model, x, y, e.batch_size)
        if target is not None:
            right &= y != target
        x, y = x[right], y[right]
        if len(x) == 0:
            raise DataError("no correctly classified test images to attack.")
        goal = None if target is None else torch.full_like(y, target)
        attacks = {"advgan": lambda xb, yb, gb: advgan.generate(xb)}
        if "fgsm" in e.compare:
            attacks["fgsm"] = lambda xb, yb, gb: (
                fgsm(model, xb, yb, eps) if gb is None else fgsm(model, xb, gb, eps, targeted=True)
            )
        if "pgd" in e.compare:
            attacks["pgd"] = lambda xb, yb, gb: (
                pgd(model, xb, yb, eps, steps=e.pgd_steps)
                if gb is None
                else pgd(model, xb, gb, eps, steps=e.pgd_steps, targeted=True)
            )
        rows: list[tuple[str, ...]] = [("attack", f"success @ eps {eps:g}", "images/s")]
        metrics: dict[str, float] = {"clean_correct": float(len(x))}
        for name, attack in attacks.items():
            success, speed = attack_success(model, attack, x, y, goal, e.batch_size)
            metrics[f"{name}/success"] = success
            metrics[f"{name}/images_per_second"] = speed
            rows.append((name, f"{success:.4f}", f"{speed:.0f}"))
        return rows, metrics
