"""Progressive GAN and BigGAN against DCGAN at an equal number of real images, over seeds.

    python benchmarks/scaled_gans.py --data-root ../shared/datasets --seeds 0-2 --resume
    python benchmarks/scaled_gans.py --only speed

Parts (each recipe on full MNIST, zero-padded to 32 px, through ``counterfeit sweep``: a
process per seed, ``--workers`` at once, ``--resume`` finishes an interrupted sweep):
  progan    ``mnist-progan`` (the CPU preset: 51,200 real images, grown 4 -> 32 px) beside
            ``mnist-dcgan`` trained on the same number of real images (800 steps of 64).
            FID-digits against the 10,000 test digits, precision and recall (k = 3) in the
            digits classifier's feature space. Target: ProGAN's FID below DCGAN's.
  biggan    ``mnist-biggan`` (the CPU preset) beside the conditional DCGAN of ``mnist-dcgan``
            (``model.conditional``, the hinge loss as BigGAN, the same real images): FID,
            intra-class FID, class accuracy by the digits classifier, precision and recall.
            Targets: BigGAN's FID below the conditional DCGAN's, class accuracy >= 0.97,
            recall not below the DCGAN's.
  speed     images/s of a ProGAN step (at 32 px) and a BigGAN step through ``gan.Trainer``
            against a bare loop calling the same ``train_step`` (interleaved rounds in one
            process); target ratio >= 0.95.

Each part prints a Markdown table of mean +- sd (n; min to max) per model; ``--markdown``
appends the report to a file. Nothing is selected on test labels: the last iterate's
weight average is scored.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from report import run_parts, trainer_overhead, trainer_seconds

from counterfeit.gan.data import DomainSpec, InfiniteLoader, build_domain
from counterfeit.gan.method import StepContext
from counterfeit.gan.models import BigGAN, ProGAN
from counterfeit.recipes import load_recipe
from counterfeit.recipes.sweep import sweep
from counterfeit.recipes.sweep.stats import aggregate
from counterfeit.recipes.tasks.common.generation import pad_images

SCORES = (
    ("fid-digits", "FID-digits"),
    ("intra-fid-digits", "intra-class FID-digits (mean over classes)"),
    ("class_accuracy", "class accuracy (digits classifier)"),
    ("precision-digits", "precision (k = 3)"),
    ("recall-digits", "recall (k = 3)"),
    ("wall_seconds", "wall time per run (s)"),
)


def common(args) -> list[str]:
    """Full MNIST, every test digit, 5,000 generated images per score."""
    return [
        "data.domain.name=mnist",
        f"data.root={args.data_root}",
        "evaluation.n_samples=5000",
        "evaluation.kid_subset_size=1000",
        "train.progress=false",
    ]


def images_per_run(recipe: str, overrides: list[str]) -> int:
    train = load_recipe(recipe, overrides).recipe.train
    return train.steps * train.batch_size


def run_sweep(args, name: str, recipe: str, overrides: list[str]):
    result = sweep(
        recipe,
        seeds=args.seeds,
        overrides=overrides,
        workers=args.workers,
        out=args.out / name,
        resume=args.resume,
        headline="fid-digits",
    )
    finished = [m for m in result.members if m.status == "finished"]
    if not finished:
        raise SystemExit(f"no member of {result.out} finished; see its sweep.json")
    return result, finished


def cell(stats: dict | None) -> str:
    if stats is None:
        return "-"
    sd = f" +- {stats['sd']:.3f}" if stats["sd"] is not None else ""
    return f"{stats['mean']:.3f}{sd} (n = {stats['n']}; {stats['min']:.3f} to {stats['max']:.3f})"


def comparison(args, title: str, runs: dict[str, tuple[str, list[str]]]) -> str:
    """Sweep each ``label -> (recipe, overrides)`` over the seeds; one table side by side."""
    columns, notes = {}, []
    for label, (recipe, overrides) in runs.items():
        slug = label.split()[0].lower()
        result, finished = run_sweep(args, slug, recipe, overrides)
        metrics = result.aggregate[0]["metrics"]
        walls = {m.seed: {"wall_seconds": m.wall_seconds} for m in finished}
        metrics["wall_seconds"] = aggregate(walls)["wall_seconds"]
        columns[label] = metrics
        per_seed = ", ".join(f"{m.seed}: {m.metrics['fid-digits']:.2f}" for m in finished)
        notes.append(
            f"{label}: `{recipe}` with `{' '.join(overrides[len(common(args)) :]) or '-'}`, "
            f"{images_per_run(recipe, overrides):,} real images; FID-digits per seed {per_seed}."
        )
    header = "| score | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns) + "\n"
    rows = [
        f"| {label} | " + " | ".join(cell(c.get(key)) for c in columns.values()) + " |"
        for key, label in SCORES
        if any(c.get(key) for c in columns.values())
    ]
    return (
        f"### {title}, seeds {args.seeds}\n\n"
        + header
        + "\n".join(rows)
        + "\n\n"
        + "\n".join(f"- {n}" for n in notes)
        + "\n"
    )


def progan_part(args) -> str:
    progan = common(args)
    images = images_per_run("mnist-progan", progan)
    dcgan = [*common(args), f"train.steps={images // 64}", "train.eval_every=400"]
    return comparison(
        args,
        "Progressive GAN vs DCGAN on full MNIST (32 px), equal real images",
        {"ProGAN (small)": ("mnist-progan", progan), "DCGAN": ("mnist-dcgan", dcgan)},
    )


def biggan_part(args) -> str:
    biggan = [*common(args), "evaluation.truncation_curve=[0.5, 1.0]"]
    images = images_per_run("mnist-biggan", biggan)
    conditional = [
        *common(args),
        "model.conditional=true",
        "model.loss=hinge",
        f"train.steps={images // 64}",
    ]
    return comparison(
        args,
        "BigGAN vs conditional DCGAN on full MNIST (32 px), equal real images",
        {"BigGAN (small)": ("mnist-biggan", biggan), "cDCGAN": ("mnist-dcgan", conditional)},
    )


def bare_seconds(method, data, steps: int) -> float:
    """The same steps as :func:`trainer_seconds` in a bare loop over ``train_step``."""
    import time

    ctx = StepContext.single_process(method.configure_optimizers(), total_steps=steps)
    method.train()
    started = time.perf_counter()
    for step in range(steps):
        ctx.step = step
        method.train_step(next(data), ctx)
    return time.perf_counter() - started


def speed_part(args) -> str:
    train = pad_images(build_domain(DomainSpec(name="mnist-small"), "train", 28, 1), 2)
    steps, text = args.speed_steps, ""
    for name, build, batch in (
        # at 32 px from the first step: the schedule's 4 x 4 stage is over at once
        ("ProGAN step at 32 px (the small preset's nets)",
         lambda: ProGAN(32, 1, 128, 256, 32, fade_images=1, stable_images=1), 32),
        ("BigGAN step (the small preset's nets, width 8)",
         lambda: BigGAN(32, 1, 10, width=8, ema_decay=0.999), 64),
    ):  # fmt: skip

        def time_round(round_: int, build=build, batch=batch) -> tuple[float, float]:
            torch.manual_seed(round_)
            bare = bare_seconds(build(), iter(InfiniteLoader(train, batch, seed=round_)), steps)
            torch.manual_seed(round_)
            method = build()
            return bare, trainer_seconds(method, InfiniteLoader(train, batch, seed=round_), steps)

        text += trainer_overhead(
            f"{name}, batch {batch}, {steps} steps", args.speed_rounds, steps * batch, time_round
        )
        text += "\n(the plain loop here calls the method's own `train_step`: what is measured "
        text += "is the Trainer's cost around it.)\n\n"
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, help="folder with mnist.npz")
    parser.add_argument("--only", choices=["progan", "biggan", "speed"], action="append")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--workers", type=int, default=1, help="sweep members at once")
    parser.add_argument("--speed-steps", type=int, default=40)
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (speed)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/scaled-gans"))
    parser.add_argument("--markdown", type=Path, help="append the tables to this file")
    parser.add_argument("--resume", action="store_true", help="finish the sweeps in --out")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    parts = args.only or ["progan", "biggan", "speed"]
    if {"progan", "biggan"} & set(parts) and args.data_root is None:
        parser.error("the progan and biggan parts need --data-root (or use --only speed)")
    args.data_root = args.data_root.resolve() if args.data_root else None
    functions = {"progan": progan_part, "biggan": biggan_part, "speed": speed_part}
    run_parts("Progressive GAN and BigGAN benchmark", parts, functions, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
