"""The network's input: OpenPose's stick figures of poses, coloured limbs on black."""

from __future__ import annotations

import numpy as np
import torch

from counterfeit.gan.data.pose.keypoints import (
    COCO18_LIMBS,
    JOINT_COLORS,
    LIMB_COLORS,
    NUM_KEYPOINTS,
    check_poses,
    confident,
)
from counterfeit.gan.errors import ConfigError, DataError


def render_stick_figure(
    pose: np.ndarray, size: int, thickness: int | None = None, threshold: float = 0.05
) -> np.ndarray:
    """OpenPose's stick figure of one pose on black, ``(size, size, 3)`` uint8 RGB.

    Each of the 17 :data:`COCO18_LIMBS` is an anti-aliased line in its
    :data:`LIMB_COLORS` colour (skipped when an endpoint is below ``threshold``),
    then every confident keypoint a dot of radius ``0.75 thickness`` in its
    :data:`JOINT_COLORS` colour. ``pose`` is already in this
    ``size`` x ``size`` frame; ``thickness`` defaults to ``max(1, size // 32)``.
    """
    import cv2

    pose = check_poses(pose, "stick-figure pose")
    if pose.shape != (NUM_KEYPOINTS, 3):
        raise DataError(f"render_stick_figure takes one (18, 3) pose; got {pose.shape}.")
    width = max(1, size // 32) if thickness is None else int(thickness)
    if width < 1:
        raise ConfigError(f"stick-figure thickness must be >= 1, got {thickness}.")
    canvas = np.zeros((size, size, 3), np.uint8)
    ok = confident(pose, threshold)
    shift = 4  # sub-pixel precision: coordinates in 1/16 pixel
    points = np.round(pose[:, :2] * (1 << shift)).clip(-(2**20), 2**20).astype(np.int64)
    for (a, b), color in zip(COCO18_LIMBS, LIMB_COLORS):
        if ok[a] and ok[b]:
            pa, pb = tuple(int(v) for v in points[a]), tuple(int(v) for v in points[b])
            cv2.line(canvas, pa, pb, color, width, cv2.LINE_AA, shift)
    radius = max(1 << shift, round(0.75 * width * (1 << shift)))
    for i in np.flatnonzero(ok):
        center = tuple(int(v) for v in points[i])
        cv2.circle(canvas, center, radius, JOINT_COLORS[i], -1, cv2.LINE_AA, shift)
    return canvas


def pose_labels(poses: np.ndarray, size: int) -> torch.Tensor:
    """Stick-figure label images (T, 3, size, size) uint8 for poses (T, 18, 3) in that frame."""
    if poses.ndim != 3 or poses.shape[1:] != (18, 3):
        raise DataError(f"poses must be (T, 18, 3) COCO-18 keypoints, got {poses.shape}.")
    labels = np.stack([render_stick_figure(p, size) for p in poses])
    return torch.from_numpy(labels).permute(0, 3, 1, 2).contiguous()
