"""The robustness tasks.

``robust-train`` (recipes ``digits-fgsm``, ``digits-adversarial-training``):
train a classifier per listed method (``standard``, ``fgsm``, ``fgsm-rs``)
from the same seed through :class:`gan.Trainer`, export each as ``.pt2``,
evaluate each with :func:`robust.evaluate` on the test split and plot the
eps curves side by side.

``robustness`` (recipe ``adapted-robustness`` and ``counterfeit
robustness``): evaluate a saved classifier (``.pt2``, TorchScript or a
state_dict with ``arch``) under attacks and corruptions.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from counterfeit.gan.data.domains import build_domain, domain_names
from counterfeit.gan.data.loaders import InfiniteLoader
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import CheckpointError, ConfigError, DataError
from counterfeit.gan.export import export_classifier
from counterfeit.gan.runtime import seed_everything
from counterfeit.gan.train import Trainer, TrainResult
from counterfeit.recipes.run import RunContext, TaskOutput
from counterfeit.recipes.tasks.robust_schema import (
    RobustEvaluationConfig,
    RobustnessRecipe,
    RobustTrainRecipe,
)
from counterfeit.robust.evaluate import evaluate
from counterfeit.robust.loading import detect_format, input_shape, load_model
from counterfeit.robust.models import build_model
from counterfeit.robust.normalize import Normalize, parse_normalize
from counterfeit.robust.report import RobustnessReport, compare_markdown, eps_curve_figure
from counterfeit.robust.training import AdversarialTraining, CatastrophicOverfittingStop

# -- robust-train ----------------------------------------------------------------


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


def run_training(ctx: RunContext) -> TaskOutput:
    recipe: RobustTrainRecipe = ctx.recipe
    d = recipe.data
    train = build_domain(d.dataset, "train", d.image_size, d.channels)
    test = build_domain(d.dataset, "test", d.image_size, d.channels)
    for split in (train, test):
        if not split.has_labels:
            raise DataError(f"{split.name} has no labels: robustness training needs them.")
    train, heldout = split_holdout(train, d.holdout, recipe.seed)
    num_classes = max(train.num_classes, test.num_classes)
    ctx.print(
        f"{d.dataset.name}: {len(train)} train / {len(heldout) if heldout else 0} held out / "
        f"{len(test)} test; images {train.shape}; methods {', '.join(recipe.methods)}"
    )
    methods: dict[str, AdversarialTraining] = {}
    results: dict[str, TrainResult] = {}
    for name in recipe.methods:
        seed_everything(recipe.seed)
        model = build_model(recipe.model.arch, d.channels, num_classes, d.image_size)
        method = _method(recipe, name, model)
        trainer = _trainer(ctx, recipe, name, method, train, heldout)
        checkpoint = ctx.checkpoint_path(name)
        results[name] = trainer.fit(resume=ctx.resume and checkpoint.is_file())
        if results[name].stopped_early:
            ctx.print(f"{name}: stopped early: {results[name].stopped_early}")
        methods[name] = method
    if not ctx.dist.is_main:
        return TaskOutput({})
    reports: dict[str, RobustnessReport] = {}
    details: dict[str, Any] = {}
    for name, method in methods.items():
        classifier = method.model.eval()
        example = test.get_batch(torch.arange(2))[0].to(ctx.device)
        export = export_classifier(classifier, example, ctx.out / "models" / f"{name}.pt2")
        ctx.log_file(export, "models")
        report = _evaluate(ctx, recipe.evaluation, classifier, test, name, recipe.seed)
        report.save(ctx.out / "robustness" / name, tracker=ctx.tracker, prefix=f"{name}/")
        reports[name] = report
        result = results[name]
        details[name] = {
            "steps": result.steps,
            "stopped_early": result.stopped_early,
            "train_seconds": round(result.wall_time, 2),
            "model": str(export),
            "report": str(ctx.out / "robustness" / name / "report.json"),
        }
    ctx.save_figure(eps_curve_figure(reports), "eps_curves")
    comparison = compare_markdown(reports)
    (ctx.out / "robustness.md").write_text(comparison)
    ctx.log_file(ctx.out / "robustness.md")
    metrics = {k: v for name, r in reports.items() for k, v in r.metrics(f"{name}/").items()}
    return TaskOutput(metrics, {"models": details}, _table(reports))


def _method(recipe: RobustTrainRecipe, name: str, model: torch.nn.Module) -> AdversarialTraining:
    a = recipe.adversarial
    return AdversarialTraining(
        model,
        method=name,  # type: ignore[arg-type]
        eps=a.eps,
        step_size=a.step_size,
        fgsm_weight=a.fgsm_weight,
        optimizer=a.optimizer,
        lr=a.lr,
        momentum=a.momentum,
        weight_decay=a.weight_decay,
        lr_schedule=a.lr_schedule,
        lr_peak=a.lr_peak,
    )


def _trainer(
    ctx: RunContext,
    recipe: RobustTrainRecipe,
    name: str,
    method: AdversarialTraining,
    train: ImageTensors,
    heldout: ImageTensors | None,
) -> Trainer:
    t, a = recipe.train, recipe.adversarial
    data = InfiniteLoader(
        train, t.batch_size, seed=recipe.seed, rank=ctx.dist.rank, world_size=ctx.dist.world_size
    )
    callbacks = []
    if name != "standard" and a.early_stop and heldout is not None:
        x, y = heldout.get_batch(torch.arange(len(heldout)))
        callbacks.append(
            CatastrophicOverfittingStop(
                x, y, a.eps, a.check_every or len(data), drop=a.check_drop, seed=recipe.seed
            )
        )
    return ctx.trainer(method, data, name, callbacks)


def _evaluate(
    ctx: RunContext,
    config: RobustEvaluationConfig,
    model: torch.nn.Module,
    data: ImageTensors,
    name: str,
    seed: int,
) -> RobustnessReport:
    return evaluate(
        model,
        data,
        attacks=config.attacks,
        eps=config.eps,
        corruptions=config.corruptions,
        severities=config.severities,
        attack_options=config.attack_options,
        batch_size=config.batch_size,
        max_examples=config.n,
        device=ctx.device,
        seed=seed,
        show=config.show,
        name=name,
    )


def _table(reports: dict[str, RobustnessReport]) -> list[tuple[str, ...]]:
    first = next(iter(reports.values()))
    largest = max(first.eps)
    header = ["model", "clean acc"] + [f"{a} @ {largest:.3g}" for a in first.attacks]
    header += [f"worst @ {largest:.3g}", "corruptions (mean)"]
    rows = [tuple(header)]
    for name, r in reports.items():
        cells = [name, f"{r.clean_accuracy:.4f}"]
        cells += [f"{curve[-1]:.4f}" for curve in r.attacks.values()]
        cells.append(f"{r.worst_case[-1]:.4f}" if r.worst_case else "n/a")
        mean = r.mean_corruption_accuracy
        cells.append("n/a" if mean is None else f"{mean:.4f}")
        rows.append(tuple(cells))
    return rows


# -- robustness --------------------------------------------------------------------


def load_attacked_model(
    path: str | Path,
    *,
    arch: str | None,
    trust_pickle: bool,
    normalize,
    device: torch.device,
    produced_by: str | None = None,
    setting: str = "model",
) -> torch.nn.Module:
    """Load a saved classifier, wrapped in its ``normalize`` when given (mode untouched).

    A missing file names the recipe that writes it (``produced_by``) and the recipe
    ``setting`` that points elsewhere.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        hint = (
            f" It is written by the '{produced_by}' recipe: run `counterfeit run {produced_by}` "
            f"first, or point to another model with --set {setting}=PATH."
            if produced_by
            else ""
        )
        raise CheckpointError(f"model file not found: {path}.{hint}")
    model = load_model(path, arch=arch, trust_pickle=trust_pickle, device=device)
    if normalize is not None:
        model = Normalize(model, normalize.mean, normalize.std).to(device)
    return model


