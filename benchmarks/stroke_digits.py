"""How handwriting-like are the rendered digits? Judges trained on real digits read them.

    python benchmarks/stroke_digits.py --data-root ../shared/datasets

Trains the Ganin et al. MNIST network (``recipes.tasks.cyclegan.train_classifier``, Adam,
1,500 steps) once on each real set: full MNIST (60,000, from DATA_ROOT), USPS (7,291, from
DATA_ROOT, padded so its digits fill 20 of 28 pixels as MNIST's do) and the embedded
MNIST-M-style train split (4,000; the judge of the ``synth2real-cyclegan`` recipe). Each
judge then reads 2,000 rendered test digits (grey, the recipes' style) for every glyph
source: the fonts (the default), the stroke writers (``fonts: [strokes]``), both mixed, and
the strokes scaled to MNIST's 20-pixel box (the ``synth2real-cyclegan`` recipe's source).
Prints one Markdown table of accuracies and the per-class accuracies of each source.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from adapt.evaluate import predict
from gan.data import DigitStyle, DomainSpec, ImageTensors, build_domain, load_mnist
from recipes.tasks.cyclegan import ClassifierConfig, train_classifier

# MNIST fits each digit in 20 of 28 pixels; DigitStyle's default scale is 0.70-0.95.
MNIST_BOX = (0.68, 0.74)
SOURCES = {
    "fonts (default)": DigitStyle(colour=False),
    "strokes": DigitStyle(colour=False, fonts=("strokes",)),
    "fonts + strokes": DigitStyle(colour=False, fonts=("ttf", "pil", "hershey", "strokes")),
    "strokes, MNIST's box (synth2real-cyclegan)": DigitStyle(
        colour=False, fonts=("strokes",), scale=MNIST_BOX
    ),
}


def _judges(data_root: Path) -> dict[str, tuple[ImageTensors, ImageTensors]]:
    mnistm = {s: build_domain(DomainSpec(name="mnistm-style"), s, 28) for s in ("train", "test")}
    usps = DomainSpec(name="usps", root=data_root, pad=3)  # USPS's digits into MNIST's 20 px
    return {
        "MNIST (60,000)": (load_mnist(data_root, "train"), load_mnist(data_root, "test")),
        "USPS (7,291)": tuple(build_domain(usps, s, 28, channels=1) for s in ("train", "test")),
        "MNIST-M-style (4,000)": (mnistm["train"], mnistm["test"]),
    }


def _per_class(judge: torch.nn.Module, data: ImageTensors) -> np.ndarray:
    p = predict(judge, data.with_shape(3, 28), 500)
    right = (p.predicted == p.labels).numpy()
    labels = p.labels.numpy()
    return np.array([right[labels == k].mean() for k in range(10)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=2000, help="rendered test digits per source")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    rendered = {
        name: build_domain(
            DomainSpec(name="synthetic-digits", n=10, n_test=args.n, style=style), "test", 28
        )
        for name, style in SOURCES.items()
    }
    rows, classes = [], []
    for judge_name, (train, test) in _judges(args.data_root).items():
        judge = train_classifier(train.with_shape(3, 28), 10, ClassifierConfig(), seed=1)
        row = [judge_name, f"{_per_class(judge, test).mean():.3f}"]
        for name, digits in rendered.items():
            per_class = _per_class(judge, digits)
            row.append(f"{per_class.mean():.3f}")
            classes.append(
                f"| {judge_name} | {name} | " + " | ".join(f"{a:.2f}" for a in per_class) + " |"
            )
        rows.append("| " + " | ".join(row) + " |")
    print("| judge trained on | its real test digits | " + " | ".join(SOURCES) + " |")
    print("| --- " * (2 + len(SOURCES)) + "|")
    print("\n".join(rows))
    print("\n| judge | rendered | " + " | ".join(str(k) for k in range(10)) + " |")
    print("| --- " * 12 + "|")
    print("\n".join(classes))
    print(f"\n{time.perf_counter() - started:.0f} s, {args.n} rendered test digits per source")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
