"""The puppet data set: target, held-out, source and ground-truth transfer videos."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from counterfeit.gan.data.pose.noise import detector_noise
from counterfeit.gan.data.puppet.body import SOURCE_BODY, TARGET_BODY
from counterfeit.gan.data.puppet.motion import FPS, dance_angles, pose_sequence
from counterfeit.gan.data.puppet.person import render_video
from counterfeit.gan.data.puppet.scene import background
from counterfeit.gan.errors import ConfigError


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

    train_frames, train_masks = render_video(train_clean, TARGET_BODY, size, scene)
    test_frames, test_masks = render_video(test_clean, TARGET_BODY, size, scene)
    source_frames, _ = render_video(source_clean, SOURCE_BODY, size, scene)
    transfer_truth, transfer_masks = render_video(transfer_poses, TARGET_BODY, size, scene)
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
