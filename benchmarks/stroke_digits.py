"""How handwriting-like are the rendered digits? Judges trained on real digits read them.

    python benchmarks/stroke_digits.py --data-root ../shared/datasets

Trains the Ganin et al. MNIST network (``recipes.tasks.cyclegan.train_classifier``, Adam,
1,500 steps) once on each real set: full MNIST (60,000, from DATA_ROOT), USPS (7,291, from
DATA_ROOT, padded so its digits fill 20 of 28 pixels as MNIST's do) and the embedded
MNIST-M-style train split (4,000; the judge of the ``synth2real-cyclegan`` recipe). Each
judge then reads 2,000 rendered test digits (grey, the recipes' style) for every glyph
source: the fonts (the default), the stroke writers (``fonts: [strokes]``), both mixed, and
the strokes scaled to MNIST's 20-pixel box (the ``synth2real-cyclegan`` recipe's source).
Two columns of real handwriting (MNIST's and USPS's test digits, grey) show what each judge
makes of real writers it was not trained on. Prints one Markdown table of accuracies and
the per-class accuracies of each source.

    python benchmarks/stroke_digits.py --data-root ../shared/datasets --calibrate

fits ``gan.data.strokes.DIGIT_WIDTH`` and ``DIGIT_SLANT`` instead: per digit, the rendered
strokes' mean second-moment aspect and slant (``strokes.shape_moments``) are matched to full
MNIST's training digits by a few fixed-point steps (width scaled by the aspect ratio, slant
shifted by the difference), and the fitted tables are printed to paste into the module.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import save_image

from counterfeit.adapt.evaluate import predict
from counterfeit.gan.data import (
    DigitStyle,
    DomainSpec,
    ImageTensors,
    build_domain,
    load_mnist,
    strokes,
)
from counterfeit.recipes.tasks.cyclegan import ClassifierConfig, train_classifier

# MNIST fits each digit in 20 of 28 pixels; DigitStyle's default scale is 0.70-0.95.
MNIST_BOX = (0.68, 0.74)
MNIST_BOX_SOURCE = "strokes, MNIST's box (synth2real-cyclegan)"
SOURCES = {
    "fonts (default)": DigitStyle(colour=False),
    "strokes": DigitStyle(colour=False, fonts=("strokes",)),
    "fonts + strokes": DigitStyle(colour=False, fonts=("ttf", "pil", "hershey", "strokes")),
    MNIST_BOX_SOURCE: DigitStyle(colour=False, fonts=("strokes",), scale=MNIST_BOX),
}


# Calibration renders without background, blur or noise, so that moments see only the ink.
CLEAN_STROKES = DigitStyle(
    colour=False,
    fonts=("strokes",),
    scale=MNIST_BOX,
    backgrounds=("flat",),
    blur=(0.0, 0.0),
    noise=(0.0, 0.0),
    min_contrast=1.0,
)
HAND_SET_WIDTH = (1,)  # see strokes.DIGIT_WIDTH


def calibrate(data_root: Path, n: int, steps: int = 4) -> None:
    """Fit strokes.DIGIT_WIDTH and DIGIT_SLANT to full MNIST's per-class moments; print them."""
    target = strokes.class_moments(load_mnist(data_root, "train"))
    print("| step | " + " | ".join(f"{k}: slant / aspect" for k in range(10)) + " |")
    print("| --- " * 11 + "|")
    print("| MNIST | " + " | ".join(f"{s:+.2f} / {a:.2f}" for s, a in target) + " |")
    for step in range(steps + 1):
        spec = DomainSpec(name="synthetic-digits", n=10, n_test=n, style=CLEAN_STROKES)
        rendered = strokes.class_moments(build_domain(spec, "test", 28))
        print(f"| {step} | " + " | ".join(f"{s:+.2f} / {a:.2f}" for s, a in rendered) + " |")
        if step == steps:
            break
        for k in range(10):
            strokes.DIGIT_SLANT[k] += target[k, 0] - rendered[k, 0]
            if k not in HAND_SET_WIDTH:
                strokes.DIGIT_WIDTH[k] *= target[k, 1] / rendered[k, 1]
    for name in ("DIGIT_WIDTH", "DIGIT_SLANT"):
        table = getattr(strokes, name)
        print(f"{name} = {{" + ", ".join(f"{k}: {v:.2f}" for k, v in sorted(table.items())) + "}")


def _judges(data_root: Path) -> dict[str, tuple[ImageTensors, ImageTensors]]:
    mnistm = {s: build_domain(DomainSpec(name="mnistm-style"), s, 28) for s in ("train", "test")}
    usps = DomainSpec(name="usps", root=data_root, pad=3)  # USPS's digits into MNIST's 20 px
    return {
        "MNIST (60,000)": (load_mnist(data_root, "train"), load_mnist(data_root, "test")),
        "USPS (7,291)": tuple(build_domain(usps, s, 28, channels=1) for s in ("train", "test")),
        "MNIST-M-style (4,000)": (mnistm["train"], mnistm["test"]),
    }


def _save_grid(rows: list[ImageTensors], path: Path, per_digit: int = 3) -> None:
    """One row per source: ``per_digit`` examples of each digit 0-9, grey."""
    images = []
    for data in rows:
        grey = data.with_shape(1, 28)
        for k in range(10):
            images.append(grey.images[grey.labels == k][:per_digit].float() / 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.cat(images), path, nrow=10 * per_digit, padding=1)


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
    parser.add_argument(
        "--calibrate", action="store_true", help="fit the strokes' per-digit width and slant"
    )
    parser.add_argument("--images", type=Path, help="write the comparison grid PNG here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    if args.calibrate:
        calibrate(args.data_root, args.n)
        print(f"\n{time.perf_counter() - started:.0f} s")
        return 0
    rendered = {
        name: build_domain(
            DomainSpec(name="synthetic-digits", n=10, n_test=args.n, style=style), "test", 28
        )
        for name, style in SOURCES.items()
    }
    real = {
        "real MNIST test": load_mnist(args.data_root, "test"),
        "real USPS test": build_domain(
            DomainSpec(name="usps", root=args.data_root, pad=3), "test", 28, channels=1
        ),
    }
    if args.images:
        _save_grid(
            [rendered["fonts (default)"], rendered[MNIST_BOX_SOURCE], real["real MNIST test"]],
            args.images / "synthetic_fonts_strokes_mnist.png",
        )
    rows, classes = [], []
    for judge_name, (train, test) in _judges(args.data_root).items():
        judge = train_classifier(
            train.with_shape(3, 28), 10, ClassifierConfig(steps=1500, augment="none"), seed=1
        )
        row = [judge_name, f"{_per_class(judge, test).mean():.3f}"]
        for name, digits in rendered.items():
            per_class = _per_class(judge, digits)
            row.append(f"{per_class.mean():.3f}")
            classes.append(
                f"| {judge_name} | {name} | " + " | ".join(f"{a:.2f}" for a in per_class) + " |"
            )
        row += [f"{_per_class(judge, digits).mean():.3f}" for digits in real.values()]
        rows.append("| " + " | ".join(row) + " |")
    columns = [*SOURCES, *real]
    print("| judge trained on | its real test digits | " + " | ".join(columns) + " |")
    print("| --- " * (2 + len(columns)) + "|")
    print("\n".join(rows))
    print("\n| judge | rendered | " + " | ".join(str(k) for k in range(10)) + " |")
    print("| --- " * 12 + "|")
    print("\n".join(classes))
    print(f"\n{time.perf_counter() - started:.0f} s, {args.n} rendered test digits per source")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
