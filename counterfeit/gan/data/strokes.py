"""Handwriting-like digits drawn as pen strokes from hand-made skeletons.

Font glyphs differ from handwriting in *shape* (serifs, uniform curves, closed
4s, crossed 7s that no font has), and that shape gap is what limits feature-level
adaptation from font digits to handwritten ones (docs/results.md, digits-dann and
synth2real-cyclegan). This renderer narrows it while staying synthetic: each
digit has a few skeletons (the pen's path, in a unit box, as people write it:
open and closed 4, 1 with and without a flag, 7 with and without a bar), drawn
as smooth Catmull-Rom curves (Catmull & Rom 1974) through control points, with a
round pen of random width. A :class:`Hand` is one writer: it fixes a preferred
skeleton per digit, a slant, a width and a pen size, and every image adds its own
jitter to the control points, in the manner of the writers behind MNIST (about
250 of them). Per digit, a width factor and a slant offset, fitted to MNIST's mean
second moments (:func:`shape_moments`), make the digits spread and lean as MNIST's do.

Skeleton coordinates: x to the right, y downwards, both in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from counterfeit.gan.data.tensors import ImageTensors

Points = tuple[tuple[float, float], ...]
# A stroke is ("curve", points) through which the pen moves smoothly,
# ("line", points) with sharp corners, or ("loop", points) closed smoothly.
Stroke = tuple[str, Points]
Skeleton = tuple[Stroke, ...]

SKELETONS: dict[int, tuple[Skeleton, ...]] = {
    0: (
        (
            (
                "loop",
                (
                    (0.5, 0.0),
                    (0.15, 0.2),
                    (0.1, 0.55),
                    (0.3, 0.95),
                    (0.7, 0.95),
                    (0.9, 0.5),
                    (0.8, 0.15),
                ),
            ),
        ),
        (
            (
                "loop",
                ((0.55, 0.02), (0.25, 0.15), (0.15, 0.6), (0.45, 1.0), (0.8, 0.75), (0.85, 0.3)),
            ),
        ),
    ),
    1: (
        (("line", ((0.5, 0.0), (0.5, 1.0))),),
        (("line", ((0.52, 0.0), (0.46, 1.0))),),
        (("line", ((0.25, 0.22), (0.55, 0.0), (0.5, 1.0))),),
        (("line", ((0.3, 0.2), (0.55, 0.0), (0.55, 1.0))), ("line", ((0.3, 1.0), (0.8, 1.0)))),
    ),
    2: (
        (
            (
                "curve",
                ((0.12, 0.25), (0.35, 0.02), (0.7, 0.03), (0.85, 0.3), (0.6, 0.6), (0.12, 1.0)),
            ),
            ("line", ((0.12, 1.0), (0.9, 0.98))),
        ),
        (
            (
                "curve",
                ((0.15, 0.2), (0.45, 0.0), (0.8, 0.15), (0.7, 0.5), (0.3, 0.85), (0.1, 0.98)),
            ),
            ("curve", ((0.1, 0.98), (0.25, 0.8), (0.45, 0.85), (0.92, 1.0))),
        ),
    ),
    3: (
        (
            ("curve", ((0.15, 0.15), (0.5, 0.0), (0.8, 0.15), (0.72, 0.38), (0.42, 0.48))),
            ("curve", ((0.42, 0.48), (0.8, 0.6), (0.85, 0.85), (0.5, 1.0), (0.12, 0.88))),
        ),
        (
            ("line", ((0.15, 0.02), (0.85, 0.02), (0.45, 0.42))),
            ("curve", ((0.45, 0.42), (0.82, 0.58), (0.82, 0.86), (0.48, 1.0), (0.15, 0.88))),
        ),
    ),
    4: (
        (("line", ((0.25, 0.0), (0.15, 0.58), (0.88, 0.56))), ("line", ((0.72, 0.05), (0.7, 1.0)))),
        (("line", ((0.65, 0.0), (0.1, 0.65), (0.92, 0.65))), ("line", ((0.65, 0.0), (0.65, 1.0)))),
        (
            ("curve", ((0.22, 0.0), (0.15, 0.45), (0.45, 0.6), (0.85, 0.5))),
            ("line", ((0.8, 0.0), (0.72, 1.0))),
        ),
    ),
    5: (
        (
            ("line", ((0.82, 0.02), (0.28, 0.02), (0.22, 0.45))),
            (
                "curve",
                ((0.22, 0.45), (0.55, 0.36), (0.85, 0.58), (0.8, 0.88), (0.45, 1.0), (0.12, 0.88)),
            ),
        ),
        (
            ("line", ((0.3, 0.0), (0.24, 0.45))),
            ("line", ((0.3, 0.0), (0.85, 0.02))),
            ("curve", ((0.24, 0.45), (0.6, 0.4), (0.85, 0.7), (0.6, 0.98), (0.15, 0.92))),
        ),
    ),
    6: (
        (
            (
                "curve",
                (
                    (0.7, 0.0),
                    (0.42, 0.3),
                    (0.26, 0.62),
                    (0.3, 0.92),
                    (0.56, 1.0),
                    (0.78, 0.84),
                    (0.62, 0.62),
                    (0.3, 0.72),
                ),
            ),
        ),
        (
            (
                "curve",
                (
                    (0.62, 0.0),
                    (0.38, 0.4),
                    (0.24, 0.8),
                    (0.5, 1.0),
                    (0.76, 0.84),
                    (0.56, 0.64),
                    (0.26, 0.78),
                ),
            ),
        ),
    ),
    7: (
        (("line", ((0.1, 0.04), (0.9, 0.02), (0.42, 1.0))),),
        (("line", ((0.1, 0.04), (0.9, 0.02), (0.45, 1.0))), ("line", ((0.35, 0.52), (0.85, 0.5)))),
        (("line", ((0.05, 0.1), (0.9, 0.03), (0.4, 1.0))),),
    ),
    8: (
        (
            (
                "curve",
                (
                    (0.78, 0.1),
                    (0.5, 0.0),
                    (0.22, 0.2),
                    (0.5, 0.46),
                    (0.8, 0.72),
                    (0.5, 1.0),
                    (0.2, 0.72),
                    (0.5, 0.46),
                    (0.78, 0.22),
                    (0.78, 0.1),
                ),
            ),
        ),
        (
            (
                "curve",
                (
                    (0.75, 0.1),
                    (0.5, 0.0),
                    (0.25, 0.18),
                    (0.5, 0.45),
                    (0.82, 0.72),
                    (0.5, 1.0),
                    (0.18, 0.75),
                    (0.5, 0.45),
                    (0.78, 0.2),
                    (0.75, 0.1),
                ),
            ),
        ),
    ),
    9: (
        (
            ("loop", ((0.5, 0.0), (0.18, 0.22), (0.45, 0.5), (0.8, 0.3))),
            ("line", ((0.8, 0.08), (0.75, 1.0))),
        ),
        (
            ("loop", ((0.55, 0.0), (0.2, 0.2), (0.4, 0.48), (0.8, 0.3))),
            ("curve", ((0.8, 0.1), (0.78, 0.6), (0.6, 0.95), (0.3, 0.95))),
        ),
    ),
}

# Per-digit width factor and slant offset, fitted so that the rendered digits' mean
# second-moment aspect and slant (:func:`shape_moments`) match full MNIST's per class:
# `python benchmarks/stroke_digits.py --data-root DIR --calibrate` (docs/results.md).
# The 1 keeps a hand-set width: its MNIST aspect comes from the pen, not the path, and a
# path twice as wide reads worse to a USPS-trained judge.
DIGIT_WIDTH = {
    0: 1.49,
    1: 0.45,
    2: 1.69,
    3: 1.37,
    4: 1.40,
    5: 1.55,
    6: 1.74,
    7: 1.34,
    8: 1.31,
    9: 1.28,
}
DIGIT_SLANT = {
    0: 0.14,
    1: 0.09,
    2: -0.13,
    3: -0.10,
    4: 0.12,
    5: 0.12,
    6: -0.16,
    7: -0.15,
    8: 0.01,
    9: -0.02,
}


@dataclass(frozen=True)
class Hand:
    """One synthetic writer: the skeleton it prefers per digit, slant, width and pen.

    Attributes:
        choices: per digit, the index of the preferred skeleton.
        slant: horizontal shift per unit of height (positive leans right).
        width: horizontal squeeze of the skeleton (handwritten digits are narrow).
        pen: pen diameter as a fraction of the digit's height.
        jitter: standard deviation of the per-image control-point noise.
    """

    choices: tuple[int, ...]
    slant: float
    width: float
    pen: float
    jitter: float

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Hand:
        """A random writer."""
        return cls(
            choices=tuple(int(rng.integers(len(SKELETONS[d]))) for d in range(10)),
            slant=float(rng.uniform(-0.1, 0.35)),
            width=float(rng.uniform(0.55, 0.85)),
            pen=float(rng.uniform(0.07, 0.16)),
            jitter=float(rng.uniform(0.02, 0.045)),
        )


def hands(count: int, seed: int = 0) -> tuple[Hand, ...]:
    """``count`` writers drawn from a fixed seed (the same seed, the same writers)."""
    rng = np.random.default_rng(seed)
    return tuple(Hand.sample(rng) for _ in range(count))


def _catmull_rom(points: np.ndarray, closed: bool, samples: int = 12) -> np.ndarray:
    """A smooth curve through ``points`` (uniform Catmull-Rom spline)."""
    if closed:
        padded = np.concatenate([points[-1:], points, points[:2]])
    else:
        padded = np.concatenate(
            [2 * points[:1] - points[1:2], points, 2 * points[-1:] - points[-2:-1]]
        )
    t = np.linspace(0, 1, samples, endpoint=False)[:, None]
    segments = []
    for i in range(len(padded) - 3):
        p0, p1, p2, p3 = padded[i : i + 4]
        segments.append(
            0.5
            * (
                2 * p1
                + (p2 - p0) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (3 * p1 - p0 - 3 * p2 + p3) * t**3
            )
        )
    curve = np.concatenate(segments)
    return np.concatenate([curve, curve[:1]]) if closed else np.concatenate([curve, points[-1:]])


def stroke_mask(digit: int, hand: Hand, canvas: int, rng: np.random.Generator) -> np.ndarray:
    """A float32 coverage mask (canvas x canvas) of ``digit`` written by ``hand``.

    The writer's usual skeleton is used four times in five, another one otherwise.
    """
    options = SKELETONS[digit]
    index = hand.choices[digit] if rng.random() < 0.8 else int(rng.integers(len(options)))
    height = canvas * 0.7
    width = height * hand.width * DIGIT_WIDTH[digit]
    slant = hand.slant + DIGIT_SLANT[digit]
    pen = max(1, round(height * hand.pen * rng.uniform(0.8, 1.2)))
    mask = np.zeros((canvas, canvas), np.uint8)
    for kind, points in options[index]:
        p = np.asarray(points, np.float64) + rng.normal(0, hand.jitter, (len(points), 2))
        if kind != "line":
            p = _catmull_rom(p, closed=kind == "loop")
        x = (p[:, 0] - 0.5) * width + (0.5 - p[:, 1]) * slant * height + canvas / 2
        y = (p[:, 1] - 0.5) * height + canvas / 2
        xy = np.round(np.stack([x, y], axis=1) * 16).astype(np.int32)  # 4 fractional bits
        cv2.polylines(mask, [xy], False, 255, pen, cv2.LINE_AA, shift=4)
    return mask.astype(np.float32) / 255.0


def shape_moments(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image slant and aspect of grey digits (N x H x W, ink bright), from central moments.

    slant = -mu11 / mu02 (horizontal shift per unit of height, positive when the top leans
    right, the quantity deskewing removes) and aspect = sqrt(mu20 / mu02) (ink's horizontal
    spread over its vertical spread).
    """
    x = np.asarray(images, np.float64)
    if x.ndim != 3:
        raise ValueError(f"shape_moments expects N x H x W grey images, got shape {x.shape}")
    ys, xs = np.mgrid[: x.shape[1], : x.shape[2]]
    mass = x.sum((1, 2)) + 1e-9
    cx = (x * xs).sum((1, 2)) / mass
    cy = (x * ys).sum((1, 2)) / mass
    dx = xs[None] - cx[:, None, None]
    dy = ys[None] - cy[:, None, None]
    mu20, mu02, mu11 = ((x * m).sum((1, 2)) / mass for m in (dx**2, dy**2, dx * dy))
    return -mu11 / mu02, np.sqrt(mu20 / mu02)


def class_moments(data: ImageTensors) -> np.ndarray:
    """Per class of a labelled domain, the mean slant and mean aspect of :func:`shape_moments`
    on its grey images (num_classes x 2)."""
    grey = data.with_shape(1, data.shape[-1])
    slant, aspect = shape_moments(grey.images[:, 0].float().numpy())
    labels = grey.labels.numpy()
    missing = [k for k in range(data.num_classes) if not (labels == k).any()]
    if missing:
        raise ValueError(f"class_moments: {data.name} has no images of class {missing}")
    return np.array(
        [[slant[labels == k].mean(), aspect[labels == k].mean()] for k in range(data.num_classes)]
    )
