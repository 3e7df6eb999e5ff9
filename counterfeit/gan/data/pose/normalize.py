"""Global pose normalisation (Chan et al., "Everybody Dance Now", 2018, Sec. 3.3 and the appendix).

Maps a source video's ankle line and body height onto a target video's, so that
the source's motion is drawn where and as large as the target stands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from counterfeit.gan.data.pose.keypoints import (
    HEAD_POINTS,
    L_ANKLE,
    R_ANKLE,
    check_poses,
    confident,
)
from counterfeit.gan.errors import DataError

FAR_PERCENTILE, CLOSE_PERCENTILE = 5.0, 95.0
HEIGHT_BAND = 0.1  # frames within this fraction of the close-far span count as far / close


def _fill(values: np.ndarray) -> np.ndarray:
    """NaNs replaced by the previous frame's value (leading ones by the median)."""
    out = values.copy()
    finite = np.isfinite(out)
    median = float(np.median(out[finite]))
    last = median
    for t in range(len(out)):
        if finite[t]:
            last = out[t]
        else:
            out[t] = last
    return out


def _ground(seq: np.ndarray, threshold: float, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ankle ``(y, x)``: the mean of the confident ankles, NaN where there are none.

    A sequence with no confident ankle at all stands on its lowest confident keypoint
    (the feet are out of the frame); one with no confident keypoint raises DataError.
    """
    ok = confident(seq, threshold)
    ankles = ok[:, [R_ANKLE, L_ANKLE]]
    n = ankles.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(n > 0, (seq[:, [R_ANKLE, L_ANKLE], 1] * ankles).sum(1) / n, np.nan)
        x = np.where(n > 0, (seq[:, [R_ANKLE, L_ANKLE], 0] * ankles).sum(1) / n, np.nan)
    if not (n > 0).any():
        if not ok.any():
            raise DataError(f"{what} has no confident keypoint (threshold {threshold}).")
        any_ok = ok.any(1)
        lowest = np.where(ok, seq[..., 1], -np.inf).max(1)
        y = np.where(any_ok, lowest, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.where(any_ok, (seq[..., 0] * ok).sum(1) / ok.sum(1), np.nan)
    return y, x


@dataclass(frozen=True)
class _VideoStats:
    far: float
    close: float
    far_height: float
    close_height: float
    center_x: float


def _video_stats(seq: np.ndarray, threshold: float, what: str) -> _VideoStats:
    y, x = _ground(seq, threshold, what)
    seen = np.isfinite(y)
    far, close = np.percentile(y[seen], [FAR_PERCENTILE, CLOSE_PERCENTILE])
    ok = confident(seq, threshold)
    head = np.where(ok[:, HEAD_POINTS], seq[:, HEAD_POINTS, 1], np.inf).min(1)
    height = np.where(seen & np.isfinite(head), y - head, np.nan)
    if not np.isfinite(height).any() or np.nanmax(height) <= 0:
        raise DataError(
            f"{what}: no frame shows both the feet and a head point (nose, neck, eyes, ears) "
            "above them, so the body height cannot be measured."
        )
    band = HEIGHT_BAND * (close - far)

    def height_near(level: float) -> float:
        near = np.isfinite(height) & (np.abs(y - level) <= band)
        value = float(height[near].max()) if near.any() else float(np.nanmedian(height))
        return value if value > 0 else float(np.nanmax(height))

    return _VideoStats(
        float(far), float(close), height_near(far), height_near(close), float(np.median(x[seen]))
    )


@dataclass(frozen=True)
class PoseNormalizer:
    """Global pose normalisation from a source video into a target video's frame.

    Chan et al. (2018), Sec. 3.3: a source pose with ankle line ``a`` is placed at the
    target ankle line ``t = target_far + alpha (target_close - target_far)``,
    ``alpha = clip((a - source_far) / (source_close - source_far), 0, 1)``, and scaled
    about its ankles by ``k = target_far_height / source_far_height + alpha
    (target_close_height / source_close_height - target_far_height / source_far_height)``;
    horizontally it moves by the offset between the videos' median ankle x.
    *far* / *close* are the 5th / 95th percentiles of a video's ankle y (far from
    the camera = higher in the image), the heights the largest ankle-to-head height
    among frames near them.
    """

    source_far: float
    source_close: float
    target_far: float
    target_close: float
    source_far_height: float
    source_close_height: float
    target_far_height: float
    target_close_height: float
    source_center_x: float
    target_center_x: float
    threshold: float = 0.05

    def alpha(self, ankle_y: float | np.ndarray) -> np.ndarray:
        """Where ``ankle_y`` lies between the source's far (0) and close (1) ankle lines."""
        span = self.source_close - self.source_far
        a = np.asarray(ankle_y, dtype=np.float64)
        if span <= 0:
            return np.zeros_like(a)
        return np.clip((a - self.source_far) / span, 0.0, 1.0)

    def scale(self, ankle_y: float) -> float:
        """The factor a source pose standing on ``ankle_y`` is scaled by."""
        far = self.target_far_height / self.source_far_height
        close = self.target_close_height / self.source_close_height
        return float(far + self.alpha(ankle_y) * (close - far))

    def apply(self, seq: np.ndarray) -> np.ndarray:
        """Source poses ``(T, 18, 3)`` (or one ``(18, 3)``) moved into the target's frame.

        Frames without a confident ankle use the previous frame's ankle (the first ones
        the sequence median). Confidences are kept; missing points stay all zeros.
        """
        seq = check_poses(seq, "source poses")
        single = seq.ndim == 2
        frames = seq[None] if single else seq
        if frames.ndim != 3:
            raise DataError(f"PoseNormalizer.apply takes (T, 18, 3) poses; got {seq.shape}.")
        y, x = _ground(frames, self.threshold, "source poses")
        a, a_x = _fill(y), _fill(x)
        alpha = self.alpha(a)
        t = self.target_far + alpha * (self.target_close - self.target_far)
        far = self.target_far_height / self.source_far_height
        k = far + alpha * (self.target_close_height / self.source_close_height - far)
        t_x = a_x + (self.target_center_x - self.source_center_x)
        out = frames.copy()
        present = frames[..., 2] > 0
        new_x = t_x[:, None] + (frames[..., 0] - a_x[:, None]) * k[:, None]
        new_y = t[:, None] + (frames[..., 1] - a[:, None]) * k[:, None]
        out[..., 0] = np.where(present, new_x, 0.0)
        out[..., 1] = np.where(present, new_y, 0.0)
        return out[0] if single else out


def fit_pose_normalizer(
    source_seq: np.ndarray, target_seq: np.ndarray, threshold: float = 0.05
) -> PoseNormalizer:
    """Fit :class:`PoseNormalizer` from a source and a target pose sequence, each ``(T, 18, 3)``.

    Raises:
        DataError: a sequence has no confident keypoint, or never shows a head above
            its feet.
    """
    source = check_poses(source_seq, "source poses")
    target = check_poses(target_seq, "target poses")
    for what, seq in (("source poses", source), ("target poses", target)):
        if seq.ndim != 3 or len(seq) == 0:
            raise DataError(f"{what} must be a non-empty (T, 18, 3) sequence; got {seq.shape}.")
    s = _video_stats(source, threshold, "source poses")
    t = _video_stats(target, threshold, "target poses")
    return PoseNormalizer(
        source_far=s.far,
        source_close=s.close,
        target_far=t.far,
        target_close=t.close,
        source_far_height=s.far_height,
        source_close_height=s.close_height,
        target_far_height=t.far_height,
        target_close_height=t.close_height,
        source_center_x=s.center_x,
        target_center_x=t.center_x,
        threshold=threshold,
    )