def image_shape(
    model: torch.nn.Module | None, channels: int | None, size: int | None, name: str = "the model"
) -> tuple[int, int]:
    """(channels, size) of the images ``model`` takes: as given, else as its .pt2 recorded."""
    if isinstance(model, Normalize):
        model = model.model
    shape = input_shape(model) if model is not None else None
    channels = channels or (shape[0] if shape else None)
    size = size or (shape[1] if shape else None)
    if channels is None or size is None:
        raise ConfigError(
            f"cannot tell which image shape {name} takes (only .pt2 programs record it): "
            "set data.channels and data.image_size (--channels, --image-size)."
        )
    return channels, size


def run_evaluation(ctx: RunContext) -> TaskOutput:
    recipe: RobustnessRecipe = ctx.recipe
    if not ctx.dist.is_main:  # evaluation needs no data parallelism: rank 0 does it all
        return TaskOutput({})
    model = load_attacked_model(
        recipe.model,
        arch=recipe.arch,
        trust_pickle=recipe.trust_pickle,
        normalize=recipe.normalize,
        device=ctx.device,
        produced_by=recipe.produced_by,
    )
    channels, size = image_shape(model, recipe.data.channels, recipe.data.image_size, recipe.model)
    data = build_domain(recipe.data.dataset, recipe.data.split, size, channels)
    ctx.print(
        f"evaluating {recipe.model} ({detect_format(recipe.model)}) on {data.name}: "
        f"{min(len(data), recipe.evaluation.n or len(data))} images of {data.shape}"
    )
    report = _evaluate(ctx, recipe.evaluation, model, data, Path(recipe.model).name, recipe.seed)
    paths = report.save(ctx.out, tracker=ctx.tracker)
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
        table.append(
            (
                "corruptions",
                f"mean {report.mean_corruption_accuracy:.4f}",
                *[""] * (len(header) - 2),
            )
        )
    return TaskOutput(
        report.metrics(),
        {"report": {k: str(v) for k, v in paths.items()}, "warnings": report.warnings},
        table,
    )


