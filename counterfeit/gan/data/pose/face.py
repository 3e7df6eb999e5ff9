"""The face crop that the face GAN refines (Chan et al., "Everybody Dance Now", 2018, Sec. 3.3)."""

from __future__ import annotations

import numpy as np
import torch

from counterfeit.gan.data.pose.keypoints import (
    FACE_POINTS,
    L_EAR,
    L_EYE,
    NOSE,
    R_EAR,
    R_EYE,
    check_poses,
    confident,
)

NO_FACE = -1  # face_box entry of a frame without a usable face
EYE_TO_EAR = 2.0  # the ear-to-ear span is about twice the eye-to-eye span


def face_box(
    pose: np.ndarray, size: int, threshold: float = 0.05, scale: float = 1.0
) -> tuple[int, int, int, int] | None:
    """A square ``(x0, y0, x1, y1)`` (x1, y1 exclusive) around the face, inside the image.

    Centred on the nose (the paper's face crop; else the mean of the confident face
    points), with side ``2.2 x scale`` the ear-to-ear span (twice the eye span when an
    ear is missing, the face points' extent when both eyes are too), at least
    ``size // 8``. ``None`` when fewer than two face points are confident.
    """
    pose = check_poses(pose, "face pose")
    ok = confident(pose, threshold)
    face = [i for i in FACE_POINTS if ok[i]]
    if len(face) < 2:
        return None
    xy = pose[:, :2].astype(np.float64)
    if ok[R_EAR] and ok[L_EAR]:
        span = float(np.linalg.norm(xy[R_EAR] - xy[L_EAR]))
    elif ok[R_EYE] and ok[L_EYE]:
        span = EYE_TO_EAR * float(np.linalg.norm(xy[R_EYE] - xy[L_EYE]))
    else:
        span = float(np.ptp(xy[face], axis=0).max())
    side = round(max(2.2 * span * scale, size // 8, 1))
    side = min(side, size)
    center = xy[NOSE] if ok[NOSE] else xy[face].mean(0)
    x0 = int(np.clip(round(center[0] - side / 2), 0, size - side))
    y0 = int(np.clip(round(center[1] - side / 2), 0, size - side))
    return x0, y0, x0 + side, y0 + side


def face_size_for(image_size: int) -> int:
    """The face crop's side: an eighth of the frame, at least 16 px (a 16-px PatchGAN)."""
    return max(16, image_size // 8)


def face_corners(poses: np.ndarray, size: int, face_size: int) -> torch.Tensor:
    """Top-left corners (T, 2) of ``face_size`` squares centred on each face; -1 without one."""
    corners = torch.full((len(poses), 2), NO_FACE, dtype=torch.long)
    for t, pose in enumerate(poses):
        box = face_box(pose, size)
        if box is None:
            continue
        cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
        x0 = min(max(cx - face_size // 2, 0), size - face_size)
        y0 = min(max(cy - face_size // 2, 0), size - face_size)
        corners[t] = torch.tensor([x0, y0])
    return corners
