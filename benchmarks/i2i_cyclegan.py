"""CycleGAN parts of the image-to-image benchmark (driver: benchmarks/image2image.py).

Parts (functions of the driver's parsed arguments, returning Markdown):
  cyclegan  the synth2real-cyclegan recipe (small preset, 28 px RGB, embedded data) run twice
            through the product: plain CycleGAN (Zhu et al. 2017) and with CyCADA's
            semantic-consistency loss (Hoffman et al. 2018, Eq. 4). Label preservation: a
            classifier trained on the real domain's labelled train split reads the synthetic
            test digits translated A -> B (target >= 0.90), beside the same classifier on
            untranslated synthetic and on real test digits; FID-digits of translated vs real.
  speed     images/s of a CycleGAN step through gan.Trainer vs a hand-written loop of the
            same nets, losses, pools and optimizers, interleaved in one process (>= 0.95).

``args`` needs ``.out`` (Path), ``.images`` (Path or None), ``.steps`` (int or None: the
defaults below) and ``.data_root`` (unused: everything here is embedded). Optional:
``.seed``, ``.cyclegan_reuse`` (read finished runs' summaries in OUT instead of training).
Alone (to run the two trainings as separate processes, one thread each):

    python benchmarks/i2i_cyclegan.py --variant plain --out benchmarks/out/i2i
    python benchmarks/i2i_cyclegan.py --variant semantic --out benchmarks/out/i2i
    python benchmarks/i2i_cyclegan.py --reuse --out benchmarks/out/i2i   # the Markdown
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import trainer_overhead, trainer_seconds

from counterfeit.gan.data import DomainSpec, InfiniteLoader, ZipLoader, build_domain
from counterfeit.gan.models.cyclegan import CycleGAN
from counterfeit.recipes import load_recipe, run_recipe

RECIPE = "synth2real-cyclegan"
DEFAULT_STEPS = 1000  # ~12-15 min on one CPU thread at batch 4 (small preset)
SPEED_STEPS = 20
SPEED_ROUNDS = 3
SEMANTIC_WEIGHT = (
    1.0  # equal to the adversarial terms; CyCADA does not fix one weight for all tasks
)
TARGET = 0.90
VARIANTS = {"plain": 0.0, "semantic": SEMANTIC_WEIGHT}


def run_variant(args: argparse.Namespace, variant: str) -> dict:
    """Train and evaluate one variant through the product; returns its summary."""
    out = Path(args.out) / f"cyclegan-{variant}"
    summary_path = out / "summary.json"
    if getattr(args, "cyclegan_reuse", False) and summary_path.is_file():
        return json.loads(summary_path.read_text())
    steps = args.steps or DEFAULT_STEPS
    overrides = [
        f"train.steps={steps}",
        f"train.checkpoint_every={max(1, steps // 4)}",
        f"samples_every={max(1, steps // 4)}",
        f"model.semantic_weight={VARIANTS[variant]}",
        f"seed={getattr(args, 'seed', 0)}",
        "train.progress=false",
        "train.log_every=50",
        "tracking.enabled=false",
    ]
    return run_recipe(load_recipe(RECIPE, overrides), out=out, overwrite=True)


def cyclegan(args: argparse.Namespace) -> str:
    """Label preservation and FID-digits of plain CycleGAN and CycleGAN + semantic loss."""
    summaries = {variant: run_variant(args, variant) for variant in VARIANTS}
    plain = summaries["plain"]["cyclegan"]
    hp = plain["hparams"]
    judge = plain.get("classifier", {})
    lines = [
        f"### CycleGAN synthetic digits -> MNIST-M-style real digits (`{RECIPE}`, preset "
        f"`{hp['preset']}`: ngf {hp['generator_width']}, {hp['generator_blocks']} residual "
        f"blocks, ndf {hp['discriminator_width']}, PatchGAN {plain['receptive_field']}x"
        f"{plain['receptive_field']}; batch {plain['batch_size']}, {plain['steps']} steps, "
        f"28 px RGB)\n",
        "Real-domain classifier (Ganin et al. MNIST net trained on the "
        f"{plain['images']['target_train']} labelled real train digits, "
        f"{judge.get('steps', '?')} Adam steps, augmentation {judge.get('augment', '?')}) reading "
        f"{plain['images']['source_test']} synthetic test digits; FID-digits against the "
        f"{plain['images']['target_test']} real test digits.\n",
        "| variant | translated acc (target >= 0.90) | untranslated acc | real test acc | "
        "source classifier on translated | FID-digits translated | FID-digits untranslated "
        "| train s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant, summary in summaries.items():
        d = summary["cyclegan"]
        m = d["metrics"]
        name = (
            "CycleGAN (paper losses)"
            if variant == "plain"
            else f"CycleGAN + semantic loss (CyCADA Eq. 4, weight {d['hparams']['semantic_weight']:g})"
        )
        lines.append(
            f"| {name} | **{m['translated_accuracy']:.4f}** | {m['untranslated_accuracy']:.4f} | "
            f"{m['real_accuracy']:.4f} | {m.get('source_classifier_translated', float('nan')):.4f} | "
            f"{m.get('fid-digits/translated', float('nan')):.2f} | "
            f"{m.get('fid-digits/untranslated', float('nan')):.2f} | {d['train_seconds']:.0f} |"
        )
    verdicts = []
    for variant, summary in summaries.items():
        acc = summary["cyclegan"]["metrics"]["translated_accuracy"]
        verdicts.append(f"{variant}: {'met' if acc >= TARGET else 'not met'} ({acc:.4f})")
    lines.append(f"\nTarget >= {TARGET} on translated digits: " + "; ".join(verdicts) + ".\n")
    lines.append(
        "The source classifier (f_S of the semantic loss, or one trained on the source for the "
        "plain run) reads the translations: how much of each digit's identity survives, in the "
        "source domain's eyes.\n"
    )
    lines.append(
        "Plain cycle consistency does not force a translated digit to keep its class (it can "
        "be encoded invisibly and decoded back); the semantic loss is CyCADA's remedy.\n"
    )
    images = getattr(args, "images", None)
    if images is not None:
        images = Path(images)
        images.mkdir(parents=True, exist_ok=True)
        for variant, summary in summaries.items():
            target = images / f"i2i_cyclegan_{variant}.png"
            shutil.copy(summary["cyclegan"]["grid"], target)
            lines.append(
                f"![CycleGAN {variant}: rows synthetic | translated | reconstructed | real | "
                f"translated back | reconstructed](images/{target.name})\n"
            )
    return "\n".join(lines) + "\n"


# -- speed -----------------------------------------------------------------------------


def plain_loop(model: CycleGAN, data, steps: int) -> float:
    """The same CycleGAN step written out by hand: no Trainer, no StepContext, no scheduler."""
    g_ab, g_ba, d_a, d_b = model.g_ab, model.g_ba, model.d_a, model.d_b
    opt_g = torch.optim.Adam([*g_ab.parameters(), *g_ba.parameters()], 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], 2e-4, betas=(0.5, 0.999))
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        (a, _), (b, _) = next(data)
        a, b = a * 2 - 1, b * 2 - 1
        d_a.requires_grad_(False)
        d_b.requires_grad_(False)
        fake_b, fake_a = g_ab(a), g_ba(b)
        rec_a, rec_b = g_ba(fake_b), g_ab(fake_a)
        g_loss = (
            (d_b(fake_b) - 1).pow(2).mean()
            + (d_a(fake_a) - 1).pow(2).mean()
            + 10 * (F.l1_loss(rec_a, a) + F.l1_loss(rec_b, b))
            + 5 * (F.l1_loss(g_ab(b), b) + F.l1_loss(g_ba(a), a))
        )
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        d_a.requires_grad_(True)
        d_b.requires_grad_(True)
        pb, pa = model.pool_b.query(fake_b), model.pool_a.query(fake_a)
        d_loss = 0.5 * (
            (d_b(b) - 1).pow(2).mean()
            + d_b(pb).pow(2).mean()
            + (d_a(a) - 1).pow(2).mean()
            + d_a(pa).pow(2).mean()
        )
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
    return time.perf_counter() - start


def speed(args: argparse.Namespace) -> str:
    """Trainer overhead on a CycleGAN step (small preset, 28 px, batch 4)."""
    a = build_domain(DomainSpec(name="synthetic-digits", n=400, n_test=10), "train", 28)
    b = build_domain(DomainSpec(name="mnistm-style"), "train", 28).take(400)
    batch = 4
    steps = getattr(args, "speed_steps", None) or SPEED_STEPS

    def stream(seed: int):
        return ZipLoader(
            InfiniteLoader(a, batch, seed=seed), InfiniteLoader(b, batch, seed=seed + 1)
        )

    def time_round(round_: int) -> tuple[float, float]:
        torch.manual_seed(round_)
        t_plain = plain_loop(
            CycleGAN((3, 28, 28), (3, 28, 28), preset="small"), stream(round_), steps
        )
        torch.manual_seed(round_)
        model = CycleGAN((3, 28, 28), (3, 28, 28), preset="small")
        return t_plain, trainer_seconds(model, stream(round_), steps)

    return trainer_overhead(
        f"CycleGAN step (small preset: ngf 32, 3 blocks, ndf 32; 28 px, batch {batch}, "
        f"pools of 50), {steps} steps",
        SPEED_ROUNDS,
        steps * batch,
        time_round,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", choices=list(VARIANTS), help="train only this variant")
    parser.add_argument("--reuse", action="store_true", help="read finished runs in --out")
    parser.add_argument("--speed", action="store_true", help="run the speed part")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/i2i"))
    parser.add_argument("--images", type=Path)
    parser.add_argument("--data-root", type=Path)
    args = parser.parse_args(argv)
    args.cyclegan_reuse = args.reuse
    torch.set_num_threads(args.threads)
    if args.variant:
        summary = run_variant(args, args.variant)
        print(json.dumps(summary["cyclegan"]["metrics"], indent=2))
        return 0
    text = speed(args) if args.speed else cyclegan(args)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / ("last-cyclegan-speed.md" if args.speed else "last-cyclegan.md")).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
