"""A synthetic, offline test bed for pose-to-video motion transfer (Chan et al., 2018).

"Everybody Dance Now" learns, from a few minutes of video of one *target*
person, a mapping from pose stick figures to frames of that person, then
drives it with the poses of a *source* dancer. Real footage cannot ship with
the package, so this module makes both videos:

* an articulated 2-D figure (:class:`Body`: limb lengths as fractions of the
  image height, widths and clothing colours) with COCO-18 keypoints
  (:mod:`gan.data.pose`), posed by smooth joint-angle trajectories
  (:func:`dance_angles`: sums of sinusoids with seeded phases) and
  :func:`pose_sequence` (forward kinematics). The root walks nearer and farther,
  so the ankle line and the apparent size change (scale 0.8 to 1.0), which is
  what the paper's global pose normalisation is for;
* :func:`render_person`: the figure as a clothed, shaded person (capsule limbs
  lit from the upper left, shirt, trousers, shoes, hair, eyes, a soft floor
  shadow) over a static room (:func:`background`), drawn at 4x and area-averaged;
* :func:`make_puppet_data`: the target doing one dance (training frames and
  held-out later frames), a differently built source doing another, and the
  ground truth only synthetic data gives: the target performing the source's
  motion (:attr:`PuppetData.transfer_truth`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from counterfeit.gan.data.pose import (
    L_ANKLE,
    L_EAR,
    L_ELBOW,
    L_EYE,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    NECK,
    NOSE,
    NUM_KEYPOINTS,
    R_ANKLE,
    R_EAR,
    R_ELBOW,
    R_EYE,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    check_poses,
    detector_noise,
)
from counterfeit.gan.errors import ConfigError, DataError

RGB = tuple[int, int, int]
FPS = 15
DANCES: tuple[str, ...] = ("sway", "disco")
ANGLE_KEYS: tuple[str, ...] = (
    "lean",
    "head_turn",
    "r_shoulder",
    "l_shoulder",
    "r_elbow",
    "l_elbow",
    "r_hip",
    "l_hip",
    "r_knee",
    "l_knee",
)
ROOT_KEYS: tuple[str, ...] = ("root_x", "depth")

# The camera: the ankle line of the nearest figure (depth 0, scale 1) and the horizon,
# as fractions of the image height; depth 1 is scale FAR_SCALE.
NEAR_ANKLE, HORIZON, FAR_SCALE = 0.90, 0.40, 0.8
FLOOR_LINE = 0.66  # where the wall meets the floor
PLANK = 0.25  # floor plank width, in image widths at scale 1
LIGHT = np.array([-0.55, -0.83])  # direction towards the light, image coordinates
EYE_AZIMUTH = 0.45  # radians either side of the nose
# Shading layers, darkest first: (width or shrink, offset towards the light, brightness).
_SHADES = ((1.0, 0.0, 0.72), (0.7, 0.12, 0.93), (0.35, 0.22, 1.12))
_POLYGON_SHADES = tuple((1.0 - 0.13 * i, 0.035 * i, 0.72 + 0.09 * i) for i in range(5))


@dataclass(frozen=True)
class Body:
    """A figure's build and clothes; lengths and widths are fractions of the image height.

    ``torso`` runs from the neck to the middle of the hips, ``neck_to_nose`` from the
    neck to the nose of a face turned to the camera.
    """

    name: str
    torso: float
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    shoulder_half: float
    hip_half: float
    neck_to_nose: float
    head_radius: float
    arm_width: float
    leg_width: float
    neck_width: float
    skin: RGB
    shirt: RGB
    trousers: RGB
    shoes: RGB
    hair: RGB


TARGET_BODY = Body(
    name="target",
    torso=0.235,
    upper_arm=0.13,
    forearm=0.12,
    thigh=0.185,
    shin=0.175,
    shoulder_half=0.085,
    hip_half=0.055,
    neck_to_nose=0.085,
    head_radius=0.062,
    arm_width=0.045,
    leg_width=0.06,
    neck_width=0.04,
    skin=(224, 172, 138),
    shirt=(196, 38, 52),
    trousers=(44, 62, 120),
    shoes=(34, 30, 28),
    hair=(70, 44, 26),
)
# Legs 12% longer, arms 12% shorter, narrower shoulders and other clothes.
SOURCE_BODY = Body(
    name="source",
    torso=0.24,
    upper_arm=0.115,
    forearm=0.105,
    thigh=0.207,
    shin=0.196,
    shoulder_half=0.075,
    hip_half=0.06,
    neck_to_nose=0.08,
    head_radius=0.058,
    arm_width=0.038,
    leg_width=0.052,
    neck_width=0.035,
    skin=(142, 94, 64),
    shirt=(236, 200, 50),
    trousers=(70, 70, 74),
    shoes=(232, 232, 228),
    hair=(22, 20, 20),
)


# -- motion ------------------------------------------------------------------------------


def dance_angles(
    name: str, n_frames: int, seed: int = 0, fps: int = FPS, start: int = 0
) -> dict[str, np.ndarray]:
    """Joint-angle and root trajectories of a dance, each a float64 ``(n_frames,)`` array.

    Angles are in radians (:data:`ANGLE_KEYS`): ``lean`` of the torso (positive to the
    image right), ``head_turn``, shoulder abduction (0 hanging, pi/2 horizontal, pi up),
    elbow flexion (positive raises the forearm), hip abduction and knee bend. The root
    (:data:`ROOT_KEYS`) is ``root_x`` (horizontal offset, a fraction of the image at
    scale 1) and ``depth`` in [0, 1] (0 nearest, 1 farthest).

    * ``sway``: slow (0.25 Hz), loosely coordinated arm swings with a bounce in the knees;
    * ``disco``: a faster (0.8 Hz) beat, one arm up while the other comes down, the
      torso, head and hips following the beat.

    ``seed`` draws the phases; ``start`` skips that many frames (later frames of the
    same performance).

    Raises:
        ConfigError: an unknown dance, or ``n_frames < 1``.
    """
    if name not in DANCES:
        raise ConfigError(f"unknown dance '{name}'; choose one of {', '.join(DANCES)}.")
    if n_frames < 1 or fps < 1 or start < 0:
        raise ConfigError(
            f"dance_angles needs n_frames >= 1, fps >= 1, start >= 0; got {n_frames}, {fps}, "
            f"{start}."
        )
    rng = np.random.default_rng(seed)
    t = (start + np.arange(n_frames)) / fps

    def wave(base: float, *terms: tuple[float, float]) -> np.ndarray:
        return base + sum(
            amp * np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi)) for amp, hz in terms
        )

    if name == "sway":
        angles = {
            "lean": wave(0.0, (0.10, 0.25), (0.04, 0.55)),
            "head_turn": wave(0.0, (0.35, 0.2), (0.12, 0.45)),
            "r_shoulder": wave(1.0, (0.7, 0.25), (0.35, 0.55)),
            "l_shoulder": wave(1.0, (0.7, 0.27), (0.35, 0.5)),
            "r_elbow": wave(0.6, (0.5, 0.3), (0.2, 0.7)),
            "l_elbow": wave(0.6, (0.5, 0.33), (0.2, 0.65)),
            "r_hip": wave(0.12, (0.08, 0.25)),
            "l_hip": wave(0.12, (0.08, 0.23)),
            "r_knee": wave(0.2, (0.15, 0.5)),
            "l_knee": wave(0.2, (0.15, 0.5)),
            "root_x": wave(0.0, (0.06, 0.05), (0.02, 0.13)),
            "depth": wave(0.5, (0.5, 0.06)),
        }
    else:
        beat = 2 * np.pi * 0.8 * t + rng.uniform(0, 2 * np.pi)
        swing = np.sin(beat)
        angles = {
            "lean": 0.15 * swing,
            "head_turn": 0.4 * np.sin(beat + 0.3),
            "r_shoulder": 1.3 + 0.8 * swing,
            "l_shoulder": 1.3 - 0.8 * swing,
            "r_elbow": 0.35 + 0.3 * np.sin(2 * beat),
            "l_elbow": 0.35 - 0.3 * np.sin(2 * beat),
            "r_hip": 0.15 + 0.08 * swing,
            "l_hip": 0.15 - 0.08 * swing,
            "r_knee": 0.3 + 0.2 * np.cos(2 * beat),
            "l_knee": 0.3 + 0.2 * np.cos(2 * beat),
            "root_x": wave(0.0, (0.07, 0.1)),
            "depth": wave(0.5, (0.5, 0.1)),
        }
    for key in ("r_shoulder", "l_shoulder"):
        angles[key] = np.clip(angles[key], 0.05, 2.3)
    for key in ("r_elbow", "l_elbow", "r_knee", "l_knee"):
        angles[key] = np.clip(angles[key], 0.0, 1.6)
    angles["depth"] = np.clip(angles["depth"], 0.0, 1.0)
    return {key: np.asarray(value, dtype=np.float64) for key, value in angles.items()}


def depth_scale(depth: np.ndarray | float) -> np.ndarray:
    """Apparent size of a figure at ``depth`` (1 nearest, :data:`FAR_SCALE` farthest)."""
    return 1.0 - (1.0 - FAR_SCALE) * np.asarray(depth, dtype=np.float64)


def _rotate(v: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Vectors ``(T, 2)`` rotated by ``angle`` (clockwise on screen, y pointing down)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * v[:, 0] - s * v[:, 1], s * v[:, 0] + c * v[:, 1]], axis=1)


def _limb(angle: np.ndarray, side: float) -> np.ndarray:
    """Unit vectors of limbs at ``angle`` from hanging down, outwards on ``side`` (-1 right)."""
    return np.stack([side * np.sin(angle), np.cos(angle)], axis=1)


def pose_sequence(body: Body, angles: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Forward kinematics: ``(T, 18, 3)`` float32 keypoints in a ``size`` x ``size`` frame.

    The person's right side is on the image's left (the figure faces the camera). The
    lower ankle stands on the ground line of the root's depth (farther: higher in the
    image and smaller, see :func:`depth_scale`); every confidence is 1.
    """
    missing = [k for k in (*ANGLE_KEYS, *ROOT_KEYS) if k not in angles]
    if missing:
        raise ConfigError(f"pose_sequence: angles lack {', '.join(missing)}.")
    a = {k: np.atleast_1d(np.asarray(angles[k], dtype=np.float64)) for k in angles}
    n = len(a["lean"])
    if any(len(a[k]) != n for k in (*ANGLE_KEYS, *ROOT_KEYS)):
        raise DataError("pose_sequence: every angle trajectory must have the same length.")
    lean, turn = a["lean"], a["head_turn"]
    zero, one = np.zeros(n), np.ones(n)
    up = _rotate(np.stack([zero, -one], 1), lean)
    right = _rotate(np.stack([one, zero], 1), lean)
    p = np.zeros((n, NUM_KEYPOINTS, 2))
    neck = body.torso * up
    p[:, NECK] = neck
    for side, sh, el, wr, key in (
        (-1, R_SHOULDER, R_ELBOW, R_WRIST, "r"),
        (1, L_SHOULDER, L_ELBOW, L_WRIST, "l"),
    ):
        shoulder_angle, elbow_angle = a[f"{key}_shoulder"], a[f"{key}_elbow"]
        p[:, sh] = neck + side * body.shoulder_half * right
        p[:, el] = p[:, sh] + body.upper_arm * _rotate(_limb(shoulder_angle, side), lean)
        forearm = _limb(shoulder_angle + elbow_angle, side)
        p[:, wr] = p[:, el] + body.forearm * _rotate(forearm, lean)
    for side, hip, knee, ankle, key in (
        (-1, R_HIP, R_KNEE, R_ANKLE, "r"),
        (1, L_HIP, L_KNEE, L_ANKLE, "l"),
    ):
        hip_angle, bend = a[f"{key}_hip"], a[f"{key}_knee"]
        p[:, hip] = np.stack([side * body.hip_half * one, zero], 1)
        p[:, knee] = p[:, hip] + body.thigh * _limb(hip_angle + 0.5 * bend, side)
        p[:, ankle] = p[:, knee] + body.shin * _limb(hip_angle - 0.5 * bend, side)
    r = body.head_radius
    center = neck + (body.neck_to_nose + 0.15 * r) * up
    sin_turn = np.sin(turn)
    face = {
        NOSE: (r * sin_turn, 0.15 * r * one),
        R_EYE: (0.95 * r * np.sin(turn - EYE_AZIMUTH), -0.2 * r * one),
        L_EYE: (0.95 * r * np.sin(turn + EYE_AZIMUTH), -0.2 * r * one),
        R_EAR: (-r * np.cos(turn), zero),
        L_EAR: (r * np.cos(turn), zero),
    }
    for index, (dx, dy) in face.items():
        p[:, index] = center + _rotate(np.stack([dx, dy], 1), lean)

    scale = depth_scale(a["depth"])
    ground = size * (HORIZON + (NEAR_ANKLE - HORIZON) * scale)
    lowest = np.maximum(p[:, R_ANKLE, 1], p[:, L_ANKLE, 1])
    unit = size * scale
    out = np.ones((n, NUM_KEYPOINTS, 3), np.float32)
    out[..., 0] = size / 2 + unit[:, None] * (a["root_x"][:, None] + p[..., 0])
    out[..., 1] = ground[:, None] + unit[:, None] * (p[..., 1] - lowest[:, None])
    return out


