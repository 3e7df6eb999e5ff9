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
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from counterfeit.gan.data import DomainSpec, build_domain
from counterfeit.robust.anomaly import (
    AnoGAN,
    AnomalyDetector,
    AutoencoderDetector,
    FAnoGAN,
    GANomaly,
    KNNDistance,
    PCAReconstruction,
    evaluate_protocol,
)

METHODS: dict[str, Callable[[int, str], AnomalyDetector]] = {
    "pca": lambda seed, device: PCAReconstruction(components=0.9),
    "knn": lambda seed, device: KNNDistance(k=5),
    "autoencoder": lambda seed, device: AutoencoderDetector(seed=seed, device=device),
    "anogan": lambda seed, device: AnoGAN(seed=seed, device=device),
    "f-anogan": lambda seed, device: FAnoGAN(seed=seed, device=device),
    "ganomaly": lambda seed, device: GANomaly(seed=seed, device=device),
}


def load_mnist(root: Path) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """MNIST train and test as float images in [0, 1] with labels."""
    splits = []
    for split in ("train", "test"):
        domain = build_domain(DomainSpec(name="mnist", root=root), split, 28, 1)
        splits.append((domain.images.float().div(255), domain.labels))
    return tuple(splits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="folder with mnist.npz")
    parser.add_argument("--methods", default="pca,knn", help=f"of {', '.join(METHODS)}")
    parser.add_argument("--seeds", default="0", help="comma-separated")
    parser.add_argument("--digits", default="0,1,2,3,4,5,6,7,8,9")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/anomaly"))
    parser.add_argument("--resume", action="store_true", help="keep finished rounds")
    args = parser.parse_args()
    unknown = set(args.methods.split(",")) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")
    if args.out.exists() and any(args.out.glob("*.json")) and not args.resume:
        raise SystemExit(f"{args.out} holds results: pass --resume to continue, or another --out")
    args.out.mkdir(parents=True, exist_ok=True)
    train, test = load_mnist(args.data_root)
    for method in args.methods.split(","):
        for seed in map(int, args.seeds.split(",")):
            for digit in map(int, args.digits.split(",")):
                path = args.out / f"{method}-seed{seed}-digit{digit}.json"
                if path.exists():
                    continue
                started = time.perf_counter()
                report = evaluate_protocol(
                    lambda m=method, s=seed: METHODS[m](s, args.device),
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
                }
                temporary = path.with_suffix(".tmp")
                temporary.write_text(json.dumps(record, indent=1))
                temporary.replace(path)
                print(f"{method} seed {seed} digit {digit}: AUROC {record['auroc']:.3f}")
    summarize(args.out)


def summarize(out: Path) -> None:
    """Mean AUROC over digits per (method, seed), then mean +- sd over seeds."""
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    for method in sorted({r["method"] for r in records}):
        mine = [r for r in records if r["method"] == method]
        per_seed = {
            seed: np.mean([r["auroc"] for r in mine if r["seed"] == seed])
            for seed in sorted({r["seed"] for r in mine})
        }
        digits = {r["target"]: r["auroc"] for r in mine if r["seed"] == min(per_seed)}
        values = list(per_seed.values())
        sd = np.std(values, ddof=1) if len(values) > 1 else float("nan")
        print(
            f"{method}: mean AUROC {np.mean(values):.3f} +- {sd:.3f} over {len(values)} seed(s); "
            + " ".join(f"{d}:{a:.3f}" for d, a in sorted(digits.items()))
        )


if __name__ == "__main__":
    main()
