"""A supersampled OpenCV canvas that draws shaded capsules, polygons and ellipses."""

from __future__ import annotations

import functools

import numpy as np

from counterfeit.gan.data.puppet.body import RGB

SHIFT = 3  # OpenCV sub-pixel bits
LIGHT = np.array([-0.55, -0.83])  # direction towards the light, image coordinates
# Shading layers, darkest first: (width or shrink, offset towards the light, brightness).
_SHADES = ((1.0, 0.0, 0.72), (0.7, 0.12, 0.93), (0.35, 0.22, 1.12))
_POLYGON_SHADES = tuple((1.0 - 0.13 * i, 0.035 * i, 0.72 + 0.09 * i) for i in range(5))


def supersample(size: int) -> int:
    """How many times finer than the image the puppet is drawn (then area-averaged)."""
    return 4 if size <= 128 else 2


def fixed_point(xy: np.ndarray) -> tuple[int, int]:
    """A point as OpenCV's fixed-point coordinates with :data:`SHIFT` fractional bits."""
    return round(float(xy[0]) * (1 << SHIFT)), round(float(xy[1]) * (1 << SHIFT))


@functools.lru_cache(maxsize=256)
def _shade(color: RGB, light: float) -> tuple[int, int, int]:
    return tuple(int(min(255, round(c * light))) for c in color)  # type: ignore[return-value]


def _lit_side(direction: np.ndarray) -> np.ndarray:
    """The unit normal of ``direction`` that faces the light."""
    length = float(np.hypot(*direction))
    if length < 1e-9:
        return LIGHT
    normal = np.array([-direction[1], direction[0]]) / length
    return normal if normal @ LIGHT >= 0 else -normal


class Canvas:
    """A supersampled colour layer over black and its coverage, drawn with OpenCV."""

    def __init__(self, size: int) -> None:
        self.factor = supersample(size)
        side = size * self.factor
        self.color = np.zeros((side, side, 3), np.uint8)
        self.alpha = np.zeros((side, side), np.uint8)

    def hi(self, xy: np.ndarray) -> np.ndarray:
        """Image pixel coordinates to supersampled ones (pixel centres map to centres)."""
        return (np.asarray(xy, dtype=np.float64) + 0.5) * self.factor - 0.5

    def capsule(self, p: np.ndarray, q: np.ndarray, width: float, color: RGB) -> None:
        """A rounded limb from ``p`` to ``q`` (image pixels), shaded across its width."""
        import cv2

        p, q, w = self.hi(p), self.hi(q), width * self.factor
        normal = _lit_side(q - p)
        for width_frac, offset, light in _SHADES:
            shift = normal * offset * w
            thick = max(1, round(w * width_frac))
            cv2.line(
                self.color,
                fixed_point(p + shift),
                fixed_point(q + shift),
                _shade(color, light),
                thick,
                cv2.LINE_8,
                SHIFT,
            )
        cv2.line(
            self.alpha, fixed_point(p), fixed_point(q), 255, max(1, round(w)), cv2.LINE_8, SHIFT
        )

    def polygon(self, points: np.ndarray, color: RGB) -> None:
        """A convex polygon (image pixels) shaded towards the light."""
        import cv2

        pts = self.hi(points)
        center = pts.mean(0)
        extent = float(np.ptp(pts, axis=0).max())
        for shrink, offset, light in _POLYGON_SHADES:
            layer = center + shrink * (pts - center) + LIGHT * offset * extent
            poly = np.array([fixed_point(v) for v in layer], np.int32)
            cv2.fillConvexPoly(self.color, poly, _shade(color, light), cv2.LINE_8, SHIFT)
        cv2.fillConvexPoly(
            self.alpha, np.array([fixed_point(v) for v in pts], np.int32), 255, cv2.LINE_8, SHIFT
        )

    def ellipse(
        self,
        center: np.ndarray,
        axes: tuple[float, float],
        angle: float,
        color: RGB,
        shaded: bool = True,
    ) -> None:
        """A filled ellipse; ``axes`` are half-lengths in image pixels, ``angle`` radians."""
        import cv2

        c = self.hi(center)
        a0, a1 = axes[0] * self.factor, axes[1] * self.factor
        degrees = float(np.degrees(angle))
        layers = (
            ((1.0, 0.0, 0.8), (0.75, 0.15, 0.97), (0.4, 0.3, 1.1)) if shaded else ((1.0, 0.0, 1.0),)
        )
        for shrink, offset, light in layers:
            at = c + LIGHT * offset * min(a0, a1)
            size = (
                max(1, round(a0 * shrink * (1 << SHIFT))),
                max(1, round(a1 * shrink * (1 << SHIFT))),
            )
            cv2.ellipse(
                self.color,
                fixed_point(at),
                size,
                degrees,
                0,
                360,
                _shade(color, light),
                -1,
                cv2.LINE_8,
                SHIFT,
            )
        full = (max(1, round(a0 * (1 << SHIFT))), max(1, round(a1 * (1 << SHIFT))))
        cv2.ellipse(self.alpha, fixed_point(c), full, degrees, 0, 360, 255, -1, cv2.LINE_8, SHIFT)

    def dot(self, center: np.ndarray, radius: float, color: RGB) -> None:
        """A small flat disk drawn on the person only (eyes, mouth): no coverage added."""
        import cv2

        cv2.circle(
            self.color,
            fixed_point(self.hi(center)),
            max(1, round(radius * self.factor * (1 << SHIFT))),
            color,
            -1,
            cv2.LINE_8,
            SHIFT,
        )

    def finish(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The premultiplied colour (float32, 0-255) and coverage in [0, 1] at ``size``."""
        import cv2

        color = cv2.bitwise_and(self.color, self.color, mask=self.alpha)  # no shading spill
        color = cv2.resize(color, (size, size), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(self.alpha, (size, size), interpolation=cv2.INTER_AREA)
        return color.astype(np.float32), alpha.astype(np.float32) / 255.0
