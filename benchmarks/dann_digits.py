"""DANN against the paper, on embedded data, and the Trainer's speed.

    python benchmarks/dann_digits.py --data-root ../shared/datasets             # everything
    python benchmarks/dann_digits.py --data-root DIR --only paper --seeds 0-9   # one part
    python benchmarks/dann_digits.py --data-root DIR --only paper --resume      # finish it

Parts:
  paper     MNIST -> MNIST-M: source-only, DANN, train-on-target with the paper's
            architecture and schedule, beside Ganin et al. 2016 (0.5225 / 0.7666 / 0.9596).
  embedded  the built-in digits-dann recipe (synthetic -> real, embedded data).
  speed     images/s of a DANN step through gan.Trainer vs a hand-written PyTorch loop of
            the same model, batch and data stream, in the same process (interleaved rounds).

The paper and embedded parts run each recipe as a sweep over ``--seeds`` (``counterfeit
sweep``: one process per seed, ``--workers`` at once, one torch thread each, an MLflow
parent run with a child per seed) and report mean +- sd (n) with the 95% t-interval; the
embedded part also gives the paired per-seed difference DANN - source-only. ``--resume``
finishes an interrupted sweep (only the members without a summary run, each from its
checkpoint). Each part prints a Markdown table and appends it to --markdown when given.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from report import run_parts, trainer_overhead, trainer_seconds

from counterfeit.adapt import DANN, dann_lambda
from counterfeit.gan.data import DomainSpec, InfiniteLoader, ZipLoader, build_domain
from counterfeit.recipes.sweep import SweepResult, sweep
from counterfeit.recipes.sweep.stats import describe

PAPER = {"source-only": 0.5225, "dann": 0.7666, "target-only": 0.9596}


def swept(recipe: str, overrides: list[str], args) -> SweepResult:
    """``recipe`` over ``args.seeds`` as a sweep in ``args.out / recipe``."""
    result = sweep(
        recipe,
        seeds=args.seeds,
        overrides=overrides,
        workers=args.workers,
        out=args.out / recipe,
        resume=args.resume,
    )
    if result.failed:
        failed = ", ".join(f"seed {m.seed}: {m.error}" for m in result.failed)
        raise SystemExit(f"{recipe}: {len(result.failed)} member(s) failed ({failed})")
    return result


def spread(stats: dict[str, Any], scale: float = 1.0, digits: int = 3) -> str:
    """``mean +- sd (n = N; min to max)`` of one aggregated metric."""
    sd = f" +- {stats['sd'] * scale:.{digits}f}" if stats["sd"] is not None else ""
    return (
        f"{stats['mean'] * scale:.{digits}f}{sd} (n = {stats['n']}; "
        f"{stats['min'] * scale:.{digits}f} to {stats['max'] * scale:.{digits}f})"
    )


def interval(stats: dict[str, Any], scale: float = 1.0) -> str:
    if stats["ci95"] is None:
        return "-"
    low, high = stats["ci95"]
    return f"[{low * scale:+.1f}, {high * scale:+.1f}]"


def paper_part(args) -> str:
    rows = []
    overrides = [f"data.root={args.data_root}"] + (
        [f"train.steps={args.steps}"] if args.steps else []
    )
    for recipe, method in (
        ("mnist-mnistm-source-only", "source-only"),
        ("mnist-mnistm-dann", "dann"),
        ("mnist-mnistm-oracle", "target-only"),
    ):
        result = swept(recipe, overrides, args)
        metrics = result.aggregate[0]["metrics"]
        steps = args.steps or "recipe"
        rows.append(
            f"| {method} | {steps} | **{spread(metrics[f'{method}/target_accuracy'])}** | "
            f"{PAPER[method]:.4f} | {spread(metrics[f'{method}/source_accuracy'])} |"
        )
    return (
        f"### MNIST -> MNIST-M (paper architecture and schedule, batch 64+64, seeds {args.seeds})\n\n"
        "| method | steps | target acc, mean +- sd | Ganin et al. 2016 | source test acc |\n"
        "| --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n"
    )


def embedded_part(args) -> str:
    overrides = [f"train.steps={args.embedded_steps}"] if args.embedded_steps else []
    result = swept("digits-dann", overrides, args)
    metrics = result.aggregate[0]["metrics"]
    gap = describe(
        [
            m.metrics["dann/target_accuracy"] - m.metrics["source-only/target_accuracy"]
            for m in result.members
        ]
    )
    return (
        f"### Embedded synthetic -> MNIST-M-style real (digits-dann, seeds {args.seeds})\n\n"
        "| method | target acc | source test acc |\n| --- | --- | --- |\n"
        + "".join(
            f"| {k} | {spread(metrics[f'{k}/target_accuracy'])} | "
            f"{spread(metrics[f'{k}/source_accuracy'])} |\n"
            for k in ("source-only", "dann")
        )
        + f"\nDANN - source-only, paired by seed: **{spread(gap, 100, 1)} points**, 95% CI "
        f"{interval(gap, 100)} (target: >= +10).\n"
    )


def _stream(source, target, batch, seed):
    return ZipLoader(
        InfiniteLoader(source, batch, seed=seed), InfiniteLoader(target, batch, seed=seed + 1)
    )


def plain_loop(model: DANN, data, steps: int) -> float:
    """The same DANN step written out by hand: no Trainer."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: (1 + 10 * s / steps) ** -0.75)
    from counterfeit.adapt.grl import grad_reverse

    model.train()
    start = time.perf_counter()
    for step in range(steps):
        (xs, ys), (xt, _) = next(data)
        lam = dann_lambda(step / steps)
        features = model.features(torch.cat([xs, xt]))
        logits = model.label_predictor(features[: len(xs)])
        d = model.domain_classifier(grad_reverse(features, lam)).squeeze(1)
        loss = (
            F.cross_entropy(logits, ys)
            + F.binary_cross_entropy_with_logits(d[: len(xs)], torch.zeros(len(xs)))
            + F.binary_cross_entropy_with_logits(d[len(xs) :], torch.ones(len(xt)))
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return time.perf_counter() - start


def speed_part(args) -> str:
    source = build_domain(DomainSpec(name="synthetic-digits", n=4000), "train", 28)
    target = build_domain(DomainSpec(name="mnistm-style"), "train", 28).unlabeled()
    batch, steps = 64, args.speed_steps

    def time_round(round_: int) -> tuple[float, float]:
        torch.manual_seed(round_)
        t_plain = plain_loop(DANN((3, 28, 28)), _stream(source, target, batch, round_), steps)
        torch.manual_seed(round_)
        model = DANN((3, 28, 28))
        return t_plain, trainer_seconds(model, _stream(source, target, batch, round_), steps)

    return trainer_overhead(
        f"DANN step, batch {batch}+{batch}, {steps} steps",
        args.speed_rounds,
        steps * 2 * batch,
        time_round,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        help="folder with mnist.npz and mnistm.npz (or the published layouts)",
    )
    parser.add_argument("--only", choices=["paper", "embedded", "speed"], action="append")
    parser.add_argument(
        "--steps", type=int, default=None, help="override the paper part's recipes' steps"
    )
    parser.add_argument(
        "--embedded-steps", type=int, default=None, help="override digits-dann's steps"
    )
    parser.add_argument("--speed-steps", type=int, default=300)
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--seeds", default="0-4", help="the sweeps' seeds: 0-9 or 0,3,7")
    parser.add_argument(
        "--workers", type=int, default=None, help="members at once (default: one per core)"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/dann"))
    parser.add_argument("--markdown", type=Path, help="append the tables to this file")
    parser.add_argument(
        "--resume", action="store_true", help="finish the sweeps in --out (only what is missing)"
    )
    args = parser.parse_args(argv)
    parts = args.only or ["paper", "embedded", "speed"]
    if "paper" in parts and args.data_root is None:
        parser.error("the paper part needs --data-root (or use --only embedded/speed)")
    run_parts(
        "DANN benchmark",
        parts,
        {"paper": paper_part, "embedded": embedded_part, "speed": speed_part},
        args,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
