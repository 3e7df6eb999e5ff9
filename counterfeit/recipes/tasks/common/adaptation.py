"""What the adaptation tasks (``dann``, ``pixelda``, ``cyclegan``) share.

The source/target domains and their batch streams, DANN-family methods (``dann``,
``source-only``, ``target-only``: the ``dann`` task's methods and ``pixelda``'s
baselines) with their evaluation, and translating a dataset with a trained generator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from counterfeit.adapt.dann import DANN
from counterfeit.adapt.evaluate import AdaptationReport, accuracy, evaluate_adaptation, predict
from counterfeit.gan.data.augment import Augment
from counterfeit.gan.data.domains import build_domain
from counterfeit.gan.data.loaders import InfiniteLoader, ZipLoader
from counterfeit.gan.data.tensors import ImageTensors, sample_indices
from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.plots import (
    confusion_matrix_figure,
    curves_figure,
    embedding_figure,
    labelled_grid_figure,
)
from counterfeit.gan.progress import is_live
from counterfeit.gan.train import TrainResult
from counterfeit.recipes.context import RunContext, TaskOutput
from counterfeit.recipes.schema import AdaptationData, DANNModelConfig, EvaluationConfig

EVAL_SUBSET = 1000  # test images scored while training

Domains = dict[str, ImageTensors]  # source_train, source_test, target_train, target_test

# -- data -------------------------------------------------------------------------------


def load_domains(data: AdaptationData, need_target_labels: bool = False) -> Domains:
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


def describe(domains: Domains, data: AdaptationData) -> str:
    """One line on the domains' sizes and image shape."""
    return (
        f"source {data.source.name}: {len(domains['source_train'])} train / "
        f"{len(domains['source_test'])} test; target {data.target.name}: "
        f"{len(domains['target_train'])} train / {len(domains['target_test'])} test; "
        f"images {domains['source_train'].shape}"
    )


def num_classes_of(domains: Domains) -> int:
    return max(domains["source_train"].num_classes, domains["source_test"].num_classes)


def data_mean(*datasets: ImageTensors, limit: int = 5000) -> list[float]:
    """Per-channel mean pixel of the given datasets (the paper's mean subtraction), over at
    most ``limit`` images of each: a random sample (an image folder is sorted by class)."""
    images = torch.cat([d.take(limit).images for d in datasets])
    return images.float().div_(255).mean(dim=(0, 2, 3)).tolist()


def source_target_stream(
    ctx: RunContext,
    domains: Domains,
    data: AdaptationData,
    batch_size: int,
    seed: int,
    target_labels: bool = False,
) -> ZipLoader:
    """(source batch, target batch) per step, source batches augmented by ``data.augment``;
    the target's labels are hidden unless ``target_labels``."""
    shard = dict(rank=ctx.dist.rank, world_size=ctx.dist.world_size)
    augment = Augment(data.augment) if data.augment != "none" else None
    target = domains["target_train"] if target_labels else domains["target_train"].unlabeled()
    return ZipLoader(
        InfiniteLoader(domains["source_train"], batch_size, seed=seed, transform=augment, **shard),
        InfiniteLoader(target, batch_size, seed=seed + 1, **shard),
    )


@torch.no_grad()
def translate_dataset(
    model: nn.Module,
    dataset: ImageTensors,
    batch_size: int = 256,
    seed: int = 0,
    progress: bool = False,
) -> ImageTensors:
    """Push every image through ``model.translate`` (fresh noise per image, seeded); with
    ``progress``, a bar on a terminal."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    out = []
    starts = range(0, len(dataset), batch_size)
    for start in tqdm(starts, desc="translate", disable=not (progress and is_live())):
        x, _ = dataset.get_batch(torch.arange(start, min(start + batch_size, len(dataset))))
        out.append(model.translate(x.to(device)).cpu())
    model.train(was_training)
    images = (torch.cat(out) * 255).round().clamp(0, 255).to(torch.uint8)
    return ImageTensors(images, dataset.labels.clone(), f"{dataset.name}->adapted")


# -- DANN-family methods ----------------------------------------------------------------


def build_dann(model: DANNModelConfig, mode: str, domains: Domains) -> DANN:
    """A DANN-family method for the domains (Ganin et al. 2016); ``input_mean: data``
    subtracts the channel mean of both training sets, the paper's preprocessing."""
    mean = (
        data_mean(domains["source_train"], domains["target_train"])
        if model.input_mean == "data"
        else model.input_mean
    )
    return DANN(
        domains["source_train"].shape,
        num_classes_of(domains),
        mode=mode,  # type: ignore[arg-type]
        input_mean=mean,
        **model.model_dump(exclude={"input_mean"}),
    )


