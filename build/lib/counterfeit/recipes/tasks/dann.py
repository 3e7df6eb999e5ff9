"""The ``dann`` task: DANN and its baselines on one source -> target pair.

Trains every method listed in the recipe (``dann``, ``source-only``,
``target-only``) from the same seed through :class:`gan.Trainer`, then
evaluates the final models (no checkpoint selection on target labels; a
collapse guard, ``train.collapse_drop``, keeps the weights from before a fall
of source validation accuracy and stops): source and target accuracy,
per-class target accuracy, target prediction entropy and domain separability;
plots confusion matrices, a before/after feature embedding and evaluation
curves; exports each classifier with ``torch.export``.
"""

from __future__ import annotations

import torch
from counterfeit.adapt.dann import DANN
from counterfeit.adapt.evaluate import accuracy, evaluate_adaptation, predict
from counterfeit.gan.data.augment import Augment
from counterfeit.gan.data.domains import build_domain
from counterfeit.gan.data.loaders import InfiniteLoader, ZipLoader
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.export import export_classifier
from counterfeit.gan.plots import (
    confusion_matrix_figure,
    curves_figure,
    embedding_figure,
    labelled_grid_figure,
)
from counterfeit.gan.runtime import seed_everything
from counterfeit.gan.train import CollapseStop, EvalCallback, Trainer, TrainResult
from counterfeit.recipes.run import RunContext, TaskOutput
from counterfeit.recipes.schema import AdaptationData, DANNRecipe

EVAL_SUBSET = 1000


def load_domains(data: AdaptationData, need_target_labels: bool = False) -> dict[str, ImageTensors]:
    """Source/target train/test sets at the recipe's image shape, checked for use."""
    domains = {
        f"{side}_{split}": build_domain(spec, split, data.image_size, data.channels)
        for side, spec in (("source", data.source), ("target", data.target))
        for split in ("train", "test")
    }
    if not domains["source_train"].has_labels:
        raise DataError(
            f"the source domain '{data.source.name}' has no labels; adaptation needs them."
        )
    if need_target_labels and not domains["target_train"].has_labels:
        raise ConfigError(
            f"method 'target-only' needs target labels, but '{data.target.name}' has none."
        )
    return domains


def describe(domains: dict[str, ImageTensors], data: AdaptationData) -> str:
    return (
        f"source {data.source.name}: {len(domains['source_train'])} train / "
        f"{len(domains['source_test'])} test; target {data.target.name}: "
        f"{len(domains['target_train'])} train / {len(domains['target_test'])} test; "
        f"images {domains['source_train'].shape}"
    )


def num_classes_of(domains: dict[str, ImageTensors]) -> int:
    return max(domains["source_train"].num_classes, domains["source_test"].num_classes)


def data_mean(*datasets: ImageTensors, limit: int = 5000) -> list[float]:
    """Per-channel mean pixel of the given datasets (the paper's mean subtraction)."""
    images = torch.cat([d.images[:limit] for d in datasets])
    return images.float().div_(255).mean(dim=(0, 2, 3)).tolist()


def build_model(recipe: DANNRecipe, method: str, in_shape, num_classes, mean) -> DANN:
    m = recipe.model
    return DANN(
        in_shape,
        num_classes,
        mode=method,  # type: ignore[arg-type]
        backbone=m.backbone,
        backbone_weights=m.backbone_weights,
        input_mean=mean,
        lr=m.lr,
        momentum=m.momentum,
        weight_decay=m.weight_decay,
        lr_schedule=m.lr_schedule,
        alpha=m.alpha,
        beta=m.beta,
        gamma=m.gamma,
        lambda_max=m.lambda_max,
        domain_weight=m.domain_weight,
        ema_decay=m.ema_decay,
    )


def run(ctx: RunContext) -> TaskOutput:
    recipe: DANNRecipe = ctx.recipe
    domains = load_domains(recipe.data, need_target_labels="target-only" in recipe.methods)
    ctx.print(describe(domains, recipe.data))
    models, results = train_methods(ctx, recipe, domains)
    if not ctx.dist.is_main:
        return TaskOutput({})
    return report(ctx, recipe, models, results, domains)


