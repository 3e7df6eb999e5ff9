"""FGSM-family attacks and FGSM adversarial training against the papers and peers.

    python benchmarks/attacks.py --data-root ../shared/datasets              # everything
    python benchmarks/attacks.py --data-root DIR --only peers                # one part

Parts:
  paper   Full MNIST, Wong et al. 2020's MNIST CNN trained through the product
          (robust.AdversarialTraining + gan.Trainer, Adam, cyclic lr, batch 100):
          standard training and FGSM adversarial training with a random start
          (Wong et al. 2020, eps 0.3, alpha 1.25 eps). FGSM error at eps 0.25 beside
          Goodfellow et al. 2015 (89.4% on a maxout network; 17.9% after their
          adversarial training), plus PGD-40 (Madry et al. 2018: steps of 0.01).
  peers   One trained CNN, one batch: our FGSM against torchattacks' FGSM (equal
          within 1e-6) and ART's FastGradientMethod; our BIM against torchattacks'
          BIM; images/s of each beside a hand-written PyTorch FGSM, interleaved rounds.

Peers are imported from --peers (default benchmarks/.peers, gitignored), installed with

    .venv/bin/pip install --no-deps --target benchmarks/.peers \\
        torchattacks==3.5.1 adversarial-robustness-toolbox==1.20.1

(--no-deps: torchattacks pins an old `requests` that breaks MLflow's dependencies).
A peer that is not installed is reported as such, not skipped silently.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from report import run_parts

from counterfeit.gan import Trainer, TrainerConfig
from counterfeit.gan.data import InfiniteLoader, load_mnist
from counterfeit.robust import (
    AdversarialTraining,
    CatastrophicOverfittingStop,
    bim,
    digits_cnn,
    evaluate,
    fgsm,
)

PAPER_FGSM_ERROR = {"standard": 0.894, "adversarially trained": 0.179}  # Goodfellow et al. 2015
PEERS_HINT = (
    "pip install --no-deps --target benchmarks/.peers torchattacks==3.5.1 "
    "adversarial-robustness-toolbox==1.20.1"
)


def train(method: str, data, steps: int, eps: float, seed: int, callbacks=(), **options):
    """Wong et al.'s MNIST recipe through the product; ``options`` go to AdversarialTraining."""
    torch.manual_seed(seed)
    trainer_method = AdversarialTraining(
        digits_cnn(), method=method, eps=eps, lr=5e-3, lr_peak=0.4, optimizer="adam", **options
    )
    config = TrainerConfig(max_steps=steps, progress=False, log_every=100, seed=seed)
    result = Trainer(trainer_method, data, config, callbacks=callbacks, description=method).fit()
    return trainer_method.model.eval(), result


