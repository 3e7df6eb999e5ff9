"""The ``pixelda`` task: PixelDA on one source -> target pair, beside DANN-family baselines.

Trains :class:`adapt.PixelDA` through :class:`gan.Trainer`, logs a grid of
source -> adapted images (fixed source images and fixed noise) as training
goes, then evaluates the final model: target accuracy of the task classifier,
accuracy on adapted source images, target entropy and domain separability;
writes a noise-sweep grid (one source image, several z), a confusion matrix
and the exported classifier. Baselines (``baselines.methods``) are trained
with the ``dann`` task's code on the same data.
"""

from __future__ import annotations

import torch
from counterfeit.adapt.evaluate import accuracy, domain_separability, mean_entropy, predict
from counterfeit.adapt.pixelda import PixelDA
from counterfeit.gan.data.augment import Augment
from counterfeit.gan.data.loaders import InfiniteLoader, ZipLoader
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.export import export_classifier
from counterfeit.gan.plots import confusion_matrix_figure, curves_figure, save_image_grid
from counterfeit.gan.train import Callback, EvalCallback, Trainer
from counterfeit.recipes.run import RunContext, TaskOutput
from counterfeit.recipes.schema import DANNRecipe, DANNTrainConfig, EvaluationConfig, PixelDARecipe
from counterfeit.recipes.tasks import dann
from counterfeit.recipes.translate import translate_dataset

GRID_COLUMNS = 10
NOISE_SWEEP = 8


def build_model(recipe: PixelDARecipe, domains: dict[str, ImageTensors]) -> PixelDA:
    m = recipe.model
    return PixelDA(
        domains["source_train"].shape,
        domains["target_train"].shape,
        dann.num_classes_of(domains),
        **m.model_dump(),
    )


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


def run(ctx: RunContext) -> TaskOutput:
    recipe: PixelDARecipe = ctx.recipe
    domains = dann.load_domains(recipe.data)
    ctx.print(dann.describe(domains, recipe.data))
    torch.manual_seed(recipe.seed)
    model = build_model(recipe, domains)
    sources = fixed_examples(domains["source_test"])
    grid = TranslationGrid(ctx, model, sources, recipe.samples_every or 0)
    result = _trainer(ctx, recipe, model, domains, grid).fit(
        resume=ctx.resume and ctx.checkpoint_path("pixelda").is_file()
    )
    baseline_output = _baselines(ctx, recipe, domains)
    if not ctx.dist.is_main:
        return TaskOutput({})
    output = _report(ctx, recipe, model, result, domains, grid)
    if baseline_output is not None:
        output.metrics.update(baseline_output.metrics)
        output.details.update(baseline_output.details)
        output.table.extend(
            (row[0], row[1], row[2], row[3], "-", row[4]) for row in baseline_output.table[1:]
        )
    return output


def _trainer(ctx, recipe: PixelDARecipe, model: PixelDA, domains, grid: TranslationGrid) -> Trainer:
    t = recipe.train
    shard = dict(rank=ctx.dist.rank, world_size=ctx.dist.world_size)
    augment = Augment(recipe.data.augment) if recipe.data.augment != "none" else None
    data = ZipLoader(
        InfiniteLoader(
            domains["source_train"], t.batch_size, seed=recipe.seed, transform=augment, **shard
        ),
        InfiniteLoader(
            domains["target_train"].unlabeled(), t.batch_size, seed=recipe.seed + 1, **shard
        ),
    )
    target_val = domains["target_test"].take(dann.EVAL_SUBSET)
    callbacks: list[Callback] = [grid] if recipe.samples_every else []
    if t.eval_every and target_val.has_labels:
        callbacks.append(
            EvalCallback(
                lambda m: {"target_accuracy": accuracy(predict(m, target_val))}, t.eval_every
            )
        )
    return ctx.trainer(model, data, "pixelda", callbacks)


def _baselines(ctx: RunContext, recipe: PixelDARecipe, domains) -> TaskOutput | None:
    b = recipe.baselines
    if not b.methods:
        return None
    as_dann = DANNRecipe(
        name=f"{recipe.name}-baselines",
        task="dann",
        seed=recipe.seed,
        device=recipe.device,
        data=recipe.data,
        model=b.model,
        methods=b.methods,
        evaluation=EvaluationConfig(batch_size=recipe.evaluation.batch_size, embedding="none"),
        train=DANNTrainConfig(
            steps=b.steps,
            batch_size=b.batch_size,
            log_every=recipe.train.log_every,
            checkpoint_every=recipe.train.checkpoint_every,
            amp=recipe.train.amp,
            progress=recipe.train.progress,
        ),
    )
    models, results = dann.train_methods(ctx, as_dann, domains)
    if not ctx.dist.is_main:
        return None
    return dann.report(ctx, as_dann, models, results, domains)


def _report(ctx, recipe: PixelDARecipe, model: PixelDA, result, domains, grid) -> TaskOutput:
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
    example = domains["target_test"].get_batch(torch.arange(2))[0].to(ctx.device)
    export = export_classifier(classifier, example, ctx.out / "models" / "pixelda.pt2")
    ctx.log_file(export, "models")
    final = save_image_grid(grid.grid(), ctx.out / "plots" / "adapted.png", nrow=len(grid.sources))
    ctx.log_file(final, "plots")
    sweep = _noise_sweep(model, grid.sources)
    path = save_image_grid(sweep, ctx.out / "plots" / "noise_sweep.png", nrow=len(grid.sources))
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
    points = [
        (s, v["eval/target_accuracy"]) for s, v in result.evaluations if "eval/target_accuracy" in v
    ]
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
            "steps": result.steps,
            "train_seconds": round(result.wall_time, 2),
            "steps_per_second": round(result.steps_per_second, 3),
            "stopped_early": result.stopped_early,
            "curve": points,
            "checkpoint": str(ctx.checkpoint_path("pixelda")),
            "model": str(export),
        }
    }
    table = [
        ("method", "source acc", "target acc", "target entropy", "adapted acc", "domain acc (PAD)"),
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
