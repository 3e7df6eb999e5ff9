"""Captioned digits: images whose captions are true by construction, for text-to-image GANs.

The synthetic renderer (:mod:`gan.data.synthetic`) draws each image from named attributes
instead of continuous ranges — the digit, its stroke colour, the background's shade, the
stroke's thickness, its slant and its size — and writes several captions of those
attributes, e.g. "a thick red 7 slanted to the left on a dark photo". A caption never
says what the image does not show, so a generator that follows its caption can be checked
attribute by attribute (Reed et al., "Generative Adversarial Text to Image Synthesis",
ICML 2016, train on CUB / Oxford-102 captions written by people; here the renderer is the
annotator).

Phrasings come in two disjoint sets of templates: ``train`` (also partial captions that
name only some attributes, such as "a blue 3") and ``test`` (held-out sentence shapes
naming every attribute, in words the training captions use), so a score on ``test``
captions measures understanding of the attributes, not of memorised sentences. ``exclude`` leaves (digit, colour) pairs out of a
set: a model trained without them and asked for them is tested on zero-shot compositions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch

from counterfeit.gan.data.synthetic import _glyph_mask, available_fonts
from counterfeit.gan.data.tensors import ImageTensors

# Stroke colours (RGB in [0, 1]) of middling luma (0.34-0.62): each stands out on both a dark
# (luma <= 0.15) and a light (>= 0.85) background.
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.12, 0.12),
    "green": (0.10, 0.72, 0.18),
    "blue": (0.20, 0.35, 1.00),
    "orange": (1.00, 0.55, 0.05),
    "purple": (0.62, 0.20, 0.85),
    "cyan": (0.05, 0.75, 0.80),
}
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "digit": tuple(str(d) for d in range(10)),
    "colour": tuple(COLOURS),
    "background": ("dark", "light"),
    "thickness": ("thin", "thick"),
    "slant": ("left", "upright", "right"),
    "size": ("small", "large"),
}
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# The words each attribute value may be written as (one drawn per caption).
PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "background": {
        "dark": ("on a dark background", "on a dark photo", "on black"),
        "light": ("on a light background", "on a light photo", "on white"),
    },
    "thickness": {"thin": ("thin",), "thick": ("thick", "bold")},
    "slant": {
        "left": ("slanted to the left", "leaning left"),
        "upright": ("upright", "standing straight"),
        "right": ("slanted to the right", "leaning right"),
    },
    "size": {"small": ("small",), "large": ("large", "big")},
}
TEMPLATES: dict[str, tuple[str, ...]] = {
    "train": (
        "a {thickness} {colour} {digit} {slant} {background}",
        "a {size} {thickness} {colour} {digit}, {slant}, {background}",
        "the number {digit} in {colour}, {size} and {thickness}, {slant} {background}",
        "{size} {colour} {digit} {background}, {thickness}, {slant}",
        "a {colour} {digit}",
        "a {size} {digit} {background}",
        "a {thickness} {digit} {slant}",
    ),
    "test": (
        "{slant} and {thickness}: a {size} {colour} {digit} {background}",
        "{background}: the {thickness} {size} number {digit} in {colour} {slant}",
    ),
}
# Sizes as a fraction of the image; slant as the shear x += k * y (image y points down, so a
# negative k leans the top to the right).
SCALE = {"small": (0.45, 0.55), "large": (0.82, 0.92)}
SHEAR = {"left": (0.35, 0.5), "upright": (-0.04, 0.04), "right": (-0.5, -0.35)}
# Extra pen width on a 96 px glyph canvas: TrueType stroke_width, Hershey thickness - 2.
THICKNESS = {"ttf": {"thin": 0, "thick": 4}, "hershey": {"thin": 1, "thick": 7}}
BACKGROUND_LUMA = {"dark": (0.02, 0.15), "light": (0.85, 0.98)}
# Upright, regular-weight faces only: an italic face would contradict "upright", a bold one
# "thin".
UPRIGHT_TTF = ("DejaVuSans.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf", "STIXGeneral.ttf")
UPRIGHT_HERSHEY = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX)

Phrasing = Literal["train", "test"]


@dataclass
class CaptionedImages:
    """Images, their captions (several per image) and, when rendered, their attributes.

    Attributes:
        images: the images (labels: the digit; -1 where unknown).
        captions: per image, its captions.
        attributes: (N, len(ATTRIBUTES)) value indices into :data:`ATTRIBUTES`, or None for
            a user's own pairs.
        mentions: (N, captions per image, len(ATTRIBUTES)) whether each caption names each
            attribute (rendered sets only).
    """

    images: ImageTensors
    captions: list[list[str]]
    attributes: torch.Tensor | None = None
    mentions: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if len(self.captions) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.captions)} caption lists.")
        empty = [i for i, c in enumerate(self.captions) if not c]
        if empty:
            raise ValueError(f"image {empty[0]} has no caption ({len(empty)} images have none).")

    def __len__(self) -> int:
        return len(self.images)

    def match_keys(self) -> torch.Tensor:
        """(N,) ids, equal exactly where two images show the same attribute combination (a
        user's pairs: have the same caption set); R-precision's rival captions are those of
        other ids."""
        if self.attributes is not None:
            sizes = torch.tensor([len(v) for v in ATTRIBUTES.values()])
            strides = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.long), sizes[:-1]]), 0)
            return (self.attributes * strides).sum(1)
        ids: dict[tuple[str, ...], int] = {}
        return torch.tensor([ids.setdefault(tuple(sorted(c)), len(ids)) for c in self.captions])

    def subset(self, indices: torch.Tensor) -> CaptionedImages:
        indices = torch.as_tensor(indices, dtype=torch.long)
        return CaptionedImages(
            self.images.subset(indices),
            [self.captions[i] for i in indices.tolist()],
            None if self.attributes is None else self.attributes[indices],
            None if self.mentions is None else self.mentions[indices],
        )

    def facts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """What each caption states and what each image shows, as value ids to compare:
        ``(captions (N, P, K), images (N, K))`` with -1 where a caption is silent. Rendered
        sets compare the K = 6 attributes; a user's pairs one id per caption set
        (:meth:`match_keys`), stated by each of its captions."""
        if self.attributes is None or self.mentions is None:
            keys = self.match_keys()[:, None]
            per_image = max(len(c) for c in self.captions)
            return keys[:, None, :].expand(-1, per_image, -1), keys
        stated = torch.where(self.mentions, self.attributes[:, None, :], -1)
        return stated, self.attributes


def describes(stated: torch.Tensor, shown: torch.Tensor) -> torch.Tensor:
    """(N_images, N_captions) whether caption j's statements (``stated`` (N_captions, K),
    -1: silent) all hold for image i (``shown`` (N_images, K))."""
    agree = (stated[None, :, :] == -1) | (stated[None, :, :] == shown[:, None, :])
    return agree.all(-1)


def caption(values: dict[str, str], template: str, rng: np.random.Generator) -> str:
    """``template`` filled with a phrase for each attribute value in ``values``."""
    words: dict[str, str] = {}
    for name, value in values.items():
        if name == "digit":
            words[name] = DIGIT_WORDS[int(value)] if rng.random() < 0.5 else value
        elif name == "colour":
            words[name] = value
        else:
            options = PHRASES[name][value]
            words[name] = options[int(rng.integers(len(options)))]
    return re.sub(r"\ba (?=[aeiou])", "an ", template.format(**words))


def mentioned(template: str) -> tuple[str, ...]:
    """The attributes a template names."""
    return tuple(name for name in ATTRIBUTES if "{" + name + "}" in template)


def full_templates(phrasing: Phrasing) -> tuple[str, ...]:
    """The templates of ``phrasing`` that name every attribute."""
    return tuple(t for t in TEMPLATES[phrasing] if len(mentioned(t)) == len(ATTRIBUTES))


def sample_attributes(
    n: int,
    rng: np.random.Generator,
    exclude: Sequence[tuple[int, str]] = (),
    only: Sequence[tuple[int, str]] = (),
) -> np.ndarray:
    """(n, len(ATTRIBUTES)) value indices drawn uniformly, without the (digit, colour)
    pairs in ``exclude`` — or from the pairs in ``only`` when given."""
    colours = ATTRIBUTES["colour"]
    pairs = [(d, c) for d in range(10) for c in colours]
    pairs = [(d, colours.index(c)) for d, c in (only or pairs) if (d, c) not in set(exclude)]
    if not pairs:
        raise ValueError("no (digit, colour) pair is left to render.")
    chosen = np.array(pairs)[rng.integers(len(pairs), size=n)]
    others = [rng.integers(len(ATTRIBUTES[name]), size=n) for name in list(ATTRIBUTES)[2:]]
    return np.column_stack([chosen, *others]) if n else np.zeros((0, len(ATTRIBUTES)), int)


@functools.cache
def upright_fonts() -> tuple:
    """The renderer's fonts that are upright and of regular weight."""
    return tuple(
        f
        for f in available_fonts()
        if (f.kind == "ttf" and Path(f.ref.path).name in UPRIGHT_TTF)
        or (f.kind == "hershey" and f.ref in UPRIGHT_HERSHEY)
    )


