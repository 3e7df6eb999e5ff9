"""Synthetic digits rendered at run time: the "synthetic" side of synthetic-to-real.

Glyphs come from fonts that ship inside installed wheels, so nothing is
downloaded: matplotlib's TrueType fonts (DejaVu, STIX, Computer Modern),
Pillow's built-in scalable font (``ImageFont.load_default(size=...)``) and
OpenCV's Hershey stroke fonts; and, with ``fonts`` including ``"strokes"``,
handwriting-like pen strokes from :mod:`gan.data.strokes` (28 synthetic
writers). Each image gets a random font, stroke width, affine transform
(rotation, scale, shear, translation), foreground colour, background (flat,
gradient or smooth noise texture), blur and pixel noise, all drawn from a
seeded generator: the same ``seed`` always renders the same images.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydantic import BaseModel, ConfigDict, Field

from counterfeit.gan.data.strokes import hands, stroke_mask
from counterfeit.gan.data.tensors import ImageTensors

# Fonts inside matplotlib's wheel whose digits are ordinary glyphs (the STIX
# size/non-unicode variants and the Computer Modern symbol fonts are not).
MATPLOTLIB_FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSansMono-Oblique.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
    "cmr10.ttf",
    "cmb10.ttf",
    "cmss10.ttf",
    "cmtt10.ttf",
)
HERSHEY_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
    cv2.FONT_HERSHEY_SIMPLEX | cv2.FONT_ITALIC,
    cv2.FONT_HERSHEY_COMPLEX | cv2.FONT_ITALIC,
)
GLYPH_CANVAS = 96  # glyphs are drawn large, transformed, then area-downsampled
PIL_FONT_SIZE = 64
# As many stroke writers as font faces (19 TrueType, Pillow's, 8 Hershey): a mix is half each.
STROKE_HANDS = 28


class DigitStyle(BaseModel):
    """How varied the rendered digits are. Every range is sampled uniformly per image.

    The defaults give clean, font-rendered digits in random colours on simple
    synthetic backgrounds: clearly synthetic, which is the point.
    """

    model_config = ConfigDict(extra="forbid")

    rotation: float = Field(12.0, ge=0, le=180, description="max |rotation| in degrees")
    scale: tuple[float, float] = (0.70, 0.95)
    shear: float = Field(0.15, ge=0, le=1)
    translate: float = Field(0.08, ge=0, le=0.5, description="max shift, fraction of size")
    stroke: tuple[int, int] = (0, 3)
    elastic: float = Field(0.0, ge=0, le=0.2, description="elastic warp, fraction of size")
    fonts: tuple[Literal["ttf", "pil", "hershey", "strokes"], ...] = Field(
        ("ttf", "pil", "hershey"),
        min_length=1,
        description="glyph sources to draw from; 'strokes' are handwriting-like pen paths",
    )
    colour: bool = True
    min_contrast: float = Field(0.35, ge=0, le=1)
    backgrounds: tuple[str, ...] = ("flat", "gradient", "noise")
    blur: tuple[float, float] = (0.0, 0.8)
    noise: tuple[float, float] = (0.0, 0.04)


@dataclass(frozen=True)
class _Font:
    kind: str  # "ttf", "pil", "hershey" or "strokes"
    ref: object


@functools.cache
def available_fonts() -> tuple[_Font, ...]:
    """All fonts the renderer can use on this installation."""
    font_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = [
        _Font("ttf", ImageFont.truetype(str(font_dir / name), PIL_FONT_SIZE))
        for name in MATPLOTLIB_FONTS
        if (font_dir / name).is_file()
    ]
    fonts.append(_Font("pil", ImageFont.load_default(size=PIL_FONT_SIZE)))
    fonts.extend(_Font("hershey", face) for face in HERSHEY_FONTS)
    fonts.extend(_Font("strokes", hand) for hand in hands(STROKE_HANDS))
    return tuple(fonts)


def _glyph_mask(digit: int, font: _Font, stroke: int, rng: np.random.Generator) -> np.ndarray:
    """A float32 coverage mask (GLYPH_CANVAS^2) with the digit roughly centred.

    ``stroke`` thickens font glyphs; a stroke writer's pen sets its own width.
    """
    size = GLYPH_CANVAS
    if font.kind == "strokes":
        return stroke_mask(digit, font.ref, size, rng)
    if font.kind == "hershey":
        canvas = np.zeros((size, size), np.uint8)
        text = str(digit)
        scale = 2.0
        (w, h), _ = cv2.getTextSize(text, font.ref, scale, 2 + stroke)
        origin = ((size - w) // 2, (size + h) // 2)
        cv2.putText(canvas, text, origin, font.ref, scale, 255, 2 + stroke, cv2.LINE_AA)
        return canvas.astype(np.float32) / 255.0
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font.ref, stroke_width=stroke)
    origin = ((size - (right - left)) / 2 - left, (size - (bottom - top)) / 2 - top)
    draw.text(origin, str(digit), fill=255, font=font.ref, stroke_width=stroke, stroke_fill=255)
    return np.asarray(image, np.float32) / 255.0


def _fit_affine(mask: np.ndarray, out: int, style: DigitStyle, rng: np.random.Generator):
    """An affine map taking the glyph's bounding box to a random pose in an out x out image."""
    ys, xs = np.nonzero(mask > 0.05)
    if len(xs) == 0:
        return None
    cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
    extent = max(xs.max() - xs.min(), ys.max() - ys.min()) + 1
    scale = rng.uniform(*style.scale) * out / extent
    angle = np.deg2rad(rng.uniform(-style.rotation, style.rotation))
    shear = rng.uniform(-style.shear, style.shear)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = scale * rot @ np.array([[1.0, shear], [0.0, 1.0]])
    shift = rng.uniform(-style.translate, style.translate, size=2) * out
    centre_out = np.array([out / 2, out / 2]) + shift
    offset = centre_out - linear @ np.array([cx, cy])
    return np.hstack([linear, offset[:, None]]).astype(np.float32)