def paper_part(args) -> str:
    train_set = load_mnist(args.data_root, "train")
    test_set = load_mnist(args.data_root, "test")
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(args.seed))
    heldout = train_set.subset(order[: args.holdout])
    train_set = train_set.subset(order[args.holdout :])
    steps = args.epochs * len(train_set) // 100
    rows = []
    for method in args.methods:
        data = InfiniteLoader(train_set, 100, seed=args.seed)
        callbacks = []
        if method != "standard":  # Wong et al.'s early stop: PGD on held-out images every epoch
            x_held, y_held = heldout.get_batch(torch.arange(len(heldout)))
            callbacks.append(
                CatastrophicOverfittingStop(
                    x_held, y_held, args.train_eps, every=len(data), seed=args.seed
                )
            )
        model, result = train(method, data, steps, args.train_eps, args.seed, callbacks)
        seconds = result.wall_time
        stopped = f"step {result.steps}" if result.stopped_early else "no"
        print(f"{method}: trained in {seconds:.0f} s; {result.stopped_early}", flush=True)
        started = time.perf_counter()
        report = evaluate(  # FGSM on all 10,000 test images
            model,
            test_set,
            attacks=["fgsm"],
            eps=[0.0, 0.1, 0.25, 0.3],
            corruptions=None,
            batch_size=500,
            seed=args.seed,
        )
        strong = evaluate(  # PGD-40 (Madry et al.'s MNIST step of 0.01) on a random subset
            model,
            test_set,
            attacks=["pgd"],
            eps=[0.25, 0.3],
            corruptions=None,
            attack_options={"pgd": {"steps": 40, "step_size": 0.01}},
            max_examples=args.pgd_images,
            batch_size=500,
            seed=args.seed,
        )
        fgsm_acc, pgd_acc = report.attacks["fgsm"], strong.attacks["pgd"]
        paper = PAPER_FGSM_ERROR["standard" if method == "standard" else "adversarially trained"]
        rows.append(
            f"| {method} | {report.clean_accuracy:.4f} | {1 - fgsm_acc[2]:.1%} | {paper:.1%} | "
            f"{1 - fgsm_acc[1]:.1%} | {1 - fgsm_acc[3]:.1%} | {1 - pgd_acc[0]:.1%} | "
            f"{1 - pgd_acc[1]:.1%} | {stopped} | {seconds:.0f} | {time.perf_counter() - started:.0f} |"
        )
        print(rows[-1], flush=True)
    return (
        f"### MNIST: FGSM error at eps 0.25 (Goodfellow et al. 2015) and PGD-40, "
        f"{args.epochs} epochs of {len(train_set)} images ({args.holdout} held out for the "
        f"catastrophic-overfitting check), training eps {args.train_eps}, seed {args.seed}\n\n"
        f"FGSM on the full test set (10,000 images), PGD-40 on {args.pgd_images} of them (seeded "
        "random subset); attacks use the true labels; images clipped to [0, 1]. Errors are "
        "1 - accuracy under attack.\n\n"
        "| model | clean acc | FGSM 0.25 error | paper (maxout) | FGSM 0.1 | FGSM 0.3 | "
        "PGD-40 0.25 | PGD-40 0.3 | stopped early | train s | eval s |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        + "\n".join(rows)
        + "\n"
    )


# -- peers -------------------------------------------------------------------------------


def load_peers(folder: Path) -> dict[str, object]:
    """Import torchattacks and ART from ``folder``; a missing one maps to None."""
    if folder.is_dir():
        sys.path.insert(0, str(folder.resolve()))
    peers: dict[str, object] = {}
    try:
        import torchattacks

        peers["torchattacks"] = torchattacks
    except ImportError:
        peers["torchattacks"] = None
    try:
        from art.attacks.evasion import FastGradientMethod
        from art.estimators.classification import PyTorchClassifier

        peers["art"] = (FastGradientMethod, PyTorchClassifier)
    except ImportError:
        peers["art"] = None
    return peers


def art_classifier(model, input_shape=(1, 28, 28), classes: int = 10):
    """ART's PyTorchClassifier around ``model`` (images in [0, 1], cross-entropy, CPU)."""
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=input_shape,
        nb_classes=classes,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )


def hand_written_fgsm(model, x, y, eps):
    """The same math without any library: one gradient, one signed step, clip."""
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    return (x + eps * grad.sign()).clamp(0, 1).detach()


