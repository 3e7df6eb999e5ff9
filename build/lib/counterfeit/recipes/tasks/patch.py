"""The adversarial-patch and AdvGAN tasks.

``patch`` (recipe ``digits-patch`` and ``counterfeit patch``): train one
universal patch toward a target class with :class:`robust.AdversarialPatch`
(Brown et al. 2017) on the train split, measure its targeted success on the
test split beside a random-noise control and across patch areas, and write
the patch (PNG and exact tensor), the success curve and patched examples,
all logged to MLflow.

``advgan`` (recipe ``digits-advgan``): train :class:`robust.AdvGAN` (Xiao et
al. 2018) through :class:`gan.Trainer`, then compare its success and speed
with FGSM and PGD at the same L-inf eps on the test split.

Both attack a saved classifier (``classifier.path``) or, when none is given,
train Wong et al.'s digits CNN first (a minute on CPU).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from counterfeit.gan.data.domains import build_domain
from counterfeit.gan.data.loaders import InfiniteLoader
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.export import export_classifier
from counterfeit.gan.plots import labelled_grid_figure
from counterfeit.gan.runtime import seed_everything
from counterfeit.gan.train import Trainer, TrainerConfig
from counterfeit.recipes.run import RunContext, TaskOutput
from counterfeit.recipes.tasks.patch_schema import (
    AdvGANRecipe,
    AttackData,
    ClassifierConfig,
    PatchRecipe,
)
from counterfeit.recipes.tasks.robustness import dataset_from_arg, image_shape, load_attacked_model
from counterfeit.robust.advgan import AdvGAN
from counterfeit.robust.attacks import fgsm, pgd
from counterfeit.robust.models import digits_cnn
from counterfeit.robust.normalize import parse_normalize
from counterfeit.robust.patch import AdversarialPatch
from counterfeit.robust.training import AdversarialTraining

# -- shared: data and the attacked classifier ---------------------------------------


def _data(
    data: AttackData, model: torch.nn.Module | None
) -> tuple[ImageTensors, ImageTensors, int, int]:
    """(train split, test split, channels, size); the shape defaults to a .pt2 model's."""
    channels, size = image_shape(model, data.channels, data.image_size)
    train = build_domain(data.dataset, "train", size, channels)
    test = build_domain(data.dataset, "test", size, channels)
    for split in (train, test):
        if not split.has_labels:
            raise DataError(f"{split.name} has no labels: measuring a targeted attack needs them.")
    if data.n_train is not None:
        train = train.take(data.n_train)
    return train, test, channels, size


