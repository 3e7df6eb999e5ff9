"""DANN against the paper, on embedded data, and the Trainer's speed.

    python benchmarks/dann_digits.py --data-root ../shared/datasets            # everything
    python benchmarks/dann_digits.py --data-root DIR --only speed              # one part

Parts:
  paper     MNIST -> MNIST-M: source-only, DANN, train-on-target with the paper's
            architecture and schedule, beside Ganin et al. 2016 (0.5225 / 0.7666 / 0.9596).
  embedded  the built-in digits-dann recipe at benchmark length (synthetic -> real, embedded).
  speed     images/s of a DANN step through gan.Trainer vs a hand-written PyTorch loop of
            the same model, batch and data stream, in the same process (interleaved rounds).

Each part runs through the product (recipes.run_recipe), prints a Markdown table
and appends it to --markdown when given.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from report import run_parts, trainer_overhead, trainer_seconds

from counterfeit.adapt import DANN, dann_lambda
from counterfeit.gan.data import DomainSpec, InfiniteLoader, ZipLoader, build_domain
from counterfeit.recipes import load_recipe, run_recipe

PAPER = {"source-only": 0.5225, "dann": 0.7666, "target-only": 0.9596}


def run(name: str, overrides: list[str], out: Path, reuse: bool = False) -> dict:
    """Run a built-in recipe; with ``reuse``, take a finished run in ``out`` made with the
    same recipe and overrides (e.g. launched in parallel with `counterfeit run`)."""
    loaded = load_recipe(name, [*overrides, "tracking.enabled=false"])
    summary_file = out / "summary.json"
    if reuse and summary_file.is_file():
        summary = json.loads(summary_file.read_text())
        # Re-validate the stored recipe so that settings added since then take their defaults.
        stored = type(loaded.recipe).model_validate(summary["resolved_recipe"])
        if _numbers_only(stored.model_dump(mode="json")) == _numbers_only(
            loaded.recipe.model_dump(mode="json")
        ):
            print(f"reusing {summary_file}", flush=True)
            return summary
    return run_recipe(loaded, out=out, overwrite=True)


def _numbers_only(recipe: dict) -> dict:
    """A resolved recipe without the settings that cannot change its numbers."""
    recipe = {k: v for k, v in recipe.items() if k != "tracking"}
    recipe["train"] = {k: v for k, v in recipe["train"].items() if k != "progress"}
    return recipe


def paper_part(args) -> str:
    rows, notes = [], []
    overrides = [f"data.root={args.data_root}", f"seed={args.seed}"] + (
        [f"train.steps={args.steps}"] if args.steps else []
    )
    for recipe, method in (
        ("mnist-mnistm-source-only", "source-only"),
        ("mnist-mnistm-dann", "dann"),
        ("mnist-mnistm-oracle", "target-only"),
    ):
        summary = run(recipe, overrides, args.out / recipe, args.reuse)
        steps = summary["resolved_recipe"]["train"]["steps"]
        acc = summary["metrics"][f"{method}/target_accuracy"]
        secs = summary["models"][method]["train_seconds"]
        rows.append(
            f"| {method} | {steps} | {acc:.4f} | {PAPER[method]:.4f} | {summary['models'][method]['metrics']['source_accuracy']:.4f} | {secs:.0f} |"
        )
        if summary["models"][method].get("stopped_early"):  # the collapse guard fired
            notes.append(
                f"* {method} stopped early: {summary['models'][method]['stopped_early']}\n"
            )
    head = (
        f"### MNIST -> MNIST-M (paper architecture and schedule, batch 64+64, seed {args.seed})\n\n"
        "| method | steps | target acc (ours) | Ganin et al. 2016 | source test acc | train s |\n"
        "| --- | --- | --- | --- | --- | --- |\n"
    )
    return head + "\n".join(rows) + "\n" + ("\n" + "".join(notes) if notes else "")


def embedded_part(args) -> str:
    overrides = [f"seed={args.seed}"] + (
        [f"train.steps={args.embedded_steps}"] if args.embedded_steps else []
    )
    summary = run("digits-dann", overrides, args.out / "digits-dann", args.reuse)
    m = summary["metrics"]
    gap = m["dann/target_accuracy"] - m["source-only/target_accuracy"]
    steps = summary["resolved_recipe"]["train"]["steps"]
    return (
        f"### Embedded synthetic -> MNIST-M-style real (digits-dann, {steps} steps, seed {args.seed})\n\n"
        "| method | target acc | source test acc | target entropy | PAD |\n| --- | --- | --- | --- | --- |\n"
        + "".join(
            f"| {k} | {m[f'{k}/target_accuracy']:.4f} | {m[f'{k}/source_accuracy']:.4f} | "
            f"{m[f'{k}/target_entropy']:.3f} | {m[f'{k}/proxy_a_distance']:.2f} |\n"
            for k in ("source-only", "dann")
        )
        + f"\nDANN - source-only: **{gap * 100:+.1f} points** (target: >= +10). "
        f"Wall time {summary['wall_time_seconds']:.0f} s.\n"
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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/dann"))
    parser.add_argument("--markdown", type=Path, help="append the tables to this file")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="use finished runs in --out made with the same settings",
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
