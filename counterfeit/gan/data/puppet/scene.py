"""The puppets' room and camera: where a figure at some depth stands, and the static background."""

from __future__ import annotations

import numpy as np

from counterfeit.gan.data.puppet.canvas import supersample
from counterfeit.gan.errors import ConfigError

# The camera: the ankle line of the nearest figure (depth 0, scale 1) and the horizon,
# as fractions of the image height; depth 1 is scale FAR_SCALE.
NEAR_ANKLE, HORIZON, FAR_SCALE = 0.90, 0.40, 0.8
FLOOR_LINE = 0.66  # where the wall meets the floor
PLANK = 0.25  # floor plank width, in image widths at scale 1


def depth_scale(depth: np.ndarray | float) -> np.ndarray:
    """Apparent size of a figure at ``depth`` (1 nearest, :data:`FAR_SCALE` farthest)."""
    return 1.0 - (1.0 - FAR_SCALE) * np.asarray(depth, dtype=np.float64)


def background(size: int, seed: int = 0) -> np.ndarray:
    """A static room, ``(size, size, 3)`` uint8: a textured wall with a picture, a plank floor.

    Deterministic from ``seed`` (wall and floor colours, texture, the picture's place).
    """
    import cv2

    if size < 8:
        raise ConfigError(f"puppet images need size >= 8, got {size}.")
    rng = np.random.default_rng(seed)
    factor = supersample(size)
    side = size * factor
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float64)
    ys, xs = (ys + 0.5) / side, (xs + 0.5) / side
    walls = np.array([(196, 186, 160), (168, 186, 198), (204, 178, 166), (178, 198, 168)])
    floors = np.array([(150, 104, 64), (118, 88, 60), (168, 132, 92)])
    wall = walls[rng.integers(len(walls))] + rng.uniform(-12, 12, 3)
    floor = floors[rng.integers(len(floors))] + rng.uniform(-10, 10, 3)
    noise = cv2.resize(
        rng.normal(0, 1, (9, 9)).astype(np.float32), (side, side), interpolation=cv2.INTER_CUBIC
    )
    light = 1.08 - 0.2 * ys - 0.08 * xs
    image = wall[None, None] * (light + 0.035 * noise)[..., None]

    # The floor in perspective: planks converge on the vanishing point, seams recede.
    below = ys > FLOOR_LINE
    depth = 1.0 / np.maximum(ys - HORIZON, 1e-3)
    across = (xs - 0.5) * depth
    plank = np.floor(across / PLANK)
    along = depth * 2.0 + 0.37 * plank
    tone = 0.9 + 0.1 * np.sin(plank * 2.3 + seed)
    seam = (np.abs(across / PLANK - np.round(across / PLANK)) < 0.035 * depth) | (
        np.abs(along - np.round(along)) < 0.01 * depth**2
    )
    shading = (0.75 + 0.35 * (ys - FLOOR_LINE) / (1 - FLOOR_LINE)) * np.where(seam, 0.7, tone)
    image = np.where(below[..., None], floor[None, None] * shading[..., None], image)
    skirting = below & (ys < FLOOR_LINE + 0.018)
    image[skirting] = np.array([232.0, 228, 220])

    # A framed picture on the wall, away from where the head usually is.
    w, h = rng.uniform(0.14, 0.2), rng.uniform(0.12, 0.16)
    x0 = rng.choice([rng.uniform(0.04, 0.22), rng.uniform(0.62, 0.94 - w)])
    y0 = rng.uniform(0.08, 0.2)
    frame = (xs > x0) & (xs < x0 + w) & (ys > y0) & (ys < y0 + h)
    inner = (xs > x0 + 0.015) & (xs < x0 + w - 0.015) & (ys > y0 + 0.015) & (ys < y0 + h - 0.015)
    sky, land = rng.uniform(60, 230, 3), rng.uniform(40, 200, 3)
    horizon_line = y0 + h * rng.uniform(0.45, 0.65)
    art = np.where((ys > horizon_line)[..., None], land[None, None], sky[None, None])
    image[frame] = np.array([90.0, 62, 40])
    image[inner] = art[inner]
    image = cv2.resize(
        np.clip(image, 0, 255).astype(np.float32), (size, size), interpolation=cv2.INTER_AREA
    )
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
