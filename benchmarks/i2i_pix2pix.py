"""pix2pix parts of ``benchmarks/image2image.py``: quality on held-out pairs, Trainer speed.

``pix2pix(args)``: the edges2digits-pix2pix recipe through the product (Canny edges of
the embedded real MNIST digits -> the digits, 32 px): mean L1 and SSIM on the 1,000
held-out pairs for pix2pix (Isola et al. 2017: U-Net + PatchGAN, cGAN + 100 L1) and
for the paper's L1-only U-Net trained from the same seed for the same steps, beside
trivial predictors. Isola et al. (Table 1, Fig. 4) find that L1 alone gives the lowest
per-pixel error but blurry outputs and that the cGAN term trades a little L1 for
sharpness. On 32 px digits the two come out close (the 16x16 PatchGAN adds little
that L1 misses); both must beat the trivial predictors by far.

``speed(args)``: images/s of a pix2pix step through :class:`gan.Trainer` beside a
hand-written PyTorch loop of the same nets, losses and optimizers on the same batches
(interleaved rounds, :func:`report.trainer_overhead`; target ratio >= 0.95).

``args``: ``out`` (Path), ``images`` (Path or None: where the grid is copied),
``steps`` (int or None: :data:`DEFAULT_STEPS`), ``seed`` (optional), ``data_root`` (unused).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from report import trainer_overhead, trainer_seconds

from counterfeit.gan.data import InfiniteLoader, edges2digits
from counterfeit.gan.models import Pix2Pix
from counterfeit.recipes import load_recipe, run_recipe

DEFAULT_STEPS = 1500
SPEED_STEPS, SPEED_ROUNDS, SPEED_BATCH, SPEED_WIDTH = 30, 3, 16, 32


def pix2pix(args: argparse.Namespace) -> str:
    """Pix2Pix vs the L1-only U-Net on edges2digits (Markdown)."""
    steps = args.steps or DEFAULT_STEPS
    seed = getattr(args, "seed", 0)
    out = Path(args.out) / "pix2pix"
    overrides = [
        f"train.steps={steps}",
        f"train.checkpoint_every={steps}",
        f"evaluation.samples_every={max(steps // 4, 1)}",
        "baselines=true",
        f"seed={seed}",
        "tracking.enabled=false",
    ]
    loaded = load_recipe("edges2digits-pix2pix", overrides)
    summary = run_recipe(loaded, out=out, overwrite=True)
    recipe = loaded.recipe
    scores, train = summary["scores"], summary["train"]
    rows = [
        ("Pix2Pix (U-Net + PatchGAN, cGAN + 100 L1)", "pix2pix"),
        ("L1-only U-Net (no D)", "l1-unet"),
        ("mean training target", "mean training target"),
        ("identity (edge map as the digit)", "identity (A as B)"),
    ]
    table = "| model | held-out L1 | held-out SSIM | steps | train s |\n| --- | --- | --- | --- | --- |\n"
    for label, key in rows:
        if key not in scores:
            continue
        t = train.get(key)
        steps_cell = str(t["steps"]) if t else "-"
        seconds_cell = f"{t['train_seconds']:.0f}" if t else "-"
        table += (
            f"| {label} | {scores[key]['l1']:.4f} | {scores[key]['ssim']:.4f} | "
            f"{steps_cell} | {seconds_cell} |\n"
        )
    arch = summary["architecture"]
    m = recipe.model
    text = (
        f"### Pix2Pix on edges2digits ({steps} steps of batch {recipe.train.batch_size}, "
        f"seed {seed})\n\n{table}\n"
        f"{summary['n_held_out_pairs']} held-out pairs (mnist-small test split, Canny edges, "
        f"32 px); L1 in [0, 1] pixel units, SSIM from torchmetrics (11x11 Gaussian window); G in "
        f"eval mode. U-Net depth {arch['unet_depth']} (width {m.g_width}, dropout in decoder "
        f"levels {arch['unet_dropout_levels']}), PatchGAN {arch['patchgan_layers']} strided "
        f"layer(s): {arch['patchgan_receptive_field']}x{arch['patchgan_receptive_field']} px "
        f"receptive field (the paper's 70x70 is for 256 px). Adam 2e-4, beta1 0.5, lambda_L1 "
        f"{m.lambda_l1:g}; batch {recipe.train.batch_size} with BatchNorm (paper: batch 1).\n"
    )
    if args.images is not None:
        images = Path(args.images)
        images.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "plots" / "test_grid.png", images / "pix2pix_edges2digits.png")
        text += (
            "\n![held-out edges2digits pairs: input | Pix2Pix | L1-only U-Net | target]"
            "(images/pix2pix_edges2digits.png)\n"
        )
    (out / "scores.json").write_text(json.dumps(scores, indent=2))
    return text


# -- speed ------------------------------------------------------------------------------------


def plain_loop(model: Pix2Pix, data, steps: int) -> float:
    """The same pix2pix step written out by hand: no Trainer, no StepContext."""
    g, d = model.generator, model.discriminator
    assert d is not None
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = torch.nn.BCEWithLogitsLoss()
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        a, b = next(data)
        a, b = a * 2 - 1, b * 2 - 1
        fake = g(a)
        pred_fake = d(torch.cat([a, fake.detach()], 1))
        pred_real = d(torch.cat([a, b], 1))
        loss_d = 0.5 * (
            bce(pred_fake, torch.zeros_like(pred_fake)) + bce(pred_real, torch.ones_like(pred_real))
        )
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        d.requires_grad_(False)
        pred = d(torch.cat([a, fake], 1))
        loss_g = bce(pred, torch.ones_like(pred)) + 100.0 * F.l1_loss(fake, b)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        d.requires_grad_(True)
    return time.perf_counter() - start


def speed(args: argparse.Namespace) -> str:
    """Trainer vs hand-written loop on a pix2pix step (Markdown)."""
    train = edges2digits("train")

    def time_round(round_: int) -> tuple[float, float]:
        torch.manual_seed(round_)
        model = Pix2Pix(32, 1, 1, g_width=SPEED_WIDTH, d_width=SPEED_WIDTH)
        t_plain = plain_loop(model, InfiniteLoader(train, SPEED_BATCH, seed=round_), SPEED_STEPS)
        torch.manual_seed(round_)
        model = Pix2Pix(32, 1, 1, g_width=SPEED_WIDTH, d_width=SPEED_WIDTH)
        loader = InfiniteLoader(train, SPEED_BATCH, seed=round_)
        return t_plain, trainer_seconds(model, loader, SPEED_STEPS)

    return trainer_overhead(
        f"Pix2Pix step (edges2digits 32 px, U-Net/PatchGAN width {SPEED_WIDTH}, batch "
        f"{SPEED_BATCH}), {SPEED_STEPS} steps",
        SPEED_ROUNDS,
        SPEED_STEPS * SPEED_BATCH,
        time_round,
    )
