"""Adversarial patches and AdvGAN on full MNIST, against a calibration run, FGSM/PGD and ART.

    python benchmarks/patch.py --data-root ../shared/datasets                 # everything
    python benchmarks/patch.py --data-root DIR --only patches --targets 3     # a reduced run
    python benchmarks/patch.py --data-root DIR --only advgan

Parts (one MNIST CNN for all, --arch: Wong et al. 2020's network (default),
PyTorch's MNIST example CNN, LeNet-5, a BatchNorm CNN or an all-convolutional CNN
with global average pooling (`--arch gap`), trained here for
--epochs epochs of batch 100 with Adam and a cyclic learning rate through
robust.AdversarialTraining(method="standard") + gan.Trainer):

  calibration  The plain EOT patch the issue was calibrated with, rebuilt with
               robust.AdversarialPatch: patch values optimised directly and
               clipped to [0, 1], cross-entropy, Adam at a constant 0.01, 300
               steps of batch 64; random location, rotation up to 22.5 degrees,
               scale 0.8-1.2. Target 3 at each area, beside our schedule with the
               paper's cross-entropy (lr 0.1) and ours (--loss, --lr).
  bound        Per-image patches for target 3 at each area (one patch per test image and
               placement): an upper bound on what a universal patch of that area can do.
  patches      Our patch (--steps steps, cosine-annealed Adam on sigmoid logits,
               --loss: by default the target's probability, at --lr 0.3)
               for every target class at every area, each beside a random-noise
               patch of the same size: a table and a heat map (--images;
               patch_success_heatmap.png, or patch_success_heatmap_ARCH.png).
  advgan       AdvGAN (robust.AdvGAN, Xiao et al. 2018) trained for --advgan-steps
               at each --eps, beside FGSM and PGD-40 at the same L-inf eps:
               untargeted success on correctly classified test images and
               images/s (AdvGAN: one generator forward pass).
  art          Seconds per patch of our AdversarialPatch vs ART's
               AdversarialPatchPyTorch (same model, steps, batch, patch size,
               rotation and scale range), and each patch's success.

Success is the fraction of test images (none of the target class) whose
top-1 prediction becomes the target; every image gets one random placement
from the training distribution (same placements for the control).
ART is imported from --peers (default benchmarks/.peers, gitignored):

    .venv/bin/pip install --no-deps --target benchmarks/.peers adversarial-robustness-toolbox==1.20.1
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from patch_models import ARCH_NAMES, ARCHS, DEFAULT_ARCH
from report import machine

from counterfeit.gan import Trainer, TrainerConfig
from counterfeit.gan.data import InfiniteLoader, load_mnist
from counterfeit.robust import (
    AdversarialPatch,
    AdversarialTraining,
    AdvGAN,
    fgsm,
    pgd,
    place_patch,
)

CALIBRATION = {0.10: 0.18, 0.20: 0.45, 0.30: 0.81}  # target 3, from the issue
CALIBRATION_CONTROL = {0.20: 0.06, 0.30: 0.10}
ART_HINT = "pip install --no-deps --target benchmarks/.peers adversarial-robustness-toolbox==1.20.1"


def train_model(args) -> tuple[torch.nn.Module, float, float]:
    train = load_mnist(args.data_root, "train")
    test = load_mnist(args.data_root, "test")
    torch.manual_seed(args.seed)
    method = AdversarialTraining(
        ARCHS[args.arch](), method="standard", lr=args.model_lr, lr_peak=0.4
    )
    steps = args.epochs * len(train) // 100
    config = TrainerConfig(max_steps=steps, progress=False, log_every=100, seed=args.seed)
    started = time.perf_counter()
    Trainer(method, InfiniteLoader(train, 100, seed=args.seed), config).fit()
    seconds = time.perf_counter() - started
    model = method.model.eval()
    x, y = test.get_batch(torch.arange(len(test)))
    with torch.no_grad():
        accuracy = float((model(x).argmax(1) == y).float().mean())
    return model, accuracy, seconds


def ours(model, target: int, area: float, args, **overrides) -> AdversarialPatch:
    options = dict(
        shape=args.shape,
        area=area,
        scale=(0.8, 1.2),
        rotation=22.5,
        steps=args.steps,
        batch_size=args.batch,
        lr=args.lr,
        lr_schedule="cosine",
        parameterization="sigmoid",
        loss=args.loss,
        seed=args.seed,
        progress=False,
    )
    options.update(overrides)
    return AdversarialPatch(model, target, **options)


def calibration_like(model, target: int, area: float, args) -> AdversarialPatch:
    return ours(
        model,
        target,
        area,
        args,
        steps=300,
        batch_size=64,
        lr=0.01,
        lr_schedule="constant",
        parameterization="clip",
        loss="ce",
    )


def paper_loss(model, target: int, area: float, args) -> AdversarialPatch:
    """Our schedule with the paper's cross-entropy at lr 0.1 (the library's defaults)."""
    return ours(model, target, area, args, lr=0.1, loss="ce")


def calibration_part(args, model, train, test) -> str:
    rows = [
        "### Target 3: the calibration patch, rebuilt, beside ours\n",
        f"Same CNN, same placements; {args.n} test images per cell (no 3s).\n",
        "| area | issue's calibration | plain EOT here (300 steps, clip, lr 0.01) | control | "
        f"paper's loss (cross-entropy, lr 0.1) | ours ({args.loss}, lr {args.lr:g}) | control | "
        "seconds (plain / ours) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for area in args.areas:
        cells = []
        for build in (calibration_like, paper_loss, ours):
            started = time.perf_counter()
            attack = build(model, 3, area, args).fit(train)
            seconds = time.perf_counter() - started
            result = attack.evaluate(test, n=args.n, seed=args.seed + 1)
            cells.append((result.success, result.control, seconds))
        paper = CALIBRATION.get(round(area, 2))
        rows.append(
            f"| {area:g} | {'n/a' if paper is None else f'{paper:.2f}'} | {cells[0][0]:.3f} | "
            f"{cells[0][1]:.3f} | {cells[1][0]:.3f} | **{cells[2][0]:.3f}** | {cells[2][1]:.3f} | "
            f"{cells[0][2]:.0f} / {cells[2][2]:.0f} |"
        )
        print(rows[-1], flush=True)
    return "\n".join(rows) + "\n\n"


def bound_part(args, model, train, test) -> str:
    """Per-image patches: what a patch of each area can do when it need not be universal."""
    x, y = test.get_batch(torch.arange(len(test)))
    keep = y != 3
    x = x[keep][: args.n_bound]
    rows = [
        "### Target 3: per-image patches, an upper bound for a universal one\n",
        f"One patch optimised for each of {len(x)} test images (no 3s) at one random placement "
        "(300 steps of Adam, lr 0.1, on sigmoid logits, cross-entropy), against the universal "
        "patch of the calibration part on the same model.\n",
        "| area | per-image patches | seconds |",
        "| --- | --- | --- |",
    ]
    for area in args.areas:
        started = time.perf_counter()
        attack = ours(model, 3, area, args, image_size=x.shape[-1], channels=x.shape[1])
        placement = attack.sample_placement(len(x), torch.Generator().manual_seed(args.seed + 1))
        mask, side = attack.mask, attack.side()
        logits = torch.zeros(len(x), *attack.patch.shape, requires_grad=True)
        optimizer = torch.optim.Adam([logits], lr=0.1)
        target = torch.full((len(x),), 3)
        for _ in range(300):
            patched, _ = place_patch(x, logits.sigmoid(), mask, side, placement)
            loss = torch.nn.functional.cross_entropy(model(patched), target, reduction="sum")
            (logits.grad,) = torch.autograd.grad(loss, logits)
            optimizer.step()
        with torch.no_grad():
            patched, _ = place_patch(x, logits.sigmoid(), mask, side, placement)
            success = float((model(patched).argmax(1) == 3).float().mean())
        seconds = time.perf_counter() - started
        rows.append(f"| {area:g} | **{success:.3f}** | {seconds:.0f} |")
        print(rows[-1], flush=True)
    return "\n".join(rows) + "\n\n"


def patches_part(args, model, train, test) -> str:
    success = np.zeros((len(args.targets), len(args.areas)))
    control = np.zeros_like(success)
    started = time.perf_counter()
    for i, target in enumerate(args.targets):
        for j, area in enumerate(args.areas):
            attack = ours(model, target, area, args).fit(train)
            result = attack.evaluate(test, n=args.n, seed=args.seed + 1)
            success[i, j], control[i, j] = result.success, result.control
            print(
                f"target {target} area {area:g}: {result.success:.3f} (control "
                f"{result.control:.3f})",
                flush=True,
            )
    seconds = time.perf_counter() - started
    lines = [
        f"### Every target class: targeted success (random-noise control), {args.steps} steps\n",
        f"{len(args.targets) * len(args.areas)} patches in {seconds / 60:.1f} minutes; "
        f"{args.n} test images per cell.\n",
        "| target | " + " | ".join(f"area {a:g}" for a in args.areas) + " |",
        "| --- |" + " --- |" * len(args.areas),
    ]
    for i, target in enumerate(args.targets):
        cells = [f"{success[i, j]:.3f} ({control[i, j]:.3f})" for j in range(len(args.areas))]
        lines.append(f"| {target} | " + " | ".join(cells) + " |")
    mean = [
        f"**{success[:, j].mean():.3f}** ({control[:, j].mean():.3f})"
        for j in range(len(args.areas))
    ]
    lines.append("| mean | " + " | ".join(mean) + " |")
    if args.images:
        path = heat_map(args, success, control)
        lines.append(f"\n![targeted success heat map]({os.path.relpath(path, 'docs')})\n")
    return "\n".join(lines) + "\n\n"


def heat_map(args, success: np.ndarray, control: np.ndarray) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8.5, 0.45 * len(args.targets) + 1.6))
    for ax, values, title in zip(axes, (success, control), ("adversarial patch", "random noise")):
        image = ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(args.areas)), [f"{a:g}" for a in args.areas])
        ax.set_yticks(range(len(args.targets)), [str(t) for t in args.targets])
        ax.set_xlabel("patch area (fraction of the image)")
        ax.set_ylabel("target class")
        ax.set_title(title)
        for (r, c), v in np.ndenumerate(values):
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if v < 0.5 else "black")  # fmt: skip
    fig.colorbar(image, ax=axes, shrink=0.8, label="targeted success")
    fig.suptitle(
        f"{ARCH_NAMES[args.arch]}:\ntargeted success of one patch per cell ({args.steps} steps)"
    )
    suffix = "" if args.arch == DEFAULT_ARCH else f"_{args.arch}"
    path = Path(args.images) / f"patch_success_heatmap{suffix}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def advgan_part(args, model, train, test) -> str:
    x, y = test.get_batch(torch.arange(args.n))
    with torch.no_grad():
        right = model(x).argmax(1) == y
    x, y = x[right], y[right]
    lines = [
        f"### AdvGAN vs FGSM and PGD at the same L-inf eps ({len(x)} correctly classified "
        "test images)\n",
        "| eps | attack | untargeted success | images/s | training |",
        "| --- | --- | --- | --- | --- |",
    ]

    def measure(attack) -> tuple[float, float]:
        started = time.perf_counter()
        x_adv = torch.cat([attack(x[s : s + 500], y[s : s + 500]) for s in range(0, len(x), 500)])
        seconds = time.perf_counter() - started
        with torch.no_grad():
            fooled = float((model(x_adv).argmax(1) != y).float().mean())
        return fooled, len(x) / seconds

    for eps in args.eps:
        torch.manual_seed(args.seed)
        advgan = AdvGAN(model, eps=eps, channels=1, image_size=28)
        config = TrainerConfig(
            max_steps=args.advgan_steps, progress=False, log_every=100, seed=args.seed
        )
        started = time.perf_counter()
        Trainer(advgan, InfiniteLoader(train, 64, seed=args.seed), config).fit()
        train_seconds = time.perf_counter() - started
        results = {
            "AdvGAN": measure(lambda xb, yb, g=advgan: g.generate(xb)),
            "FGSM": measure(lambda xb, yb, e=eps: fgsm(model, xb, yb, e)),
            "PGD-40": measure(
                lambda xb, yb, e=eps: pgd(model, xb, yb, e, steps=40, step_size=0.01)
            ),
        }
        for name, (rate, speed) in results.items():
            cost = f"{args.advgan_steps} steps, {train_seconds:.0f} s" if name == "AdvGAN" else ""
            rows = f"| {eps:g} | {name} | {rate:.3f} | {speed:,.0f} | {cost} |"
            lines.append(rows)
            print(rows, flush=True)
    return "\n".join(lines) + "\n\n"


def art_part(args, model, train, test) -> str:
    if args.peers.is_dir():
        sys.path.insert(0, str(args.peers.resolve()))
    try:
        from art.attacks.evasion import AdversarialPatchPyTorch
        from attacks import art_classifier
    except ImportError as exc:
        return f"### Against ART\n\nART is not installed ({exc}); install with `{ART_HINT}`.\n\n"
    import art

    area = args.art_area
    target = 3
    steps = args.art_steps
    x_train, y_train = train.get_batch(torch.arange(len(train)))
    keep = (y_train != target).nonzero().flatten()[: args.batch]
    # ART's patch is a square of patch_shape, scaled by scale_min..max of the *image* side
    side = math.sqrt(area)  # fraction of the image side for a square of this area
    classifier = art_classifier(model)
    attack = AdversarialPatchPyTorch(
        classifier,
        rotation_max=22.5,
        scale_min=0.8 * side,
        scale_max=min(1.0, 1.2 * side),
        learning_rate=0.1,
        max_iter=steps,
        batch_size=args.batch,
        patch_shape=(1, 28, 28),
        patch_type="square",
        optimizer="Adam",
        targeted=True,
        verbose=False,
    )
    xs = x_train[keep].numpy()
    labels = np.eye(10)[np.full(len(xs), target)]
    started = time.perf_counter()
    attack.generate(x=xs, y=labels)
    art_seconds = time.perf_counter() - started
    x_test, y_test = test.get_batch(torch.arange(len(test)))
    mask = y_test != target
    x_eval = x_test[mask][: args.n].numpy()
    patched = attack.apply_patch(x_eval, scale=side)
    with torch.no_grad():
        art_success = float((model(torch.from_numpy(patched)).argmax(1) == target).float().mean())
    started = time.perf_counter()
    mine = ours(model, target, area, args, shape="square", steps=steps, batch_size=args.batch)
    mine.fit((x_train[keep], y_train[keep]))
    our_seconds = time.perf_counter() - started
    our_success = mine.evaluate(test, n=args.n, seed=args.seed + 1).success
    return (
        f"### Against ART {art.__version__} `AdversarialPatchPyTorch`\n\n"
        f"Target 3, square patch of area {area:g}, {steps} steps of batch {args.batch} "
        "(the same images), rotation up to 22.5 degrees, scale 0.8-1.2 of the patch side.\n\n"
        "| implementation | seconds | steps/s | targeted success |\n| --- | --- | --- | --- |\n"
        f"| counterfeit `AdversarialPatch` | {our_seconds:.1f} | {steps / our_seconds:.1f} | "
        f"{our_success:.3f} |\n"
        f"| ART `AdversarialPatchPyTorch` | {art_seconds:.1f} | {steps / art_seconds:.1f} | "
        f"{art_success:.3f} |\n\n"
        f"Speed ratio: ours is {art_seconds / our_seconds:.1f}x ART's speed.\n\n"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", required=True, type=Path)
    parser.add_argument(
        "--only", choices=["calibration", "bound", "patches", "advgan", "art"], action="append"
    )
    parser.add_argument("--epochs", type=int, default=1, help="CNN training epochs (default 1)")
    parser.add_argument(
        "--arch", default=DEFAULT_ARCH, choices=list(ARCHS), help="the attacked CNN"
    )
    parser.add_argument("--model-lr", type=float, default=5e-3, help="peak Adam lr of the CNN")
    parser.add_argument("--targets", default="0,1,2,3,4,5,6,7,8,9")
    parser.add_argument("--areas", default="0.05,0.1,0.2,0.3")
    parser.add_argument("--steps", type=int, default=600, help="our patch's steps (default 600)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.3, help="our patch's Adam lr (default 0.3)")
    parser.add_argument(
        "--loss",
        default="probability",
        choices=["ce", "margin", "probability"],
        help="our patch's loss (default probability; ce is the paper's)",
    )
    parser.add_argument("--shape", default="circle", choices=["circle", "square"])
    parser.add_argument("--n", type=int, default=1000, help="test images per measurement")
    parser.add_argument("--n-bound", type=int, default=500, help="images for per-image patches")
    parser.add_argument("--eps", default="0.1,0.2,0.3", help="AdvGAN/FGSM/PGD budgets")
    parser.add_argument("--advgan-steps", type=int, default=1500)
    parser.add_argument("--art-steps", type=int, default=100)
    parser.add_argument("--art-area", type=float, default=0.2)
    parser.add_argument("--peers", type=Path, default=Path("benchmarks/.peers"))
    parser.add_argument("--images", default="docs/images", help="heat map folder ('' for none)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.targets = [int(t) for t in args.targets.split(",")]
    args.areas = [float(a) for a in args.areas.split(",")]
    args.eps = [float(e) for e in args.eps.split(",")]
    torch.set_num_threads(args.threads)
    parts = args.only or ["calibration", "bound", "patches", "advgan", "art"]
    started = time.perf_counter()
    model, accuracy, seconds = train_model(args)
    train = load_mnist(args.data_root, "train")
    test = load_mnist(args.data_root, "test")
    text = (
        f"## Adversarial patches and AdvGAN (robust; issue 6)\n\n"
        f"`python benchmarks/patch.py {' '.join(argv if argv is not None else sys.argv[1:])}` "
        f"on {machine()}, {datetime.date.today()}.\n\n"
        f"The attacked model: {ARCH_NAMES[args.arch]}, {args.epochs} epoch(s) of full "
        f"MNIST in {seconds:.0f} s, test accuracy {accuracy:.4f}.\n\n"
    )
    print(text, flush=True)
    functions = {
        "calibration": calibration_part,
        "bound": bound_part,
        "patches": patches_part,
        "advgan": advgan_part,
        "art": art_part,
    }
    for part in parts:
        section = functions[part](args, model, train, test)
        print(section, flush=True)
        text += section
    text += f"Total: {(time.perf_counter() - started) / 60:.1f} minutes.\n"
    print("=" * 80)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