def train_methods(
    ctx: RunContext, recipe: DANNRecipe, domains: dict[str, ImageTensors]
) -> tuple[dict[str, DANN], dict[str, TrainResult]]:
    """Train each of ``recipe.methods`` from the same seed (resuming where checkpoints exist)."""
    in_shape = domains["source_train"].shape
    mean = (
        data_mean(domains["source_train"], domains["target_train"])
        if recipe.model.input_mean == "data"
        else recipe.model.input_mean
    )
    models: dict[str, DANN] = {}
    results: dict[str, TrainResult] = {}
    for method in recipe.methods:
        seed_everything(recipe.seed)
        model = build_model(recipe, method, in_shape, num_classes_of(domains), mean)
        trainer = _trainer(ctx, recipe, method, model, domains)
        checkpoint = ctx.checkpoint_path(method)
        results[method] = trainer.fit(resume=ctx.resume and checkpoint.is_file())
        if results[method].stopped_early:
            ctx.print(f"{method}: stopped early: {results[method].stopped_early}")
        models[method] = model
    return models, results


def _trainer(ctx, recipe: DANNRecipe, method: str, model: DANN, domains) -> Trainer:
    t = recipe.train
    target = (
        domains["target_train"] if method == "target-only" else domains["target_train"].unlabeled()
    )
    shard = dict(rank=ctx.dist.rank, world_size=ctx.dist.world_size)
    augment = Augment(recipe.data.augment) if recipe.data.augment != "none" else None
    data = ZipLoader(
        InfiniteLoader(
            domains["source_train"], t.batch_size, seed=recipe.seed, transform=augment, **shard
        ),
        InfiniteLoader(target, t.batch_size, seed=recipe.seed + 1, **shard),
    )
    source_val = domains["source_test"].take(EVAL_SUBSET)
    target_val = domains["target_test"].take(EVAL_SUBSET)

    def evaluate(m: DANN) -> dict[str, float]:
        values = {"source_accuracy": accuracy(predict(m, source_val))}
        if target_val.has_labels:
            values["target_accuracy"] = accuracy(predict(m, target_val))
        return values

    callbacks = [EvalCallback(evaluate, t.eval_every, prefix="eval/")] if t.eval_every else []
    if t.eval_every and t.collapse_drop is not None:
        callbacks.append(collapse_guard(source_val, t.eval_every, t.collapse_drop))
    return ctx.trainer(model, data, method, callbacks)


def collapse_guard(source_val: ImageTensors, every: int, drop: float) -> CollapseStop:
    """Stop DANN when source validation accuracy falls by more than ``drop`` between checks.

    The adversarial game can collapse (measured on MNIST -> MNIST-M: class loss at
    chance and every digit one class, 1k steps after reaching 0.72 target accuracy);
    source accuracy shows it without any target label. The weights of the previous
    check are restored and training stops.
    """
    return CollapseStop(
        lambda m: accuracy(predict(m, source_val)),
        every,
        drop=drop,
        name=None,  # the evaluation callback logs the same accuracy
        what="source validation accuracy",
    )


