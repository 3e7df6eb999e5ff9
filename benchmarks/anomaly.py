"""MNIST one-class anomaly detection: AUROC per normal digit and the mean, per method and seed.

Each of the ten digits in turn is normal: the detector is fitted on that digit's training
images only (10 % held out to set the threshold at a 5 % false-alarm rate) and scores the
whole 10,000-image test set (:func:`counterfeit.robust.anomaly.evaluate_protocol`). The
last iterate is scored: nothing is chosen on test labels. Each (method, seed, digit) is one
JSON file under ``--out``, so an interrupted run continues with ``--resume``.

Usage::

    python benchmarks/anomaly.py --data-root DIR --methods pca,knn --seeds 0 --out DIR [--resume]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from counterfeit.gan.data import DomainSpec, build_domain
from counterfeit.robust.anomaly import (
    DETECTORS,
    AnomalyDetector,
    build_detector,
    evaluate_protocol,
)

RECIPE = Path(__file__).parents[1] / "counterfeit/recipes/builtin/mnist-anomaly.yaml"


def make_detector(method: str, seed: int, device: str, budget: dict) -> AnomalyDetector:
    """``method`` with the recipe's budget; the neural ones also take the seed and device."""
    return build_detector(method, seed, device, **budget.get(method, {}))


def load_mnist(root: Path) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """MNIST train and test as float images in [0, 1] with labels."""
    splits = []
    for split in ("train", "test"):
        domain = build_domain(DomainSpec(name="mnist", root=root), split, 28, 1)
        splits.append(domain.as_floats())
    return tuple(splits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="folder with mnist.npz")
    parser.add_argument("--methods", default="pca,knn", help=f"of {', '.join(DETECTORS)}")
    parser.add_argument("--seeds", default="0", help="comma-separated")
    parser.add_argument("--digits", default="0,1,2,3,4,5,6,7,8,9")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/anomaly"))
    parser.add_argument("--resume", action="store_true", help="keep finished rounds")
    parser.add_argument(
        "--budget",
        choices=("recipe", "library"),
        default="recipe",
        help="detector sizes and steps: the mnist-anomaly recipe's CPU budget, or the "
        "library defaults (the papers' sizes)",
    )
    parser.add_argument(
        "--test-per-class",
        type=int,
        default=None,
        help="score a fixed subset of this many test images per class (AnoGAN's latent "
        "search is too slow for all 10,000 on a CPU); default: the whole test set",
    )
    args = parser.parse_args()
    unknown = set(args.methods.split(",")) - set(DETECTORS)
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; choose from {', '.join(DETECTORS)}")
    if args.out.exists() and any(args.out.glob("*.json")) and not args.resume:
        raise SystemExit(f"{args.out} holds results: pass --resume to continue, or another --out")
    args.out.mkdir(parents=True, exist_ok=True)
    train, test = load_mnist(args.data_root)
    if args.test_per_class is not None:
        test = per_class_subset(test, args.test_per_class)
    budget = yaml.safe_load(RECIPE.read_text())["detectors"] if args.budget == "recipe" else {}
    for method in args.methods.split(","):
        for seed in map(int, args.seeds.split(",")):
            for digit in map(int, args.digits.split(",")):
                path = args.out / f"{method}-seed{seed}-digit{digit}.json"
                if path.exists():
                    continue
                started = time.perf_counter()
                report = evaluate_protocol(
                    lambda m=method, s=seed: make_detector(m, s, args.device, budget),
                    train,
                    test,
                    classes=[digit],
                    seed=seed,
                )
                record = {
                    **report.to_dict()["rounds"][0],
                    "method": method,
                    "seed": seed,
                    "seconds": round(time.perf_counter() - started, 1),
                    "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
                    "torch_threads": torch.get_num_threads(),
                    "budget": budget.get(method, {}),
                    "test_per_class": args.test_per_class,
                }
                temporary = path.with_suffix(".tmp")
                temporary.write_text(json.dumps(record, indent=1))
                temporary.replace(path)
                print(f"{method} seed {seed} digit {digit}: AUROC {record['auroc']:.3f}")
    summarize(args.out)


def per_class_subset(
    data: tuple[torch.Tensor, torch.Tensor], per_class: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``per_class`` images of each class in a fixed random order (seed 0)."""
    images, labels = data
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    keep = torch.cat([order[labels[order] == c][:per_class] for c in labels.unique()])
    return images[keep], labels[keep]


def summarize(out: Path) -> None:
    """Mean AUROC over digits per (method, seed), then mean +- sd over seeds; each digit's
    AUROC averaged over the finished seeds."""
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    for method in sorted({r["method"] for r in records}):
        mine = [r for r in records if r["method"] == method]
        rounds = {
            seed: [r for r in mine if r["seed"] == seed] for seed in {r["seed"] for r in mine}
        }
        complete = max(len(found) for found in rounds.values())
        partial = sorted(seed for seed, found in rounds.items() if len(found) < complete)
        per_seed = {
            seed: np.mean([r["auroc"] for r in found])
            for seed, found in sorted(rounds.items())
            if len(found) == complete  # a seed still running is left out of the mean
        }
        by_digit: dict[int, list[float]] = {}
        for seed in per_seed:
            for r in rounds[seed]:
                by_digit.setdefault(r["target"], []).append(r["auroc"])
        digits = {d: np.mean(a) for d, a in by_digit.items()}  # mean over the finished seeds
        values = list(per_seed.values())
        spread = (
            f"+- {np.std(values, ddof=1):.3f} over {len(values)} seeds"
            if len(values) > 1
            else "(1 seed)"
        )
        timed = [r for r in mine if "fit_seconds" in r]
        speed = (
            f"; fit {np.mean([r['fit_seconds'] for r in timed]):.0f} s per digit, scoring "
            f"{np.mean([r['score_ms_per_image'] for r in timed]):.2f} ms per image"
            if timed
            else ""
        )
        print(
            f"{method}: mean AUROC over {complete} digits {np.mean(values):.3f} {spread}; "
            "per digit (mean over seeds) "
            + " ".join(f"{d}:{a:.3f}" for d, a in sorted(digits.items()))
            + speed
            + (f" (seeds {partial} unfinished, left out)" if partial else "")
        )


if __name__ == "__main__":
    main()