def report_dann_methods(
    ctx: RunContext,
    models: dict[str, DANN],
    results: dict[str, TrainResult],
    domains: Domains,
    evaluation: EvaluationConfig,
    seed: int,
    selections: dict[str, dict[str, Any]] | None = None,
) -> TaskOutput:
    """Evaluate, export and plot trained DANN-family methods; the table printed at the end.

    ``selections`` (method -> :func:`adapt.selection.selection_summary`) adds the
    selected, final-checkpoint and oracle target accuracies; the models hold the selected
    weights already.
    """
    selections = selections or {}
    num_classes = num_classes_of(domains)
    metrics: dict[str, float] = {}
    details: dict[str, dict] = {}
    reports: dict[str, AdaptationReport] = {}
    for method, model in models.items():
        report = evaluate_adaptation(
            *model.evaluated_nets(),
            domains["source_test"],
            domains["target_test"],
            num_classes,
            evaluation.batch_size,
            seed,
        )
        reports[method] = report
        if model.average is not None:
            report.metrics.update(last_iterate_accuracy(model, domains))
        report.metrics.update(_selection_metrics(selections.get(method)))
        metrics.update({f"{method}/{k}": v for k, v in report.metrics.items()})
        export = ctx.export(model.classifier(), domains["source_test"], method)
        warning = did_not_learn(method, report.metrics["source_accuracy"], num_classes)
        details[method] = {
            "metrics": report.metrics,
            "target_per_class_accuracy": report.target_per_class,
            **ctx.train_record(method, results[method]),
            "warning": warning,
            "model": str(export),
        }
        if method in selections:
            details[method]["selection"] = selections[method]
        if warning:
            ctx.print(f"warning: {warning}")
        labelled = domains["target_test"].has_labels
        shown = report.target if labelled else report.source
        ctx.save_figure(
            confusion_matrix_figure(
                shown.labels.numpy(),
                shown.predicted.numpy(),
                num_classes,
                f"{method} on {'target' if labelled else 'source'} test",
            ),
            f"confusion_{method}",
        )
    _plots(ctx, results, reports, domains, evaluation, seed, selections)
    if selections:
        return TaskOutput(metrics, {"models": details}, _selection_table(reports, selections))
    table = [("method", "source acc", "target acc", "target entropy", "domain acc (PAD)")]
    for method, report in reports.items():
        m = report.metrics
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


def _selection_metrics(summary: dict[str, Any] | None) -> dict[str, float]:
    """The step a validator chose and, where the test set is labelled, the final
    checkpoint's and the oracle's target accuracy beside the chosen one's."""
    if summary is None:
        return {}
    keys = ("selected_step", "final_target_accuracy", "oracle_target_accuracy")
    return {k: float(summary[k]) for k in keys if k in summary}


def _selection_table(
    reports: dict[str, AdaptationReport], selections: dict[str, dict[str, Any]]
) -> list[tuple[str, ...]]:
    """Method rows: source accuracy, then target accuracy selected / final / oracle."""
    table = [
        (
            "method",
            "source acc",
            "selected target acc",
            "final target acc",
            "oracle target acc (not selectable)",
            "validator (step)",
        )
    ]
    for method, report in reports.items():
        m, s = report.metrics, selections.get(method, {})

        def value(key: str, metrics: dict = m) -> str:
            return f"{metrics[key]:.4f}" if key in metrics else "n/a"

        choice = f"{s['validator']} ({s['selected_step']})" if s else "none"
        table.append(
            (
                method,
                value("source_accuracy"),
                value("target_accuracy"),
                value("final_target_accuracy"),
                value("oracle_target_accuracy"),
                choice,
            )
        )
    return table


def last_iterate_accuracy(model: DANN, domains: Domains) -> dict[str, float]:
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


def did_not_learn(method: str, source_accuracy: float, num_classes: int) -> str | None:
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


def _plots(
    ctx: RunContext,
    results: dict[str, TrainResult],
    reports: dict[str, AdaptationReport],
    domains: Domains,
    evaluation: EvaluationConfig,
    seed: int,
    selections: dict[str, dict[str, Any]],
) -> None:
    """The domains side by side, the feature embedding per method, accuracy curves (the
    target's read after training, from the kept checkpoints).

    Every subset shown is a random sample drawn with ``seed`` (:func:`sample_indices`).
    """
    shown = min(10, len(domains["source_test"]), len(domains["target_test"]))
    source, source_labels = domain_examples(domains["source_test"], shown, seed)
    target, target_labels = domain_examples(domains["target_test"], shown, seed)
    titles = [f"source {int(y)}" for y in source_labels] + [
        f"target {int(y)}" if y >= 0 else "target" for y in target_labels
    ]
    grid = torch.cat([source, target])
    ctx.save_figure(
        labelled_grid_figure(grid, titles, shown, "source (top) vs target (bottom)"), "domains"
    )
    if evaluation.embedding != "none":
        panels = embedding_panels(reports, evaluation.embedding_points, seed)
        ctx.save_figure(embedding_figure(panels, evaluation.embedding, seed), "embedding")
    curves = {}
    for method, result in results.items():
        for key in ("eval/source_accuracy", "eval/target_accuracy"):
            points = [(step, values[key]) for step, values in result.evaluations if key in values]
            if points:
                curves[f"{method} {key.split('/')[1].replace('_', ' ')}"] = points
        checkpoints = selections.get(method, {}).get("checkpoints", [])
        if checkpoints:
            points = [(c["step"], c["target_accuracy"]) for c in checkpoints]
            curves[f"{method} target accuracy (after training)"] = points
    if curves:
        ctx.save_figure(
            curves_figure(curves, "accuracy during training", "accuracy"), "accuracy_curves"
        )


def domain_examples(dataset: ImageTensors, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images (float, [0, 1]) of a random sample drawn with ``seed``, and their labels."""
    sample = dataset.take(n, seed)
    return sample.get_batch(torch.arange(len(sample)))


def embedding_panels(
    reports: dict[str, AdaptationReport], n: int, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per method: source features and labels, target features and labels, of at most ``n``
    test images per side drawn at random with ``seed`` (the same images for every method)."""
    panels = {}
    for method in [m for m in ("source-only", "dann", "target-only") if m in reports]:
        r = reports[method]
        s = sample_indices(len(r.source.labels), n, seed)
        t = sample_indices(len(r.target.labels), n, seed)
        panels[method] = (
            r.source.features[s].numpy(),
            r.source.labels[s].numpy(),
            r.target.features[t].numpy(),
            r.target.labels[t].clamp(min=0).numpy(),
        )
    return panels