def _classifier(
    ctx: RunContext,
    config: ClassifierConfig,
    produced_by: str | None,
    data: AttackData,
    seed: int,
) -> tuple[torch.nn.Module, ImageTensors, ImageTensors]:
    """The attacked model (loaded, or trained and exported here) and the data splits."""
    if config.path is not None:
        model = load_attacked_model(
            config.path,
            arch=config.arch,
            trust_pickle=config.trust_pickle,
            normalize=config.normalize,
            device=ctx.device,
            produced_by=produced_by,
            setting="classifier.path",
        ).eval()
        train, test, _, _ = _data(data, model)
        return model, train, test
    train, test, channels, size = _data(data, None)
    seed_everything(seed)
    model = digits_cnn(channels, max(train.num_classes, test.num_classes), size)
    method = AdversarialTraining(model, method="standard", lr=config.lr, lr_peak=0.4)
    trainer = Trainer(
        method,
        InfiniteLoader(train, config.batch_size, seed=seed),
        TrainerConfig(
            max_steps=config.train_steps,
            device=str(ctx.device),
            progress=False,
            log_every=max(1, config.train_steps // 10),
            seed=seed,
        ),
        tracker=ctx.tracker.scoped("classifier/") if ctx.tracker.active else None,
        description="classifier",
    )
    result = trainer.fit()
    model = method.model.eval()
    example = test.get_batch(torch.arange(2))[0].to(ctx.device)
    export = export_classifier(model, example, ctx.out / "models" / "classifier.pt2")
    ctx.log_file(export, "models")
    ctx.print(
        f"trained the digits CNN: {result.steps} steps in {result.wall_time:.0f}s -> {export}"
    )
    return model, train, test


@torch.no_grad()
def _accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> float:
    right = sum(
        int((model(x[s : s + batch]).argmax(1) == y[s : s + batch]).sum())
        for s in range(0, len(x), batch)
    )
    return right / len(x)


# -- patch ------------------------------------------------------------------------------


def run_patch(ctx: RunContext) -> TaskOutput:
    recipe: PatchRecipe = ctx.recipe
    if not ctx.dist.is_main:  # one patch, one process
        return TaskOutput({})
    model, train, test = _classifier(
        ctx, recipe.classifier, recipe.produced_by, recipe.data, recipe.seed
    )
    p, e = recipe.patch, recipe.evaluation
    x_test, y_test = test.get_batch(torch.arange(len(test)))
    clean = _accuracy(model, x_test.to(ctx.device), y_test.to(ctx.device), e.batch_size)
    ctx.print(
        f"patch toward class {p.target}: {p.shape}, area {p.area:g}, {p.steps} steps of "
        f"{p.batch_size} on {train.name} ({len(train)} images); clean accuracy {clean:.4f}"
    )
    attack = AdversarialPatch(
        model,
        p.target,
        shape=p.shape,
        area=p.area,
        scale=p.scale,
        rotation=p.rotation,
        location=p.location,
        optimizer=p.optimizer,
        lr=p.lr,
        lr_schedule=p.lr_schedule,
        parameterization=p.parameterization,
        loss=p.loss,
        kappa=p.kappa,
        steps=p.steps,
        batch_size=p.batch_size,
        seed=recipe.seed,
        device=ctx.device,
        progress=p.progress,
    )
    started = time.perf_counter()
    attack.fit(train)
    fit_seconds = time.perf_counter() - started
    for step in range(0, len(attack.history), max(1, len(attack.history) // 50)):
        ctx.tracker.log_metrics({"patch/loss": attack.history[step]}, step=step)
    result = attack.evaluate(test, n=e.n, areas=e.areas, trials=e.trials, batch_size=e.batch_size)
    for path in (attack.save(ctx.out / "patch.png"), attack.save(ctx.out / "patch.pt")):
        ctx.log_file(path, "patch")
    ctx.save_figure(result.curve_figure(), "success_vs_area")
    order = torch.randperm(len(y_test), generator=torch.Generator().manual_seed(recipe.seed))
    keep = order[y_test[order] != p.target][: e.show]
    ctx.save_figure(attack.figure(x_test[keep], y_test[keep], seed=recipe.seed), "patched_examples")
    (ctx.out / "patch.json").write_text(_json(result.to_dict()))
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


def _json(data: Any) -> str:
    import json

    return json.dumps(data, indent=2)


# -- advgan -----------------------------------------------------------------------------


def run_advgan(ctx: RunContext) -> TaskOutput:
    recipe: AdvGANRecipe = ctx.recipe
    model, train, test = _classifier(
        ctx, recipe.classifier, recipe.produced_by, recipe.data, recipe.seed
    )
    a, t, e = recipe.advgan, recipe.train, recipe.evaluation
    channels, size = train.shape[0], train.shape[1]
    seed_everything(recipe.seed)
    advgan = AdvGAN(
        model,
        eps=a.eps,
        channels=channels,
        image_size=size,
        target=a.target,
        gan_loss=a.gan_loss,
        adv_weight=a.adv_weight,
        gan_weight=a.gan_weight,
        hinge_weight=a.hinge_weight,
        hinge_bound=a.hinge_bound,
        kappa=a.kappa,
        lr=a.lr,
        width=a.width,
        blocks=a.blocks,
    )
    data = InfiniteLoader(
        train, t.batch_size, seed=recipe.seed, rank=ctx.dist.rank, world_size=ctx.dist.world_size
    )
    checkpoint = ctx.checkpoint_path("advgan")
    trainer = ctx.trainer(advgan, data, "advgan")
    result = trainer.fit(resume=ctx.resume and checkpoint.is_file())
    if not ctx.dist.is_main:
        return TaskOutput({})
    generator_path = ctx.out / "models" / "advgan_generator.pt"
    generator_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"init": advgan.init_args(), "generator": advgan.generator.state_dict()}, generator_path
    )
    ctx.log_file(generator_path, "models")
    rows, metrics = _compare(ctx, recipe, model, advgan, test)
    metrics["train_seconds"] = result.wall_time
    x, y = test.get_batch(torch.arange(min(e.show, len(test))))
    x_adv = advgan.generate(x.to(ctx.device))
    with torch.no_grad():
        clean_pred = model(x.to(ctx.device)).argmax(1).cpu()
        adv_pred = model(x_adv).argmax(1).cpu()
    titles = [f"clean: {int(v)}" for v in clean_pred] + [f"AdvGAN: {int(v)}" for v in adv_pred]
    colours = ["black"] * len(x) + ["red" if p != t_ else "black" for p, t_ in zip(adv_pred, y)]
    figure = labelled_grid_figure(
        torch.cat([x, x_adv.cpu()]), titles, len(x), f"AdvGAN, eps = {a.eps:g}", colours
    )
    ctx.save_figure(figure, "advgan_examples")
    details = {"generator": str(generator_path), "train_steps": result.steps}
    return TaskOutput(metrics, details, rows)


def _compare(
    ctx: RunContext,
    recipe: AdvGANRecipe,
    model: torch.nn.Module,
    advgan: AdvGAN,
    test: ImageTensors,
) -> tuple[list[tuple[str, ...]], dict[str, float]]:
    """Success (of correctly classified test images) and images/s of AdvGAN, FGSM and PGD."""
    e, eps, target = recipe.evaluation, recipe.advgan.eps, recipe.advgan.target
    x, y = test.take(e.n, seed=recipe.seed).get_batch(
        torch.arange(min(e.n or len(test), len(test)))
    )
    x, y = x.to(ctx.device), y.to(ctx.device)
    with torch.no_grad():
        right = (
            torch.cat(
                [model(x[s : s + e.batch_size]).argmax(1) for s in range(0, len(x), e.batch_size)]
            )
            == y
        )
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
        hits, started = 0, time.perf_counter()
        for s in range(0, len(x), e.batch_size):
            xb, yb = x[s : s + e.batch_size], y[s : s + e.batch_size]
            gb = None if goal is None else goal[s : s + e.batch_size]
            x_adv = attack(xb, yb, gb)
            with torch.no_grad():
                pred = model(x_adv).argmax(1)
            hits += int((pred != yb).sum() if goal is None else (pred == gb).sum())
        seconds = time.perf_counter() - started
        metrics[f"{name}/success"] = hits / len(x)
        metrics[f"{name}/images_per_second"] = len(x) / seconds
        rows.append((name, f"{hits / len(x):.4f}", f"{len(x) / seconds:.0f}"))
    return rows, metrics


# -- the `counterfeit patch` command --------------------------------------------------


def recipe_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``patch`` recipe (as raw YAML data) that ``counterfeit patch`` runs."""
    model = Path(args.model)
    dataset = dataset_from_arg(args.data)
    classifier: dict[str, Any] = {
        "path": str(model),
        "arch": args.arch,
        "trust_pickle": args.trust_pickle,
    }
    if args.normalize is not None:
        mean, std = parse_normalize(args.normalize)
        classifier["normalize"] = {"mean": mean, "std": std}
    patch: dict[str, Any] = {
        "target": args.target,
        "shape": args.shape,
        "area": args.area,
        "steps": args.steps,
        "batch_size": args.batch_size,
    }
    if args.lr is not None:
        patch["lr"] = args.lr
    if args.loss is not None:
        patch["loss"] = args.loss
    if args.rotation is not None:
        patch["rotation"] = args.rotation
    if args.scale is not None:
        try:
            low, high = (float(v) for v in args.scale.split(","))
        except ValueError:
            raise ConfigError(
                f"--scale expects MIN,MAX such as 0.8,1.2, got '{args.scale}'."
            ) from None
        patch["scale"] = [low, high]
    evaluation: dict[str, Any] = {"n": args.n}
    if args.areas is not None:
        try:
            evaluation["areas"] = [float(v) for v in args.areas.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(
                f"--areas expects comma-separated fractions such as 0.05,0.1,0.2, got "
                f"'{args.areas}'."
            ) from None
    raw: dict[str, Any] = {
        "name": f"patch-{model.stem}-target{args.target}",
        "task": "patch",
        "data": {
            "dataset": dataset,
            "root": args.data_root,
            "image_size": args.image_size,
            "channels": args.channels,
        },
        "classifier": classifier,
        "patch": patch,
        "evaluation": evaluation,
        "tracking": {"enabled": not args.no_mlflow},
    }
    if args.device is not None:
        raw["device"] = args.device
    if args.seed is not None:
        raw["seed"] = args.seed
    return raw
