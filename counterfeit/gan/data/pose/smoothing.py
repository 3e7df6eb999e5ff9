"""Temporal smoothing of detected keypoints (Chan et al., "Everybody Dance Now", 2018)."""

from __future__ import annotations

import numpy as np

from counterfeit.gan.data.pose.keypoints import check_poses, confident
from counterfeit.gan.errors import ConfigError, DataError


def _window_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Centred sums over ``window`` frames along axis 0, truncated at both ends."""
    pad = window // 2
    padded = np.pad(values, [(pad + 1, pad)] + [(0, 0)] * (values.ndim - 1))
    sums = np.cumsum(padded, axis=0)
    return sums[window:] - sums[:-window]


DEFAULT_SMOOTHING_WINDOW = 11
"""Frames in the keypoint-smoothing window of ``puppet-dance`` and ``counterfeit transfer``
(0.73 s at 15 fps): on the puppet benchmark with detector noise, 9 frames left the output's
flicker at 1.24x the truth's after 2,774 steps and 11 brought it to 1.15x at the same
held-out PSNR, for 0.5 dB on a faster source dance (docs/archive/benchmarks-notebook.md).
The paper gives no window."""


def smooth_poses(seq: np.ndarray, window: int = 5, threshold: float = 0.05) -> np.ndarray:
    """The paper's keypoint smoothing: a centred window average of the confident detections.

    For every keypoint and frame, ``x`` and ``y`` become the mean over the ``window``
    frames around it (fewer at the ends) of the *confident* observations only, and the
    confidence the mean of their confidences. A point missing or below ``threshold``
    is so filled from its neighbours; with no confident observation in the window it
    is missing (all zeros). ``window=1`` returns the sequence unchanged.

    Raises:
        ConfigError: ``window`` is not an odd number >= 1.
    """
    if not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ConfigError(f"smoothing window must be an odd number >= 1, got {window}.")
    seq = check_poses(seq, "pose sequence")
    if seq.ndim != 3:
        raise DataError(f"smooth_poses takes a (T, 18, 3) sequence; got {seq.shape}.")
    if window == 1:
        return seq.copy()
    ok = confident(seq, threshold).astype(np.float64)
    count = _window_sum(ok, window)
    sums = _window_sum(seq.astype(np.float64) * ok[..., None], window)
    out = np.zeros_like(seq)
    seen = count > 0
    out[seen] = (sums[seen] / count[seen][:, None]).astype(np.float32)
    return out
