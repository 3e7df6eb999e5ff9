"""The puppets' dances: joint-angle trajectories and forward kinematics to COCO-18 keypoints."""

from __future__ import annotations

import numpy as np

from counterfeit.gan.data.pose.keypoints import (
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
)
from counterfeit.gan.data.puppet.body import Body
from counterfeit.gan.data.puppet.scene import HORIZON, NEAR_ANKLE, depth_scale
from counterfeit.gan.errors import ConfigError, DataError

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
EYE_AZIMUTH = 0.45  # radians either side of the nose


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
