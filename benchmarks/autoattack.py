"""AutoAttack-grade evaluation against peers and against the papers' MNIST numbers.

    python benchmarks/autoattack.py --data-root ../shared/datasets --only peers
    python benchmarks/autoattack.py --data-root ../shared/datasets --only mnist --resume

Parts:
  peers   One MNIST CNN trained with FGSM-RS for a few hundred steps (so that attacks have
          survivors at eps 0.3), one batch of test images: robust accuracy under our
          APGD-CE, APGD-T, Square and AutoAttack beside torchattacks' APGD, APGDT, Square
          and AutoAttack on the same model and images (theirs with FAB-T, ours without;
          once with every gradient stage at --steps on both sides, once at torchattacks'
          own default of 10 steps), and images/s of each pair timed in interleaved
          rounds; ART's AutoAttack timed once for speed.
  mnist   Wong et al.'s MNIST CNN trained through the product (robust.AdversarialTraining,
          the recipe of benchmarks/attacks.py): standard, FGSM-RS (Wong et al. 2020, eps
          0.3), Goodfellow et al.'s FGSM training (eps 0.25, no random start: the
          gradient-masking case) and TRADES (Zhang et al. 2019, beta 1, 40 inner steps of
          0.01; --trades-epochs and --trades-steps shrink it for a CPU, the inner step
          then 0.4 / --trades-steps so that the inner maximisation still reaches eps).
          Robust accuracy at eps 0.3 under PGD-40 and under AutoAttack (standard:
          APGD-CE, APGD-T, Square), with the stage table and the sanity flags, and the
          flags of an FGSM and PGD-40 curve at eps 0, 0.1, 0.2, 0.3. --resume
          keeps trained models and finished rows in OUT.

Peers are imported from --peers (default benchmarks/.peers, gitignored), installed with

    .venv/bin/pip install --no-deps --target benchmarks/.peers \\
        torchattacks==3.5.1 adversarial-robustness-toolbox==1.20.1 multiprocess dill

(ART's AutoAttack imports multiprocess, which needs dill.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from attacks import art_classifier, load_peers, train
from report import run_parts

from counterfeit.gan.data import InfiniteLoader, load_mnist
from counterfeit.robust import apgd_ce, apgd_t, autoattack, digits_cnn, evaluate, square

EPS = 0.3
# (method, training eps): Goodfellow et al. trained FGSM at 0.25; the others at 0.3.
MODELS = {"standard": 0.3, "fgsm-rs": 0.3, "fgsm": 0.25, "trades": 0.3}
PAPERS = {
    "standard": "-",
    "fgsm-rs": "Wong et al. 2020: ~88-89% under PGD",
    "fgsm": "Goodfellow et al. 2015: gradient masking",
    "trades": "Zhang et al. 2019: 96.07% (their strongest attack; 100 epochs, SmallCNN)",
}


def accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def timed(run, *args) -> tuple[object, float]:
    started = time.perf_counter()
    out = run(*args)
    return out, time.perf_counter() - started


# -- peers -------------------------------------------------------------------------------


def peer_pairs(model, ta, eps: float, steps: int, queries: int) -> dict[str, tuple]:
    """attack name -> (ours, theirs): functions of (x, y) returning adversarial images."""

    def ours_aa(x, y, steps=steps):
        return autoattack(model, x, y, eps, steps=steps, queries=queries).adversarial

    # torchattacks' AutoAttack runs APGD-CE, APGD-T and FAB-T at their default of 10 steps
    # (the original: 100); the first pair raises theirs to ``steps``, the second leaves it
    their_aa = ta.AutoAttack(model, norm="Linf", eps=eps, version="standard", n_classes=10)
    for stage in their_aa._autoattack.attacks:
        if hasattr(stage, "steps"):
            stage.steps = steps
    their_default_aa = ta.AutoAttack(model, norm="Linf", eps=eps, version="standard", n_classes=10)
    pairs = {
        "APGD-CE": (
            lambda x, y: apgd_ce(model, x, y, eps, steps=steps),
            ta.APGD(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, loss="ce"),
        ),
        "APGD-T": (
            lambda x, y: apgd_t(model, x, y, eps, steps=steps),
            ta.APGDT(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, n_classes=10),
        ),
        "Square": (
            lambda x, y: square(model, x, y, eps, queries=queries),
            ta.Square(model, norm="Linf", eps=eps, n_queries=queries, n_restarts=1),
        ),
        f"AutoAttack ({steps} steps)": (ours_aa, their_aa),
        "AutoAttack (10 steps, torchattacks' default)": (
            lambda x, y: ours_aa(x, y, steps=10),
            their_default_aa,
        ),
    }
    return pairs


def peers_part(args) -> str:
    peers = load_peers(args.peers)
    ta = peers["torchattacks"]
    train_set, test_set = load_mnist(args.data_root, "train"), load_mnist(args.data_root, "test")
    data = InfiniteLoader(train_set, 100, seed=args.seed)
    model, _ = train("fgsm-rs", data, args.peer_train_steps, EPS, args.seed)
    x, y = test_set.get_batch(torch.arange(args.batch))
    lines = [
        f"### Against torchattacks: an FGSM-RS CNN ({args.peer_train_steps} steps, clean "
        f"{accuracy(model, x, y):.4f} on these images), {args.batch} MNIST test images, "
        f"L-inf eps {EPS}, {args.steps} steps, {args.queries} queries\n",
    ]
    if ta is None:
        return "\n".join(lines) + "\ntorchattacks is not installed: nothing to compare.\n"
    lines += [
        f"Robust accuracy (lower is stronger) and images/s, median of {args.rounds} interleaved "
        f"rounds, who goes first alternating (torchattacks {ta.__version__}; its AutoAttack "
        "runs FAB-T too, ours does not). Speed: the median of the rounds' time ratios "
        "(their seconds / ours), with its range.\n",
        "| attack | ours | torchattacks | difference | ours images/s | theirs images/s | "
        "speed ours / theirs (range) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    pairs = peer_pairs(model, ta, EPS, args.steps, args.queries)
    chosen = args.peer_attacks.split(",") if args.peer_attacks else list(pairs)
    for name, (ours, theirs) in pairs.items():
        if not any(name.startswith(prefix) for prefix in chosen):
            continue
        accuracies: dict[str, list[float]] = {"ours": [], "theirs": []}
        seconds: dict[str, list[float]] = {"ours": [], "theirs": []}
        for round_ in range(args.rounds):
            # who goes first alternates, so that neither side always pays the warm-up
            order = [("ours", ours), ("theirs", theirs)]
            for side, attack in order if round_ % 2 == 0 else order[::-1]:
                adv, took = timed(attack, x, y)
                accuracies[side].append(accuracy(model, adv, y))
                seconds[side].append(took)
        a, b = (statistics.median(accuracies[side]) for side in ("ours", "theirs"))
        sa, sb = (args.batch / statistics.median(seconds[side]) for side in ("ours", "theirs"))
        ratios = [t / o for o, t in zip(seconds["ours"], seconds["theirs"])]
        lines.append(
            f"| {name} | {a:.4f} | {b:.4f} | {a - b:+.4f} | {sa:.0f} | {sb:.0f} | "
            f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) |"
        )
        print(lines[-1], flush=True)
    if peers["art"] is not None and not args.no_art:
        lines.append(art_autoattack_speed(model, x, y, args))
    return "\n".join(lines) + "\n"


def art_autoattack_speed(model, x, y, args) -> str:
    """ART's AutoAttack (its default ensemble) on the same images: seconds and accuracy."""
    import art
    from art.attacks.evasion import AutoAttack as ArtAutoAttack

    attack = ArtAutoAttack(
        art_classifier(model), norm=np.inf, eps=EPS, eps_step=0.1, batch_size=args.batch
    )
    x_np = x.numpy()
    adv, seconds = timed(attack.generate, x_np, y.numpy())
    robust = accuracy(model, torch.from_numpy(adv), y)
    return (
        f"\nART {art.__version__} AutoAttack (its default attack list) on the same images: "
        f"robust accuracy {robust:.4f}, {args.batch / seconds:.2f} images/s (one run).\n"
    )