# -- rendering ---------------------------------------------------------------------------

_SHIFT = 3  # OpenCV sub-pixel bits


def _supersample(size: int) -> int:
    return 4 if size <= 128 else 2


def _pt(xy: np.ndarray) -> tuple[int, int]:
    return round(float(xy[0]) * (1 << _SHIFT)), round(float(xy[1]) * (1 << _SHIFT))


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


class _Canvas:
    """A supersampled colour layer over black and its coverage, drawn with OpenCV."""

    def __init__(self, size: int) -> None:
        self.factor = _supersample(size)
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
                _pt(p + shift),
                _pt(q + shift),
                _shade(color, light),
                thick,
                cv2.LINE_8,
                _SHIFT,
            )
        cv2.line(self.alpha, _pt(p), _pt(q), 255, max(1, round(w)), cv2.LINE_8, _SHIFT)

    def polygon(self, points: np.ndarray, color: RGB) -> None:
        """A convex polygon (image pixels) shaded towards the light."""
        import cv2

        pts = self.hi(points)
        center = pts.mean(0)
        extent = float(np.ptp(pts, axis=0).max())
        for shrink, offset, light in _POLYGON_SHADES:
            layer = center + shrink * (pts - center) + LIGHT * offset * extent
            poly = np.array([_pt(v) for v in layer], np.int32)
            cv2.fillConvexPoly(self.color, poly, _shade(color, light), cv2.LINE_8, _SHIFT)
        cv2.fillConvexPoly(
            self.alpha, np.array([_pt(v) for v in pts], np.int32), 255, cv2.LINE_8, _SHIFT
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
                max(1, round(a0 * shrink * (1 << _SHIFT))),
                max(1, round(a1 * shrink * (1 << _SHIFT))),
            )
            cv2.ellipse(
                self.color,
                _pt(at),
                size,
                degrees,
                0,
                360,
                _shade(color, light),
                -1,
                cv2.LINE_8,
                _SHIFT,
            )
        full = (max(1, round(a0 * (1 << _SHIFT))), max(1, round(a1 * (1 << _SHIFT))))
        cv2.ellipse(self.alpha, _pt(c), full, degrees, 0, 360, 255, -1, cv2.LINE_8, _SHIFT)

    def dot(self, center: np.ndarray, radius: float, color: RGB) -> None:
        """A small flat disk drawn on the person only (eyes, mouth): no coverage added."""
        import cv2

        cv2.circle(
            self.color,
            _pt(self.hi(center)),
            max(1, round(radius * self.factor * (1 << _SHIFT))),
            color,
            -1,
            cv2.LINE_8,
            _SHIFT,
        )

    def finish(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The premultiplied colour (float32, 0-255) and coverage in [0, 1] at ``size``."""
        import cv2

        color = cv2.bitwise_and(self.color, self.color, mask=self.alpha)  # no shading spill
        color = cv2.resize(color, (size, size), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(self.alpha, (size, size), interpolation=cv2.INTER_AREA)
        return color.astype(np.float32), alpha.astype(np.float32) / 255.0


def _draw_person(pose: np.ndarray, body: Body, size: int) -> _Canvas:
    """Draw the clothed figure of ``pose`` (far to near: legs, torso, arms, head)."""
    xy = pose[:, :2].astype(np.float64)
    mid_hip = (xy[R_HIP] + xy[L_HIP]) / 2
    trunk = xy[NECK] - mid_hip
    unit = float(np.hypot(*trunk)) / body.torso  # pixels per image height at this depth
    lean = float(np.arctan2(trunk[0], -trunk[1]))
    right = np.array([np.cos(lean), np.sin(lean)])
    up = np.array([np.sin(lean), -np.cos(lean)])
    canvas = _Canvas(size)
    arm_w, leg_w = body.arm_width * unit, body.leg_width * unit
    down, out_r = np.array([0.0, 1.0]), np.array([-1.0, 0.0])

    for side, hip, knee, ankle in (
        (out_r, R_HIP, R_KNEE, R_ANKLE),
        (-out_r, L_HIP, L_KNEE, L_ANKLE),
    ):
        canvas.capsule(xy[hip], xy[knee], leg_w, body.trousers)
        canvas.capsule(xy[knee], xy[ankle], 0.9 * leg_w, body.trousers)
        heel = xy[ankle] + down * 0.35 * leg_w - side * 0.1 * leg_w
        toe = xy[ankle] + down * 0.45 * leg_w + side * 0.55 * leg_w
        canvas.capsule(heel, toe, 0.75 * leg_w, body.shoes)
    pelvis = np.array(
        [
            xy[R_HIP] + out_r * 0.5 * leg_w,
            xy[L_HIP] - out_r * 0.5 * leg_w,
            xy[L_HIP] - out_r * 0.45 * leg_w + down * 0.7 * leg_w,
            xy[R_HIP] + out_r * 0.45 * leg_w + down * 0.7 * leg_w,
        ]
    )
    canvas.polygon(pelvis, body.trousers)

    r = body.head_radius * unit
    center = (xy[R_EAR] + xy[L_EAR]) / 2
    canvas.capsule(xy[NECK], center, body.neck_width * unit, body.skin)
    torso = np.array(
        [
            xy[R_SHOULDER] - right * 0.35 * arm_w,
            xy[L_SHOULDER] + right * 0.35 * arm_w,
            xy[L_HIP] - out_r * 0.55 * leg_w + up * 0.05 * leg_w,
            xy[R_HIP] + out_r * 0.55 * leg_w + up * 0.05 * leg_w,
        ]
    )
    canvas.polygon(torso, body.shirt)
    for sh, el, wr in ((R_SHOULDER, R_ELBOW, R_WRIST), (L_SHOULDER, L_ELBOW, L_WRIST)):
        canvas.capsule(xy[el], xy[wr], 0.85 * arm_w, body.skin)
        canvas.capsule(xy[sh], xy[el], 1.1 * arm_w, body.shirt)
        along = xy[wr] - xy[el]
        along = along / max(float(np.hypot(*along)), 1e-9)
        canvas.ellipse(xy[wr] + along * 0.45 * arm_w, (0.6 * arm_w, 0.6 * arm_w), 0.0, body.skin)

    sin_turn = float(np.clip((xy[NOSE] - center) @ right / max(r, 1e-9), -1, 1))
    for ear in (R_EAR, L_EAR):
        canvas.ellipse(xy[ear], (0.22 * r, 0.3 * r), lean, body.skin, shaded=False)
    canvas.ellipse(center, (r, r), lean, body.hair)
    face = center + right * 0.3 * r * sin_turn + up * -0.14 * r
    canvas.ellipse(face, (0.8 * r * (1 - 0.15 * abs(sin_turn)), 0.84 * r), lean, body.skin)
    for eye in (R_EYE, L_EYE):
        canvas.dot(xy[eye], 0.12 * r, (25, 20, 20))
    canvas.dot(xy[NOSE] + up * -0.35 * r, 0.1 * r, (150, 60, 60))
    return canvas


def _shadow(pose: np.ndarray, body: Body, size: int) -> np.ndarray:
    """A soft floor shadow under the feet: a darkening factor in [0, 1], (size, size)."""
    import cv2

    xy = pose[:, :2].astype(np.float64)
    unit = float(np.hypot(*(xy[NECK] - (xy[R_HIP] + xy[L_HIP]) / 2))) / body.torso
    center = np.array([(xy[R_ANKLE, 0] + xy[L_ANKLE, 0]) / 2, max(xy[R_ANKLE, 1], xy[L_ANKLE, 1])])
    center[1] += 0.5 * body.leg_width * unit
    half = abs(xy[R_ANKLE, 0] - xy[L_ANKLE, 0]) / 2 + 0.9 * body.leg_width * unit
    shade = np.zeros((size, size), np.float32)
    scale = 1 << _SHIFT
    cv2.ellipse(
        shade,
        _pt(center),
        (max(1, round(half * scale)), max(1, round(0.025 * unit * scale))),
        0,
        0,
        360,
        1.0,
        -1,
        cv2.LINE_AA,
        _SHIFT,
    )
    return cv2.GaussianBlur(shade, (0, 0), max(0.5, size / 128))


def _composite(
    pose: np.ndarray, body: Body, size: int, background: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    pose = check_poses(pose, "puppet pose")
    if pose.shape != (NUM_KEYPOINTS, 3):
        raise DataError(f"render_person takes one (18, 3) pose; got {pose.shape}.")
    color, alpha = _draw_person(pose, body, size).finish(size)
    if background is None:
        scene = np.zeros((size, size, 3), np.float32)
    else:
        if background.shape != (size, size, 3):
            raise DataError(
                f"render_person background must be ({size}, {size}, 3); got {background.shape}."
            )
        scene = background.astype(np.float32) * (1 - 0.4 * _shadow(pose, body, size))[..., None]
    image = color + scene * (1 - alpha)[..., None]
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), alpha >= 0.5


def render_person(
    pose: np.ndarray, body: Body, size: int, background: np.ndarray | None = None
) -> np.ndarray:
    """The clothed, shaded figure of a complete pose, ``(size, size, 3)`` uint8 RGB.

    A deterministic function of the pose (in this ``size`` frame, e.g. from
    :func:`pose_sequence`), ``body`` and ``background`` (``(size, size, 3)`` uint8, with
    a soft shadow under the feet; ``None``: black). The depth is read off the pose
    (the neck-to-hip length over ``body.torso``), the head turn off the nose.
    """
    return _composite(pose, body, size, background)[0]


def person_mask(pose: np.ndarray, body: Body, size: int) -> np.ndarray:
    """The pixels the figure of :func:`render_person` covers (at least half), ``(size, size)`` bool."""
    return _composite(pose, body, size, None)[1]


def background(size: int, seed: int = 0) -> np.ndarray:
    """A static room, ``(size, size, 3)`` uint8: a textured wall with a picture, a plank floor.

    Deterministic from ``seed`` (wall and floor colours, texture, the picture's place).
    """
    import cv2

    if size < 8:
        raise ConfigError(f"puppet images need size >= 8, got {size}.")
    rng = np.random.default_rng(seed)
    factor = _supersample(size)
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


# -- the data set ------------------------------------------------------------------------


@dataclass
class PuppetData:
    """Target, held-out, source and ground-truth transfer videos of the puppet world.

    Frames are ``(N, H, W, 3)`` uint8 RGB, poses ``(N, 18, 3)`` float32 in the frame's
    pixels, masks ``(N, H, W)`` bool. ``*_poses`` are what a detector reported (see
    :func:`make_puppet_data`), ``*_clean_poses`` the truth. Source poses are *not*
    normalised into the target's frame (fit :func:`gan.data.pose.fit_pose_normalizer`
    on ``source_poses`` and ``train_poses`` for that).
    """

    train_frames: np.ndarray
    train_poses: np.ndarray
    train_clean_poses: np.ndarray
    train_masks: np.ndarray
    test_frames: np.ndarray
    test_poses: np.ndarray
    test_clean_poses: np.ndarray
    test_masks: np.ndarray
    source_frames: np.ndarray
    source_poses: np.ndarray
    source_clean_poses: np.ndarray
    transfer_truth: np.ndarray
    transfer_masks: np.ndarray
    background: np.ndarray
    fps: int = FPS


def _render_video(
    poses: np.ndarray, body: Body, size: int, scene: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    frames = np.empty((len(poses), size, size, 3), np.uint8)
    masks = np.empty((len(poses), size, size), bool)
    for i, pose in enumerate(poses):
        frames[i], masks[i] = _composite(pose, body, size, scene)
    return frames, masks


def make_puppet_data(
    size: int = 64,
    n_train: int = 600,
    n_test: int = 150,
    n_source: int = 150,
    seed: int = 0,
    jitter_px: float = 0.0,
    drop_prob: float = 0.0,
) -> PuppetData:
    """The target (:data:`TARGET_BODY`) dancing ``sway`` and the source (:data:`SOURCE_BODY`) ``disco``.

    * train: ``n_train`` frames of the target's dance (phases from ``seed``);
    * test: ``n_test`` later frames of the same dance, other phases (``seed + 1``):
      poses of the target the model never saw;
    * source: ``n_source`` frames of the source's dance (``seed + 2``);
    * transfer truth: the target performing the source's joint angles and root path.

    With ``jitter_px`` or ``drop_prob`` > 0 the reported poses pass through
    :func:`gan.data.pose.detector_noise` (independent draws per video); otherwise
    they are the clean ones.
    """
    if size < 16:
        raise ConfigError(f"make_puppet_data size must be >= 16, got {size}.")
    for name, n in (("n_train", n_train), ("n_test", n_test), ("n_source", n_source)):
        if n < 1:
            raise ConfigError(f"make_puppet_data {name} must be >= 1, got {n}.")
    scene = background(size, seed)
    train_angles = dance_angles("sway", n_train, seed=seed)
    test_angles = dance_angles("sway", n_test, seed=seed + 1, start=n_train)
    source_angles = dance_angles("disco", n_source, seed=seed + 2)
    train_clean = pose_sequence(TARGET_BODY, train_angles, size)
    test_clean = pose_sequence(TARGET_BODY, test_angles, size)
    source_clean = pose_sequence(SOURCE_BODY, source_angles, size)
    transfer_poses = pose_sequence(TARGET_BODY, source_angles, size)

    def detected(clean: np.ndarray, offset: int) -> np.ndarray:
        if jitter_px > 0 or drop_prob > 0:
            return detector_noise(clean, jitter_px, drop_prob, seed=seed * 3 + offset)
        return clean.copy()

    train_frames, train_masks = _render_video(train_clean, TARGET_BODY, size, scene)
    test_frames, test_masks = _render_video(test_clean, TARGET_BODY, size, scene)
    source_frames, _ = _render_video(source_clean, SOURCE_BODY, size, scene)
    transfer_truth, transfer_masks = _render_video(transfer_poses, TARGET_BODY, size, scene)
    return PuppetData(
        train_frames=train_frames,
        train_poses=detected(train_clean, 0),
        train_clean_poses=train_clean,
        train_masks=train_masks,
        test_frames=test_frames,
        test_poses=detected(test_clean, 1),
        test_clean_poses=test_clean,
        test_masks=test_masks,
        source_frames=source_frames,
        source_poses=detected(source_clean, 2),
        source_clean_poses=source_clean,
        transfer_truth=transfer_truth,
        transfer_masks=transfer_masks,
        background=scene,
        fps=FPS,
    )
