"""The ``pixelda`` task: PixelDA on one source -> target pair, beside DANN-family baselines.

Trains :class:`adapt.PixelDA` through :class:`gan.Trainer`, logs a grid of
source -> adapted images (fixed source images and fixed noise) as training
goes, then evaluates the final model: target accuracy of the task classifier,
accuracy on adapted source images, target entropy and domain separability;
writes a noise-sweep grid (one source image, several z), a confusion matrix
and the exported classifier. Baselines (``baselines.methods``) are trained
as the ``dann`` task trains them, on the same data, for ``baselines.steps``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from counterfeit.adapt.evaluate import accuracy, domain_separability, mean_entropy, predict
from counterfeit.adapt.pixelda import PixelDA
from counterfeit.gan.callbacks import Callback, EvalCallback
from counterfeit.gan.data.loaders import ZipLoader
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.method import TrainingMethod
from counterfeit.gan.plots import confusion_matrix_figure, curves_figure, save_image_grid
from counterfeit.gan.train import Trainer, TrainResult
from counterfeit.recipes.context import RunContext, TaskOutput
from counterfeit.recipes.schema import (
    AdaptationData,
    DANNModelConfig,
    EvaluationConfig,
    RecipeBase,
    StrictModel,
    TrainConfig,
)
from counterfeit.recipes.tasks.base import Task
from counterfeit.recipes.tasks.common.adaptation import (
    EVAL_SUBSET,
    build_dann,
    describe,
    load_domains,
    num_classes_of,
    report_dann_methods,
    source_target_stream,
    translate_dataset,
)

NOISE_SWEEP = 8


class PixelDAModelConfig(StrictModel):
    """PixelDA hyper-parameters; defaults are the authors' released MNIST -> MNIST-M values."""

    preset: Literal["paper", "small"] = "paper"
    generator_filters: int | None = Field(None, gt=0)
    generator_blocks: int | None = Field(None, ge=0)
    discriminator_filters: int | None = Field(None, gt=0)
    noise_dims: int = Field(10, ge=0)
    domain_weight: float = Field(0.135603587834, ge=0)
    style_weight: float = Field(0.0113173311334, ge=0)
    task_in_g_weight: float = Field(0.0100959947002, ge=0)
    content_weight: float = Field(0.0, ge=0, description="masked pairwise-MSE content loss")
    content_threshold: float = Field(0.5, ge=0, le=1)
    lr: float = Field(1e-3, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    weight_decay: float = Field(1e-5, ge=0)
    lr_decay: float = Field(0.95, gt=0, le=1)
    lr_decay_every: int = Field(10_000, gt=0, description="our steps (one D + one G update)")
    noise_sigma: float = Field(0.2, ge=0)
    dropout: float = Field(0.1, ge=0, lt=1)


class BaselinesConfig(StrictModel):
    """DANN-family baselines trained on the same data, reported beside the main method.

    They train for ``steps`` at ``batch_size``, with the ``train`` block's cadence
    (logging, checkpoints, precision, progress) and no evaluation while training.
    """

    methods: list[Literal["source-only", "dann", "target-only"]] = Field(default_factory=list)
    steps: int = Field(3000, gt=0)
    batch_size: int = Field(32, gt=0)
    model: DANNModelConfig = DANNModelConfig()


class PixelDARecipe(RecipeBase):
    """Train PixelDA, log adaptation grids, evaluate on the target, compare with baselines."""

    task: Literal["pixelda"]
    data: AdaptationData
    model: PixelDAModelConfig = PixelDAModelConfig()
    train: TrainConfig
    samples_every: int | None = Field(500, gt=0, description="log a source -> adapted grid")
    baselines: BaselinesConfig = BaselinesConfig()
    evaluation: EvaluationConfig = EvaluationConfig()


def fixed_examples(dataset: ImageTensors, per_class: int = 1) -> torch.Tensor:
    """One image of each class (in class order), for grids that stay comparable over time."""
    picks = []
    for c in range(dataset.num_classes):
        idx = (dataset.labels == c).nonzero().flatten()[:per_class]
        picks.extend(idx.tolist())
    return dataset.get_batch(torch.tensor(picks))[0]


class TranslationGrid(Callback):
    """Every ``every`` steps: a grid of source images (top row) and G's adaptations below."""

    def __init__(self, ctx: RunContext, model: PixelDA, sources: torch.Tensor, every: int) -> None:
        self.ctx = ctx
        self.model = model
        self.every = every
        self.sources = sources
        self.z = model.generator.sample_noise(
            len(sources), generator=torch.Generator().manual_seed(0)
        )

    def grid(self) -> torch.Tensor:
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        adapted = self.model.translate(self.sources.to(device), self.z.to(device)).cpu()
        self.model.train(was_training)
        sources = self.sources
        if sources.shape[1] != adapted.shape[1]:
            sources = sources.expand(-1, adapted.shape[1], -1, -1)
        return torch.cat([sources, adapted])

    def on_step(self, trainer: Trainer, step: int) -> None:
        path = save_image_grid(
            self.grid(),
            self.ctx.out / "samples" / f"adapted_{step:06d}.png",
            nrow=len(self.sources),
        )
        self.ctx.log_file(path, "samples")


class PixelDATask(Task):
    """PixelDA with adaptation grids, then its DANN-family baselines."""

    schema = PixelDARecipe
    recipe: PixelDARecipe

    def prepare(self) -> None:
        self.domains = load_domains(self.recipe.data)
        self.ctx.print(describe(self.domains, self.recipe.data))

    def method_names(self) -> list[str]:
        return ["pixelda", *self.recipe.baselines.methods]

    def seed(self, name: str) -> None:
        """PixelDA reseeds torch alone (NumPy and Python go on from the run's start); the
        baselines start as the ``dann`` task's methods do."""
        if name == "pixelda":
            torch.manual_seed(self.recipe.seed)
        else:
            super().seed(name)

    def build(self, name: str) -> TrainingMethod:
        d = self.domains
        if name != "pixelda":
            return build_dann(self.recipe.baselines.model, name, d)
        model = PixelDA(
            d["source_train"].shape,
            d["target_train"].shape,
            num_classes_of(d),
            source_spec=self.recipe.data.source.model_dump(mode="json"),
            **self.recipe.model.model_dump(),
        )
        sources = fixed_examples(d["source_test"])
        self.grid = TranslationGrid(self.ctx, model, sources, self.recipe.samples_every or 0)
        return model

    def train_config(self, name: str) -> TrainConfig:
        if name == "pixelda":
            return self.recipe.train
        b = self.recipe.baselines
        return self.recipe.train.model_copy(
            update={"steps": b.steps, "batch_size": b.batch_size, "eval_every": None}
        )

    def data(self, name: str, method: TrainingMethod) -> ZipLoader:
        r = self.recipe
        batch = self.train_config(name).batch_size
        labelled = name == "target-only"
        return source_target_stream(self.ctx, self.domains, r.data, batch, r.seed, labelled)

    def callbacks(self, name: str, method: TrainingMethod, data: Any) -> list[Callback]:
        if name != "pixelda":
            return []
        t = self.recipe.train
        source_val = self.domains["source_test"].take(EVAL_SUBSET)
        callbacks: list[Callback] = [self.grid] if self.recipe.samples_every else []
        if t.eval_every:  # label-free: the target's test labels are read by the report only
            callbacks.append(
                EvalCallback(
                    lambda m: {"source_accuracy": accuracy(predict(m, source_val))}, t.eval_every
                )
            )
        return callbacks

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        baselines = {name: m for name, m in self.methods.items() if name != "pixelda"}
        compared = None
        if baselines:
            evaluation = EvaluationConfig(
                batch_size=self.recipe.evaluation.batch_size, embedding="none"
            )
            compared = report_dann_methods(
                self.ctx, baselines, results, self.domains, evaluation, self.recipe.seed
            )
        output = self._report_pixelda(results["pixelda"])
        if compared is not None:
            output.metrics.update(compared.metrics)
            output.details.update(compared.details)
            output.table.extend((r[0], r[1], r[2], r[3], "-", r[4]) for r in compared.table[1:])
        return output

    def _report_pixelda(self, result: TrainResult) -> TaskOutput:
        recipe, domains, ctx = self.recipe, self.domains, self.ctx
        model: PixelDA = self.methods["pixelda"]  # type: ignore[assignment]
        bs = recipe.evaluation.batch_size
        classifier = model.classifier()
        adapted = translate_dataset(model, domains["source_test"], bs, recipe.seed)
        target = predict(classifier, domains["target_test"], bs)
        source = predict(source_classifier(model), domains["source_test"], bs)
        on_adapted = predict(classifier, adapted, bs)
        feature_net = torch.nn.Sequential(*list(classifier)[:-1], *list(model.task.shared)[:-1])
        f_adapted = predict(feature_net, adapted, bs).logits
        f_target = predict(feature_net, domains["target_test"], bs).logits
        metrics = {
            "source_accuracy": accuracy(source),
            "adapted_accuracy": accuracy(on_adapted),
            "target_entropy": mean_entropy(target.logits),
            **domain_separability(f_adapted, f_target, recipe.seed),
        }
        if domains["target_test"].has_labels:
            metrics["target_accuracy"] = accuracy(target)
        export = ctx.export(classifier, domains["target_test"], "pixelda")
        sources = self.grid.sources
        final = save_image_grid(self.grid.grid(), ctx.out / "plots" / "adapted.png", len(sources))
        ctx.log_file(final, "plots")
        sweep = _noise_sweep(model, sources)
        path = save_image_grid(sweep, ctx.out / "plots" / "noise_sweep.png", nrow=len(sources))
        ctx.log_file(path, "plots")
        if domains["target_test"].has_labels:
            ctx.save_figure(
                confusion_matrix_figure(
                    target.labels.numpy(),
                    target.predicted.numpy(),
                    model.num_classes,
                    "pixelda on target test",
                ),
                "confusion_pixelda",
            )
        key = "eval/target_accuracy"
        points = [(s, v[key]) for s, v in result.evaluations if key in v]
        if points:
            ctx.save_figure(
                curves_figure(
                    {"pixelda target accuracy": points}, "PixelDA during training", "accuracy"
                ),
                "pixelda_curve",
            )
        details = {
            "pixelda": {
                "metrics": metrics,
                "preset": model.preset,
                "hparams": model.hparams,
                **ctx.train_record("pixelda", result),
                "curve": points,
                "model": str(export),
            }
        }
        table = [
            (
                "method",
                "source acc",
                "target acc",
                "target entropy",
                "adapted acc",
                "domain acc (PAD)",
            ),
            (
                "pixelda",
                f"{metrics['source_accuracy']:.4f}",
                f"{metrics['target_accuracy']:.4f}" if "target_accuracy" in metrics else "n/a",
                f"{metrics['target_entropy']:.3f}",
                f"{metrics['adapted_accuracy']:.4f}",
                f"{metrics['domain_accuracy']:.3f} ({metrics['proxy_a_distance']:.2f})",
            ),
        ]
        return TaskOutput({f"pixelda/{k}": v for k, v in metrics.items()}, details, table)


def source_classifier(model: PixelDA) -> torch.nn.Module:
    """T's source branch as a [0, 1]-input classifier (what T learned on raw source images)."""
    return torch.nn.Sequential(model.classifier()[0], model.task.source_private, model.task.shared)


@torch.no_grad()
def _noise_sweep(model: PixelDA, sources: torch.Tensor) -> torch.Tensor:
    """Rows of the same source images under NOISE_SWEEP different z."""
    device = next(model.parameters()).device
    model.eval()
    generator = torch.Generator().manual_seed(1)
    rows = [sources.expand(-1, model.target_shape[0], -1, -1).cpu()]
    for _ in range(NOISE_SWEEP):
        z = model.generator.sample_noise(len(sources), generator=generator)
        rows.append(model.translate(sources.to(device), z.to(device)).cpu())
    return torch.cat(rows)