def report(ctx: RunContext, recipe: DANNRecipe, models, results, domains) -> TaskOutput:
    """Evaluate, export and plot the trained models; the table printed at the end."""
    num_classes = num_classes_of(domains)
    metrics: dict[str, float] = {}
    details: dict[str, dict] = {}
    reports = {}
    for method, model in models.items():
        evaluation = evaluate_adaptation(
            *model.evaluated_nets(),
            domains["source_test"],
            domains["target_test"],
            num_classes,
            recipe.evaluation.batch_size,
            recipe.seed,
        )
        reports[method] = evaluation
        if model.average is not None:
            evaluation.metrics.update(_last_iterate_accuracy(model, domains))
        metrics.update({f"{method}/{k}": v for k, v in evaluation.metrics.items()})
        example = domains["source_test"].get_batch(torch.arange(2))[0].to(ctx.device)
        export = export_classifier(
            model.classifier(), example, ctx.out / "models" / f"{method}.pt2"
        )
        ctx.log_file(export, "models")
        details[method] = {
            "metrics": evaluation.metrics,
            "target_per_class_accuracy": evaluation.target_per_class,
            "steps": results[method].steps,
            "stopped_early": results[method].stopped_early,
            "warning": _did_not_learn(method, evaluation.metrics["source_accuracy"], num_classes),
            "train_seconds": round(results[method].wall_time, 2),
            "steps_per_second": round(results[method].steps_per_second, 2),
            "checkpoint": str(ctx.checkpoint_path(method)),
            "model": str(export),
        }
        if details[method]["warning"]:
            ctx.print(f"warning: {details[method]['warning']}")
        labelled = domains["target_test"].has_labels
        shown = evaluation.target if labelled else evaluation.source
        ctx.save_figure(
            confusion_matrix_figure(
                shown.labels.numpy(),
                shown.predicted.numpy(),
                num_classes,
                f"{method} on {'target' if labelled else 'source'} test",
            ),
            f"confusion_{method}",
        )
    _plots(ctx, recipe, models, results, reports, domains)
    table = [("method", "source acc", "target acc", "target entropy", "domain acc (PAD)")]
    for method, evaluation in reports.items():
        m = evaluation.metrics
        table.append(
            (
                method,
                f"{m['source_accuracy']:.4f}",
                f"{m['target_accuracy']:.4f}" if "target_accuracy" in m else "n/a (no labels)",
                f"{m['target_entropy']:.3f}",
                f"{m['domain_accuracy']:.3f} ({m['proxy_a_distance']:.2f})",
            )
        )
    return TaskOutput(metrics, {"models": details}, table)


def _last_iterate_accuracy(model: DANN, domains: dict[str, ImageTensors]) -> dict[str, float]:
    """Accuracy of the live weights, beside the weight average's (what averaging bought)."""
    values = {}
    for side in ("source", "target"):
        test = domains[f"{side}_test"]
        if test.has_labels:
            predictions = predict(
                model, test, feature_extractor=model.features, head=model.label_predictor
            )
            values[f"last_iterate_{side}_accuracy"] = accuracy(predictions)
    return values


def _did_not_learn(method: str, source_accuracy: float, num_classes: int) -> str | None:
    """A label-free warning when the classifier never learned the source task.

    The collapse guard catches a fall; this catches a run that never rose (measured:
    colourful, elastically warped synthetic digits, where the domain loss won from the
    start and source accuracy stayed at chance for all 3,000 steps).
    """
    chance = 1 / num_classes
    if source_accuracy >= 2 * chance:
        return None
    message = (
        f"{method} did not learn the source task: source accuracy {source_accuracy:.3f} "
        f"(chance {chance:.3f})."
    )
    if method == "dann":
        message += " The domain loss may dominate: try a lower model.lambda_max or model.lr."
    return message


def _plots(ctx: RunContext, recipe: DANNRecipe, models, results, reports, domains) -> None:
    grid = torch.cat(
        [
            domains["source_test"].get_batch(torch.arange(10))[0],
            domains["target_test"].get_batch(torch.arange(10))[0],
        ]
    )
    titles = [f"source {int(y)}" for y in domains["source_test"].labels[:10]] + [
        f"target {int(y)}" if y >= 0 else "target" for y in domains["target_test"].labels[:10]
    ]
    ctx.save_figure(
        labelled_grid_figure(grid, titles, 10, "source (top) vs target (bottom)"), "domains"
    )
    if recipe.evaluation.embedding != "none":
        order = [m for m in ("source-only", "dann", "target-only") if m in reports]
        n = recipe.evaluation.embedding_points
        panels = {}
        for method in order:
            r = reports[method]
            panels[method] = (
                r.source.features[:n].numpy(),
                r.source.labels[:n].numpy(),
                r.target.features[:n].numpy(),
                r.target.labels[:n].clamp(min=0).numpy(),
            )
        ctx.save_figure(
            embedding_figure(panels, recipe.evaluation.embedding, recipe.seed), "embedding"
        )
    curves = {}
    for method, result in results.items():
        for key in ("eval/source_accuracy", "eval/target_accuracy"):
            points = [(step, values[key]) for step, values in result.evaluations if key in values]
            if points:
                curves[f"{method} {key.split('/')[1].replace('_', ' ')}"] = points
    if curves:
        ctx.save_figure(
            curves_figure(curves, "accuracy during training", "accuracy"), "accuracy_curves"
        )