def render_with_attributes(
    values: dict[str, str], size: int, rng: np.random.Generator
) -> np.ndarray:
    """One uint8 (size, size, 3) image showing exactly the named attribute values."""
    fonts = upright_fonts()
    font = fonts[int(rng.integers(len(fonts)))]
    stroke = THICKNESS[font.kind][values["thickness"]]
    mask = _glyph_mask(int(values["digit"]), font, stroke, rng)
    hi = size * 3
    ys, xs = np.nonzero(mask > 0.05)
    cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
    extent = max(xs.max() - xs.min(), ys.max() - ys.min()) + 1
    scale = rng.uniform(*SCALE[values["size"]]) * hi / extent
    shear = rng.uniform(*SHEAR[values["slant"]])
    linear = scale * np.array([[1.0, shear], [0.0, 1.0]])
    centre = np.array([hi / 2, hi / 2]) + rng.uniform(-0.04, 0.04, size=2) * hi
    offset = centre - linear @ np.array([cx, cy])
    affine = np.hstack([linear, offset[:, None]]).astype(np.float32)
    warped = cv2.warpAffine(mask, affine, (hi, hi), flags=cv2.INTER_LINEAR)
    alpha = cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA)[..., None]
    fg = np.clip(np.array(COLOURS[values["colour"]]) + rng.uniform(-0.05, 0.05, 3), 0, 1)
    luma = rng.uniform(*BACKGROUND_LUMA[values["background"]])
    tint = rng.uniform(-0.03, 0.03, 3)
    texture = cv2.resize(rng.uniform(-0.04, 0.04, (4, 4, 3)).astype(np.float32), (size, size))
    background = np.clip(luma + tint + texture, 0, 1)
    image = background * (1 - alpha) + fg * alpha
    image = image + rng.normal(0, 0.01, image.shape)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def render_captioned_digits(
    n: int,
    size: int = 32,
    seed: int = 0,
    phrasing: Phrasing = "train",
    captions_per_image: int = 5,
    exclude: Sequence[tuple[int, str]] = (),
    only: Sequence[tuple[int, str]] = (),
    name: str = "captioned-digits",
) -> CaptionedImages:
    """Render ``n`` digits with named attributes and ``captions_per_image`` captions each.

    Args:
        n: images.
        size: their height and width in pixels.
        seed: the same seed renders the same images and captions.
        phrasing: ``train`` templates (some naming only some attributes) or the held-out
            ``test`` ones (each naming every attribute).
        captions_per_image: captions written per image (templates drawn with replacement).
        exclude: (digit, colour) pairs never rendered, e.g. ``[(7, "red")]``.
        only: render only these (digit, colour) pairs (the zero-shot test set).
    """
    unknown = [c for _, c in (*exclude, *only) if c not in COLOURS]
    if unknown:
        raise ValueError(f"unknown colour '{unknown[0]}'; the colours are {', '.join(COLOURS)}.")
    rng = np.random.default_rng(seed)
    codes = sample_attributes(n, rng, exclude, only)
    templates = TEMPLATES[phrasing]
    images, captions, mentions = [], [], []
    for row in codes:
        values = {k: ATTRIBUTES[k][int(i)] for k, i in zip(ATTRIBUTES, row)}
        images.append(render_with_attributes(values, size, rng))
        picks = [templates[int(t)] for t in rng.integers(len(templates), size=captions_per_image)]
        captions.append([caption(values, t, rng) for t in picks])
        mentions.append([[name in mentioned(t) for name in ATTRIBUTES] for t in picks])
    array = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return CaptionedImages(
        ImageTensors.from_numpy(array, codes[:, 0], name),
        captions,
        torch.as_tensor(codes, dtype=torch.long),
        torch.tensor(mentions, dtype=torch.bool).view(n, captions_per_image, len(ATTRIBUTES)),
    )


def zero_shot_pairs(k: int = 5) -> list[tuple[int, str]]:
    """``k`` (<= 10) (digit, colour) pairs to hold out of training, one per digit 0..k-1 and
    the colours in turn: every digit and colour is still seen, only these combinations not."""
    if not 0 <= k <= 10:
        raise ValueError(f"zero-shot pairs: k must be 0-10, got {k}.")
    colours = list(COLOURS)
    return [(d, colours[d % len(colours)]) for d in range(k)]
