"""Synthetic detector noise on clean keypoints, for tests and the puppet benchmark."""

from __future__ import annotations

import numpy as np

from counterfeit.gan.data.pose.keypoints import check_poses
from counterfeit.gan.errors import ConfigError


def detector_noise(seq: np.ndarray, jitter_px: float, drop_prob: float, seed: int) -> np.ndarray:
    """Clean keypoints as a real detector reports them.

    Every present keypoint moves by i.i.d. Gaussian noise of ``jitter_px`` pixels in
    x and y, is dropped (all zeros) with probability ``drop_prob``, and otherwise
    gets a confidence drawn uniformly in [0.3, 1]. Missing points stay missing.
    """
    if jitter_px < 0:
        raise ConfigError(f"detector jitter_px must be >= 0, got {jitter_px}.")
    if not 0 <= drop_prob <= 1:
        raise ConfigError(f"detector drop_prob must be in [0, 1], got {drop_prob}.")
    seq = check_poses(seq, "pose sequence")
    rng = np.random.default_rng(seed)
    jitter = rng.normal(0.0, jitter_px, seq[..., :2].shape) if jitter_px > 0 else 0.0
    kept = (seq[..., 2] > 0) & (rng.random(seq.shape[:-1]) >= drop_prob)
    out = np.zeros_like(seq)
    out[..., :2] = np.where(kept[..., None], seq[..., :2] + jitter, 0.0)
    out[..., 2] = np.where(kept, rng.uniform(0.3, 1.0, seq.shape[:-1]), 0.0)
    return out.astype(np.float32)