# -- the `counterfeit robustness` command ----------------------------------------


def dataset_from_arg(data: str) -> dict[str, Any]:
    """The recipe's dataset entry for a command's ``--data``: a domain name or a folder."""
    if data in domain_names():
        return {"name": data}
    folder = Path(data).expanduser()
    if folder.is_dir():
        return {"name": "image-folder", "path": str(folder)}
    raise ConfigError(
        f"--data '{data}' is neither a domain ({', '.join(domain_names())}) nor a folder "
        "of images (CLASS/*.png)."
    )


def recipe_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``robustness`` recipe (as raw YAML data) that ``counterfeit robustness`` runs."""
    model = Path(args.model)
    dataset = dataset_from_arg(args.data)
    evaluation: dict[str, Any] = {"n": args.n, "batch_size": args.batch_size}
    if args.eps is not None:
        evaluation["eps"] = [_number(e) for e in args.eps.split(",") if e.strip()]
    if args.attacks is not None:
        evaluation["attacks"] = [a.strip() for a in args.attacks.split(",") if a.strip()]
    if args.corruptions is not None:
        text = args.corruptions.strip()
        evaluation["corruptions"] = (
            text if text in ("all", "none") else [c.strip() for c in text.split(",") if c.strip()]
        )
    raw: dict[str, Any] = {
        "name": f"robustness-{model.stem}",
        "task": "robustness",
        "model": str(model),
        "arch": args.arch,
        "trust_pickle": args.trust_pickle,
        "data": {
            "dataset": dataset,
            "root": args.data_root,
            "split": args.split,
            "image_size": args.image_size,
            "channels": args.channels,
        },
        "evaluation": evaluation,
        "tracking": {"enabled": not args.no_mlflow},
    }
    if args.normalize is not None:
        mean, std = parse_normalize(args.normalize)
        raw["normalize"] = {"mean": mean, "std": std}
    if args.device is not None:
        raw["device"] = args.device
    if args.seed is not None:
        raw["seed"] = args.seed
    return raw


def _number(text: str) -> float:
    """``0.1`` or a fraction such as ``8/255``."""
    try:
        return float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"--eps expects numbers such as 0.1 or 8/255, got '{text}'.") from None
