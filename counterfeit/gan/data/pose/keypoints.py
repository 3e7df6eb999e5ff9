"""Keypoint layouts of OpenPose (Cao et al., CVPR 2017): COCO-18, BODY_25 and their drawing tables.

A *pose* is an ``(18, 3)`` float32 array of ``(x, y, confidence)`` in the pixel
coordinates of its frame (x to the right, y down, integer values at pixel
centres), in OpenPose's COCO-18 order (:data:`COCO18_NAMES`); a *sequence* is
``(T, 18, 3)``. Confidence 0 means the keypoint is missing (its coordinates are
then 0 too); "confident" means a confidence of at least ``threshold``.
"""

from __future__ import annotations

import numpy as np

from counterfeit.gan.errors import DataError

COCO18_NAMES: tuple[str, ...] = (
    "nose",
    "neck",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_eye",
    "l_eye",
    "r_ear",
    "l_ear",
)
NOSE, NECK = 0, 1
R_SHOULDER, R_ELBOW, R_WRIST, L_SHOULDER, L_ELBOW, L_WRIST = 2, 3, 4, 5, 6, 7
R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE = 8, 9, 10, 11, 12, 13
R_EYE, L_EYE, R_EAR, L_EAR = 14, 15, 16, 17
NUM_KEYPOINTS = len(COCO18_NAMES)

# The 17 limbs OpenPose draws for COCO-18 (its demo's order), and their RGB colours.
COCO18_LIMBS: tuple[tuple[int, int], ...] = (
    (NECK, R_SHOULDER),
    (NECK, L_SHOULDER),
    (R_SHOULDER, R_ELBOW),
    (R_ELBOW, R_WRIST),
    (L_SHOULDER, L_ELBOW),
    (L_ELBOW, L_WRIST),
    (NECK, R_HIP),
    (R_HIP, R_KNEE),
    (R_KNEE, R_ANKLE),
    (NECK, L_HIP),
    (L_HIP, L_KNEE),
    (L_KNEE, L_ANKLE),
    (NECK, NOSE),
    (NOSE, R_EYE),
    (R_EYE, R_EAR),
    (NOSE, L_EYE),
    (L_EYE, L_EAR),
)
LIMB_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0),
    (255, 85, 0),
    (255, 170, 0),
    (255, 255, 0),
    (170, 255, 0),
    (85, 255, 0),
    (0, 255, 0),
    (0, 255, 85),
    (0, 255, 170),
    (0, 255, 255),
    (0, 170, 255),
    (0, 85, 255),
    (0, 0, 255),
    (85, 0, 255),
    (170, 0, 255),
    (255, 0, 255),
    (255, 0, 170),
)
# OpenPose's keypoint colours: the limb palette plus one more for the 18th point.
JOINT_COLORS: tuple[tuple[int, int, int], ...] = (*LIMB_COLORS, (255, 0, 85))

BODY25_NAMES: tuple[str, ...] = (
    "nose",
    "neck",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "mid_hip",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_eye",
    "l_eye",
    "r_ear",
    "l_ear",
    "l_big_toe",
    "l_small_toe",
    "l_heel",
    "r_big_toe",
    "r_small_toe",
    "r_heel",
)
BODY25_TO_COCO18: tuple[int, ...] = tuple(BODY25_NAMES.index(name) for name in COCO18_NAMES)

HEAD_POINTS = (NOSE, NECK, R_EYE, L_EYE, R_EAR, L_EAR)
FACE_POINTS = (NOSE, R_EYE, L_EYE, R_EAR, L_EAR)


def confident(pose: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """Boolean mask of the keypoints that are present and at least ``threshold`` confident."""
    c = np.asarray(pose)[..., 2]
    return (c > 0) & (c >= threshold)


def check_poses(seq: np.ndarray, what: str = "poses") -> np.ndarray:
    """``seq`` as float32, raising :class:`DataError` unless it is ``(..., 18, 3)`` and finite."""
    seq = np.asarray(seq, dtype=np.float32)
    if seq.ndim < 2 or seq.shape[-2:] != (NUM_KEYPOINTS, 3):
        raise DataError(
            f"{what} must have shape (18, 3) per pose (COCO-18 x, y, confidence); got {seq.shape}."
        )
    if not np.isfinite(seq).all():
        raise DataError(f"{what} hold NaN or infinite values.")
    return seq
