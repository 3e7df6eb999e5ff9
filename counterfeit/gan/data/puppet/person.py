"""The puppet as a clothed, shaded person: one pose to an image and its coverage mask."""

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
    check_poses,
)
from counterfeit.gan.data.puppet.body import Body
from counterfeit.gan.data.puppet.canvas import SHIFT, Canvas, fixed_point
from counterfeit.gan.errors import DataError


def _draw_person(pose: np.ndarray, body: Body, size: int) -> Canvas:
    """Draw the clothed figure of ``pose`` (far to near: legs, torso, arms, head)."""
    xy = pose[:, :2].astype(np.float64)
    mid_hip = (xy[R_HIP] + xy[L_HIP]) / 2
    trunk = xy[NECK] - mid_hip
    unit = float(np.hypot(*trunk)) / body.torso  # pixels per image height at this depth
    lean = float(np.arctan2(trunk[0], -trunk[1]))
    right = np.array([np.cos(lean), np.sin(lean)])
    up = np.array([np.sin(lean), -np.cos(lean)])
    canvas = Canvas(size)
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
    scale = 1 << SHIFT
    cv2.ellipse(
        shade,
        fixed_point(center),
        (max(1, round(half * scale)), max(1, round(0.025 * unit * scale))),
        0,
        0,
        360,
        1.0,
        -1,
        cv2.LINE_AA,
        SHIFT,
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


def render_video(
    poses: np.ndarray, body: Body, size: int, scene: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The frames ``(T, size, size, 3)`` uint8 and masks ``(T, size, size)`` of a pose video."""
    frames = np.empty((len(poses), size, size, 3), np.uint8)
    masks = np.empty((len(poses), size, size), bool)
    for i, pose in enumerate(poses):
        frames[i], masks[i] = _composite(pose, body, size, scene)
    return frames, masks