# -- mnist -------------------------------------------------------------------------------


def trained(method: str, train_set, args) -> torch.nn.Module:
    """The model of ``method``: from OUT/models with --resume, else trained and saved."""
    path = Path(args.out) / "models" / f"{method}.pt"
    model = digits_cnn()
    if args.resume and path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    epochs = args.trades_epochs if method == "trades" else args.epochs
    steps = epochs * len(train_set) // 100
    data = InfiniteLoader(train_set, 100, seed=args.seed)
    # TRADES' inner steps keep the paper's reach (40 steps of 0.01 = 0.4) when fewer are run
    options = (
        {"trades_steps": args.trades_steps, "step_size": 0.4 / args.trades_steps}
        if method == "trades"
        else {}
    )
    model, result = train(method, data, steps, MODELS[method], args.seed, **options)
    print(f"{method}: {steps} steps in {result.wall_time:.0f} s", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    return model.eval()


def mnist_row(method: str, model, test_set, args) -> dict:
    report = evaluate(
        model,
        test_set,
        attacks=["pgd", "autoattack"],
        eps=[0.0, EPS],
        corruptions=None,
        attack_options={
            "pgd": {"steps": 40, "step_size": 0.01},
            "autoattack": {"steps": args.steps, "queries": args.queries},
        },
        max_examples=args.images,
        batch_size=500,
        seed=args.seed,
    )
    curve = evaluate(  # the cheap eps curve whose shape flags a masked model
        model,
        test_set,
        attacks=["fgsm", "pgd"],
        eps=[0.0, 0.1, 0.2, EPS],
        corruptions=None,
        attack_options={"pgd": {"steps": 40, "step_size": 0.01}},
        max_examples=args.images,
        batch_size=500,
        seed=args.seed,
    )
    return {
        "method": method,
        "clean": report.clean_accuracy,
        "fgsm": curve.attacks["fgsm"][-1],
        "pgd40": report.attacks["pgd"][1],
        "autoattack": report.attacks["autoattack"][1],
        "stages": report.stages["autoattack"][f"{EPS:.6g}"],
        "flags": sorted(set(report.flags) | set(curve.flags)),
        "seconds": report.settings["seconds"],
    }


def mnist_part(args) -> str:
    train_set, test_set = load_mnist(args.data_root, "train"), load_mnist(args.data_root, "test")
    rows_path = Path(args.out) / "mnist_rows.json"
    rows = json.loads(rows_path.read_text()) if args.resume and rows_path.is_file() else {}
    for method in args.methods:
        if method not in rows:
            model = trained(method, train_set, args)
            rows[method] = mnist_row(method, model, test_set, args)
            rows_path.parent.mkdir(parents=True, exist_ok=True)
            rows_path.write_text(json.dumps(rows, indent=2))
        print(rows[method], flush=True)
    trades = (
        f"; TRADES {args.trades_epochs} epochs, {args.trades_steps} inner steps"
        if "trades" in args.methods
        else ""
    )
    lines = [
        f"### MNIST at L-inf eps {EPS}: PGD-40 against AutoAttack, {args.epochs} epochs{trades}, "
        f"{args.images} test images (seeded subset), seed {args.seed}\n",
        "| model | clean | FGSM | PGD-40 | AutoAttack | after APGD-CE / APGD-T / Square | "
        "flags (both evaluations) | paper |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method in args.methods:
        r = rows[method]
        stages = " / ".join(f"{acc:.4f}" for _, acc in r["stages"][1:])
        lines.append(
            f"| {method} | {r['clean']:.4f} | {r['fgsm']:.4f} | {r['pgd40']:.4f} | "
            f"**{r['autoattack']:.4f}** | "
            f"{stages} | {', '.join(r['flags']) or 'none'} | {PAPERS[method]} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, required=True, help="folder with mnist.npz")
    parser.add_argument("--only", choices=["peers", "mnist"], action="append")
    parser.add_argument("--methods", default=",".join(MODELS), help="mnist part: models")
    parser.add_argument("--epochs", type=int, default=10, help="mnist part (Wong et al.: 10)")
    parser.add_argument("--trades-epochs", type=int, default=10, help="mnist part: TRADES")
    parser.add_argument(
        "--trades-steps", type=int, default=40, help="TRADES inner steps (its MNIST code: 40)"
    )
    parser.add_argument("--images", type=int, default=1000, help="mnist part: test images")
    parser.add_argument("--steps", type=int, default=100, help="APGD steps (AutoAttack: 100)")
    parser.add_argument("--queries", type=int, default=5000, help="Square queries (5,000)")
    parser.add_argument("--peers", type=Path, default=Path("benchmarks/.peers"))
    parser.add_argument("--peer-train-steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=256, help="peers part: images")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--peer-attacks", help="peers part: only the rows whose name starts with one of these"
    )
    parser.add_argument("--no-art", action="store_true", help="peers part: skip ART's timing")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="keep models and rows in OUT")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/autoattack"))
    parser.add_argument("--markdown", type=Path, help="append the tables to this file")
    args = parser.parse_args(argv)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in args.methods if m not in MODELS]
    if unknown:
        parser.error(f"unknown method(s) {unknown}; known: {', '.join(MODELS)}")
    torch.set_num_threads(args.threads)
    parts = args.only or ["peers", "mnist"]
    run_parts("AutoAttack benchmark", parts, {"peers": peers_part, "mnist": mnist_part}, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