def peers_part(args) -> str:
    peers = load_peers(args.peers)
    if args.data_root is not None:
        train_set, test_set = (
            load_mnist(args.data_root, "train"),
            load_mnist(args.data_root, "test"),
        )
    else:
        from counterfeit.gan.data import mnist_small

        train_set, test_set = mnist_small("train"), mnist_small("test")
    model, _ = train("standard", InfiniteLoader(train_set, 100, seed=0), 600, 0.3, args.seed)
    x, y = test_set.get_batch(torch.arange(args.batch))
    eps = 0.25
    ours = fgsm(model, x, y, eps)
    lines = [
        f"### Against peers: one standard CNN, {args.batch} MNIST test images, FGSM eps {eps}\n",
        "| check | result |",
        "| --- | --- |",
        f"| ours vs hand-written FGSM: max abs difference | "
        f"{float((ours - hand_written_fgsm(model, x, y, eps)).abs().max()):.2e} |",
    ]
    candidates = {
        "ours (robust.fgsm)": lambda: fgsm(model, x, y, eps),
        "hand-written PyTorch": lambda: hand_written_fgsm(model, x, y, eps),
    }
    ta = peers["torchattacks"]
    if ta is None:
        lines.append(f"| torchattacks | not installed ({PEERS_HINT}) |")
    else:
        attack = ta.FGSM(model, eps=eps)
        diff = float((attack(x, y) - ours).abs().max())
        lines.append(
            f"| ours vs torchattacks {ta.__version__} FGSM: max abs difference | {diff:.2e} "
            f"({'equal within 1e-6' if diff <= 1e-6 else 'NOT equal'}) |"
        )
        bim_theirs = ta.BIM(model, eps=eps, alpha=1 / 255, steps=10)(x, y)
        bim_ours = bim(model, x, y, eps, steps=10, step_size=1 / 255)
        lines.append(
            f"| ours vs torchattacks BIM (10 steps of 1/255): max abs difference | "
            f"{float((bim_theirs - bim_ours).abs().max()):.2e} |"
        )
        candidates[f"torchattacks {ta.__version__} FGSM"] = lambda: attack(x, y)
    if peers["art"] is None:
        lines.append(f"| ART | not installed ({PEERS_HINT}) |")
    else:
        import art

        fast_gradient, _ = peers["art"]
        classifier = art_classifier(model)
        art_attack = fast_gradient(classifier, norm=np.inf, eps=eps, batch_size=args.batch)
        x_np, y_np = x.numpy(), np.eye(10, dtype=np.float32)[y.numpy()]
        theirs = torch.from_numpy(art_attack.generate(x_np, y_np))
        diff = (theirs - ours).abs()
        lines.append(
            f"| ours vs ART {art.__version__} FastGradientMethod: max abs difference | "
            f"{float(diff.max()):.2e} ({float((diff > 1e-6).float().mean()):.4%} of pixels "
            "differ by more than 1e-6) |"
        )
        candidates[f"ART {art.__version__} FastGradientMethod"] = lambda: art_attack.generate(
            x_np, y_np
        )
    speeds = {name: [] for name in candidates}
    for _ in range(args.rounds):
        for name, run in candidates.items():  # interleaved: each round times every candidate
            run()  # warm-up
            started = time.perf_counter()
            for _ in range(args.repeats):
                run()
            speeds[name].append(args.repeats * args.batch / (time.perf_counter() - started))
    ours_speed = statistics.median(speeds["ours (robust.fgsm)"])
    lines += [
        "",
        f"Throughput: median images/s over {args.rounds} interleaved rounds of {args.repeats} "
        f"calls on a batch of {args.batch}.\n",
        "| FGSM implementation | images/s | ours / this |",
        "| --- | --- | --- |",
    ]
    for name, values in speeds.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median:.0f} | {ours_speed / median:.3f} |")
    if ta is None:
        lines.append("| torchattacks | not installed | - |")
    if peers["art"] is None:
        lines.append("| ART | not installed | - |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, help="folder with mnist.npz (or MNIST/raw)")
    parser.add_argument("--only", choices=["paper", "peers"], action="append")
    parser.add_argument("--methods", default="standard,fgsm-rs", help="paper part: methods")
    parser.add_argument("--epochs", type=int, default=10, help="paper part (Wong et al.: 10)")
    parser.add_argument("--train-eps", type=float, default=0.3, help="adversarial training eps")
    parser.add_argument("--pgd-images", type=int, default=2000, help="paper part: PGD subset")
    parser.add_argument("--holdout", type=int, default=1000, help="paper part: early-stop images")
    parser.add_argument("--peers", type=Path, default=Path("benchmarks/.peers"))
    parser.add_argument("--batch", type=int, default=256, help="peers part: images per call")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/attacks"))
    parser.add_argument("--markdown", type=Path, help="append the tables to this file")
    args = parser.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    torch.set_num_threads(args.threads)
    parts = args.only or ["paper", "peers"]
    if "paper" in parts and args.data_root is None:
        parser.error("the paper part needs --data-root (or use --only peers)")
    run_parts("Attacks benchmark", parts, {"paper": paper_part, "peers": peers_part}, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
