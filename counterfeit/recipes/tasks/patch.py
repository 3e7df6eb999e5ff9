"""The ``patch`` task (recipe ``digits-patch`` and ``counterfeit patch``).

Trains one universal patch toward a target class with
:class:`robust.AdversarialPatch` (Brown et al. 2017) on the train split, measures
its targeted success on the test split beside a random-noise control and across
patch areas, and writes the patch (PNG and exact tensor), the success curve and
patched examples, all logged to MLflow. The attacked model is a saved classifier
(``classifier.path``) or, when none is given, Wong et al.'s digits CNN trained
first (a minute on CPU). One patch, one process: rank 0 does it all.
"""

from __future__ import annotations

import json
import time
from typing import Literal

import torch
from pydantic import Field, field_validator

from counterfeit.gan.train import TrainResult
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.schema import AttackData, AttackedModelConfig, RecipeBase, StrictModel
from counterfeit.recipes.tasks.common.attacks import AttackedModelTask, correct
from counterfeit.robust.patch import AdversarialPatch


class PatchConfig(StrictModel):
    """The adversarial patch (Brown et al. 2017); see robust.AdversarialPatch."""

    target: int = Field(3, ge=0, description="the class the patch should make the model see")
    shape: Literal["circle", "square"] = "circle"
    area: float = Field(0.2, gt=0, lt=1, description="fraction of the image at scale 1")
    scale: tuple[float, float] = (0.8, 1.2)
    rotation: float = Field(22.5, ge=0, le=180, description="degrees, drawn in [-r, r]")
    location: Literal["random", "center"] = "random"
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(0.1, gt=0)
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    parameterization: Literal["sigmoid", "clip"] = "sigmoid"
    loss: Literal["ce", "margin", "probability"] = "ce"
    kappa: float = Field(5.0, ge=0)
    steps: int = Field(500, gt=0)
    batch_size: int = Field(64, gt=0)
    progress: bool = True

    @field_validator("scale")
    @classmethod
    def _scale_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] <= value[1]:
            raise ValueError(f"scale must be [min, max] with 0 < min <= max, got {list(value)}")
        return value


class PatchEvaluationConfig(StrictModel):
    n: int | None = Field(1000, gt=0, description="test images (none of the target class)")
    areas: list[float] = Field(
        default_factory=lambda: [0.05, 0.1, 0.2, 0.3], description="the success-vs-area curve"
    )
    trials: int = Field(1, gt=0, description="random placements per image")
    batch_size: int = Field(256, gt=0)
    show: int = Field(8, ge=1, le=32, description="patched examples in the figure")

    @field_validator("areas")
    @classmethod
    def _areas(cls, value: list[float]) -> list[float]:
        bad = [a for a in value if not 0 < a < 1]
        if bad:
            raise ValueError(f"areas must be fractions in (0, 1), got {bad}")
        return value


class PatchRecipe(RecipeBase):
    """Train a universal adversarial patch against a classifier and measure it."""

    task: Literal["patch"]
    data: AttackData = Field(default_factory=AttackData)
    classifier: AttackedModelConfig = Field(default_factory=AttackedModelConfig)
    produced_by: str | None = Field(
        None, description="the recipe that writes classifier.path, named when it is missing"
    )
    patch: PatchConfig = Field(default_factory=PatchConfig)
    evaluation: PatchEvaluationConfig = Field(default_factory=PatchEvaluationConfig)


class PatchTask(AttackedModelTask):
    """Train a universal adversarial patch toward a class (Brown et al. 2017) and measure it."""

    schema = PatchRecipe
    recipe: PatchRecipe
    main_only = True

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        ctx, r, model, test = self.ctx, self.recipe, self.model, self.test
        p, e = r.patch, r.evaluation
        x_test, y_test = test.get_batch(torch.arange(len(test)))
        right = correct(model, x_test.to(ctx.device), y_test.to(ctx.device), e.batch_size)
        clean = int(right.sum()) / len(x_test)
        ctx.print(
            f"patch toward class {p.target}: {p.shape}, area {p.area:g}, {p.steps} steps of "
            f"{p.batch_size} on {self.train_set.name} ({len(self.train_set)} images); clean "
            f"accuracy {clean:.4f}"
        )
        attack = AdversarialPatch(model, seed=r.seed, device=ctx.device, **p.model_dump())
        started = time.perf_counter()
        attack.fit(self.train_set)
        fit_seconds = time.perf_counter() - started
        for step in range(0, len(attack.history), max(1, len(attack.history) // 50)):
            ctx.tracker.log_metrics({"patch/loss": attack.history[step]}, step=step)
        result = attack.evaluate(
            test, n=e.n, areas=e.areas, trials=e.trials, batch_size=e.batch_size
        )
        for path in (attack.save(ctx.out / "patch.png"), attack.save(ctx.out / "patch.pt")):
            ctx.log_file(path, "patch")
        ctx.save_figure(result.curve_figure(), "success_vs_area")
        order = torch.randperm(len(y_test), generator=torch.Generator().manual_seed(r.seed))
        keep = order[y_test[order] != p.target][: e.show]
        figure = attack.figure(x_test[keep], y_test[keep], seed=r.seed)
        ctx.save_figure(figure, "patched_examples")
        (ctx.out / "patch.json").write_text(json.dumps(result.to_dict(), indent=2))
        ctx.log_file(ctx.out / "patch.json")
        metrics = {"clean_accuracy": clean, "fit_seconds": fit_seconds, **result.metrics()}
        table = [("area", "success", "random-noise control")]
        table.append((f"{p.area:g} (trained)", f"{result.success:.4f}", f"{result.control:.4f}"))
        table += [(f"{a:g}", f"{s:.4f}", f"{c:.4f}") for a, s, c in result.curve]
        details = {
            "patch": {"png": str(ctx.out / "patch.png"), "tensor": str(ctx.out / "patch.pt")},
            "evaluation": result.to_dict(),
        }
        return TaskOutput(metrics, details, table)