def _elastic(image: np.ndarray, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth random displacement (Simard et al. 2003), as hand-drawn strokes wobble."""
    size = image.shape[0]
    cells = 4
    fields = rng.uniform(-1, 1, (2, cells, cells)).astype(np.float32)
    dx, dy = (
        cv2.resize(f, (size, size), interpolation=cv2.INTER_CUBIC) * amplitude for f in fields
    )
    grid_y, grid_x = np.mgrid[0:size, 0:size].astype(np.float32)
    return cv2.remap(image, grid_x + dx, grid_y + dy, cv2.INTER_LINEAR, borderValue=0)


def _background(
    out: int, kind: str, base: np.ndarray, colour: bool, rng: np.random.Generator
) -> np.ndarray:
    """An (out, out, 3) float background around colour ``base`` (grey when not ``colour``)."""
    channels = 3 if colour else 1
    if kind == "flat":
        return np.broadcast_to(base, (out, out, 3)).copy()
    if kind == "gradient":
        other = np.clip(base + rng.uniform(-0.3, 0.3, channels), 0, 1)
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:out, 0:out] / max(out - 1, 1)
        t = np.cos(angle) * xx + np.sin(angle) * yy
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
        return base * (1 - t[..., None]) + other * t[..., None]
    if kind == "noise":
        cells = int(rng.integers(2, 6))
        grid = rng.uniform(-0.25, 0.25, (cells, cells, channels)).astype(np.float32)
        smooth = cv2.resize(grid, (out, out), interpolation=cv2.INTER_CUBIC).reshape(out, out, -1)
        return np.clip(base + smooth, 0, 1)
    raise ValueError(f"unknown background kind '{kind}'")


def _colours(style: DigitStyle, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background colours whose luma differs by at least min_contrast."""
    luma = np.array([0.299, 0.587, 0.114])
    for _ in range(100):
        if style.colour:
            fg, bg = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        else:
            fg, bg = np.full(3, rng.uniform(0.6, 1.0)), np.full(3, rng.uniform(0.0, 0.3))
        if abs(float(luma @ (fg - bg))) >= style.min_contrast:
            return fg, bg
    return np.ones(3), np.zeros(3)


def render_digit(digit: int, size: int, style: DigitStyle, rng: np.random.Generator) -> np.ndarray:
    """Render one digit as a uint8 (size, size, 3) image."""
    fonts = [f for f in available_fonts() if f.kind in style.fonts]
    font = fonts[int(rng.integers(len(fonts)))]
    stroke = int(rng.integers(style.stroke[0], style.stroke[1] + 1))
    mask = _glyph_mask(digit, font, stroke, rng)
    hi = size * 3  # render at 3x and area-downsample: antialiased edges
    affine = _fit_affine(mask, hi, style, rng)
    if affine is None:
        warped = np.zeros((hi, hi), np.float32)
    else:
        warped = cv2.warpAffine(mask, affine, (hi, hi), flags=cv2.INTER_LINEAR)
    if style.elastic > 0:
        warped = _elastic(warped, style.elastic * hi, rng)
    alpha = cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA)[..., None]
    fg, bg = _colours(style, rng)
    kind = style.backgrounds[int(rng.integers(len(style.backgrounds)))]
    background = _background(size, kind, bg, style.colour, rng)
    image = background * (1 - alpha) + fg * alpha
    sigma = rng.uniform(*style.blur)
    if sigma > 0.05:
        image = cv2.GaussianBlur(image.astype(np.float32), (0, 0), sigma)
    image = image + rng.normal(0, rng.uniform(*style.noise), image.shape)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def render_digits(
    n: int,
    size: int = 28,
    seed: int = 0,
    style: DigitStyle | None = None,
    name: str = "synthetic-digits",
) -> ImageTensors:
    """Render ``n`` digits with balanced labels (0-9 in turn, then shuffled).

    Args:
        n: number of images.
        size: output height and width in pixels.
        seed: the rendering seed; the same seed gives the same images.
        style: how varied the images are (:class:`DigitStyle`).

    Returns:
        :class:`ImageTensors` with RGB uint8 images (n, 3, size, size) and labels.
    """
    style = style or DigitStyle()
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10)
    images = (
        np.stack([render_digit(int(d), size, style, rng) for d in labels])
        if n
        else np.zeros((0, size, size, 3), np.uint8)
    )
    return ImageTensors.from_numpy(images, labels, name)
