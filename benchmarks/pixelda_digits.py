"""PixelDA against the paper, against DANN on the same data, and the Trainer's speed.

    python benchmarks/pixelda_digits.py --data-root ../shared/datasets --minutes 40
    python benchmarks/pixelda_digits.py --only speed

Parts:
  budget  MNIST -> MNIST-M with a preset (``small`` on CPUs) trained for a wall-clock
          budget through the product (recipes.run_recipe on mnist-mnistm-pixelda);
          target accuracy beside the paper (0.982; source-only 0.636) and beside the
          DANN result on the same data (--dann-accuracy, or the DANN benchmark's
          last summary if present); adapted digits copied to docs/images/.
  speed   a PixelDA step through gan.Trainer vs a hand-written loop of the same
          nets and batch, interleaved in one process.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from report import run_parts, trainer_overhead, trainer_seconds

from counterfeit.adapt.pixelda import PixelDA
from counterfeit.gan.data import DomainSpec, InfiniteLoader, ZipLoader, build_domain
from counterfeit.gan.losses import minimax_d, non_saturating_g
from counterfeit.recipes import load_recipe, run_recipe

PAPER = {"pixelda": 0.982, "source-only": 0.636}
DANN_SUMMARY = Path("benchmarks/out/dann/mnist-mnistm-dann/summary.json")


def budget_part(args) -> str:
    overrides = [
        f"data.root={args.data_root}",
        f"model.preset={args.preset}",
        f"train.steps={args.max_steps}",
        f"train.max_minutes={args.minutes}",
        f"seed={args.seed}",
        "tracking.enabled=false",
        f"train.eval_every={args.eval_every}",
        f"samples_every={args.eval_every}",
    ]
    out = args.out / "mnist-mnistm-pixelda"
    summary = run_recipe(load_recipe("mnist-mnistm-pixelda", overrides), out=out, overwrite=True)
    m = summary["metrics"]
    details = summary["pixelda"]
    dann = args.dann_accuracy
    if dann is None and DANN_SUMMARY.is_file():
        dann = json.loads(DANN_SUMMARY.read_text())["metrics"].get("dann/target_accuracy")
    images = Path("docs/images")
    images.mkdir(parents=True, exist_ok=True)
    for name in ("adapted.png", "noise_sweep.png"):
        shutil.copy(out / "plots" / name, images / f"pixelda_mnistm_{name}")
    verdict = ""
    if dann is not None:
        gap = m["pixelda/target_accuracy"] - dann
        verdict = f"\nPixelDA - DANN on the same data: **{gap * 100:+.1f} points** (target: > 0).\n"
    curve = ", ".join(f"{step}: {acc:.3f}" for step, acc in details["curve"])
    curve = f"\nTarget accuracy during training (step: accuracy): {curve}.\n" if curve else ""
    return (
        f"### MNIST -> MNIST-M, preset `{args.preset}`, {args.minutes:.0f}-minute budget (seed {args.seed})\n\n"
        "| | target acc | source acc (T_s) | adapted acc | steps | train s |\n| --- | --- | --- | --- | --- | --- |\n"
        f"| PixelDA ({args.preset}) | {m['pixelda/target_accuracy']:.4f} | {m['pixelda/source_accuracy']:.4f} | "
        f"{m['pixelda/adapted_accuracy']:.4f} | {details['steps']} | {details['train_seconds']:.0f} |\n"
        f"| DANN, same data (benchmarks/dann_digits.py) | {dann if dann is None else f'{dann:.4f}'} | | | | |\n"
        f"| paper: PixelDA / source-only | {PAPER['pixelda']} / {PAPER['source-only']} | | | | |\n"
        f"{verdict}{curve}\n"
        "Adapted digits (top: MNIST input; below: G's output) and a noise sweep:\n\n"
        "![adapted](images/pixelda_mnistm_adapted.png)\n\n![noise sweep](images/pixelda_mnistm_noise_sweep.png)\n"
    )


def plain_loop(model: PixelDA, data, steps: int) -> float:
    """The same PixelDA step written out by hand: no Trainer."""
    hp = model.hparams
    adam = dict(lr=hp["lr"], betas=(hp["beta1"], 0.999), weight_decay=hp["weight_decay"])
    opt_d = torch.optim.Adam(
        list(model.discriminator.parameters()) + list(model.task.parameters()), **adam
    )
    opt_g = torch.optim.Adam(model.generator.parameters(), **adam)
    g, d, t = model.generator, model.discriminator, model.task
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        (xs, ys), (xt, _) = next(data)
        xs, xt = xs * 2 - 1, xt * 2 - 1
        with torch.no_grad():
            fake = g(xs, g.sample_noise(len(xs)))
        d_loss = (
            hp["domain_weight"] * minimax_d(d(xt), d(fake))
            + F.cross_entropy(t(xs, source=True), ys)
            + F.cross_entropy(t(fake), ys)
        )
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        for p in list(d.parameters()) + list(t.parameters()):
            p.requires_grad_(False)
        fake = g(xs, g.sample_noise(len(xs)))
        g_loss = hp["style_weight"] * non_saturating_g(d(fake)) + hp[
            "task_in_g_weight"
        ] * F.cross_entropy(t(fake), ys)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for p in list(d.parameters()) + list(t.parameters()):
            p.requires_grad_(True)
    return time.perf_counter() - start


def speed_part(args) -> str:
    source = build_domain(DomainSpec(name="synthetic-digits", n=2000), "train", 28)
    target = build_domain(DomainSpec(name="mnistm-style"), "train", 28).unlabeled()
    batch, steps = 32, args.speed_steps

    def stream(seed: int) -> ZipLoader:
        return ZipLoader(
            InfiniteLoader(source, batch, seed=seed), InfiniteLoader(target, batch, seed=seed + 1)
        )

    def time_round(round_: int) -> tuple[float, float]:
        torch.manual_seed(round_)
        t_plain = plain_loop(PixelDA(preset=args.preset), stream(round_), steps)
        torch.manual_seed(round_)
        return t_plain, trainer_seconds(PixelDA(preset=args.preset), stream(round_), steps)

    return trainer_overhead(
        f"PixelDA step (`{args.preset}`), batch {batch}+{batch}, {steps} steps",
        args.speed_rounds,
        steps * 2 * batch,
        time_round,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--only", choices=["budget", "speed"], action="append")
    parser.add_argument("--preset", default="small", choices=["small", "paper"])
    parser.add_argument("--minutes", type=float, default=40.0)
    parser.add_argument("--max-steps", type=int, default=200_000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--dann-accuracy", type=float)
    parser.add_argument("--speed-steps", type=int, default=20)
    parser.add_argument("--speed-rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/pixelda"))
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    parts = args.only or ["budget", "speed"]
    if "budget" in parts and args.data_root is None:
        parser.error("the budget part needs --data-root")
    run_parts("PixelDA benchmark", parts, {"budget": budget_part, "speed": speed_part}, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
