"""Body keypoints for pose-to-video motion transfer (Chan et al., "Everybody Dance Now", 2018).

A *pose* is an ``(18, 3)`` float32 array of ``(x, y, confidence)`` in the pixel
coordinates of its frame (x to the right, y down, integer values at pixel
centres), in OpenPose's COCO-18 order (:data:`COCO18_NAMES`; Cao et al., CVPR
2017); a *sequence* is ``(T, 18, 3)``. Confidence 0 means the keypoint is
missing (its coordinates are then 0 too); "confident" means a confidence of at
least ``threshold``.

* files: :func:`read_openpose_json` / :func:`write_openpose_json` (OpenPose's
  per-frame JSON, COCO-18 or BODY_25), :func:`read_pose_folder` and
  :func:`load_pose_video` (a user's ``frames/`` + ``poses/`` folders);
* the network's input: :func:`render_stick_figure`, OpenPose's coloured limbs;
* the paper's pre-processing: :func:`smooth_poses` (temporal smoothing of the
  keypoints), :func:`fit_pose_normalizer` (global pose normalisation, Sec. 3.3
  and the appendix: map the source's ankle line and body height onto the
  target's) and :func:`face_box` (the face crop the face GAN refines, centred
  on the nose);
* :func:`detector_noise`: what a real detector does to clean keypoints
  (jitter, dropped points, confidences), for synthetic tests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from counterfeit.gan.data.files import IMAGE_SUFFIXES
from counterfeit.gan.errors import ConfigError, DataError
from PIL import Image

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
FAR_PERCENTILE, CLOSE_PERCENTILE = 5.0, 95.0
HEIGHT_BAND = 0.1  # frames within this fraction of the close-far span count as far / close


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


def _natural_key(text: str) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


# -- OpenPose files ----------------------------------------------------------------------


def read_openpose_json(path: str | Path) -> np.ndarray:
    """The body pose of one OpenPose per-frame JSON file, as a COCO-18 ``(18, 3)`` array.

    Reads ``{"people": [{"pose_keypoints_2d": [x0, y0, c0, ...]}]}`` (also the old key
    ``pose_keypoints``) with 54 numbers (COCO-18) or 75 (BODY_25, mapped through
    :data:`BODY25_TO_COCO18`). With several people, the one with the highest summed
    confidence is returned; with none, all zeros (every keypoint missing).

    Raises:
        DataError: the file cannot be read, is not JSON of that form, or a person has
            another number of values; the message names the file.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise DataError(f"cannot read pose file {path}: {exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"pose file {path} is not valid JSON: {exc}") from None
    people = data.get("people") if isinstance(data, dict) else None
    if not isinstance(people, list):
        raise DataError(
            f'pose file {path} has no "people" list; expected OpenPose\'s per-frame JSON '
            '{"people": [{"pose_keypoints_2d": [...]}]}.'
        )
    best, best_score = np.zeros((NUM_KEYPOINTS, 3), np.float32), -1.0
    for i, person in enumerate(people):
        values = None
        if isinstance(person, dict):
            values = person.get("pose_keypoints_2d", person.get("pose_keypoints"))
        if not isinstance(values, list):
            raise DataError(f'pose file {path}: person {i} has no "pose_keypoints_2d" list.')
        if not values:
            continue
        try:
            flat = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError):
            raise DataError(f"pose file {path}: person {i} has non-numeric keypoints.") from None
        if flat.ndim != 1 or flat.size not in (54, 75):
            raise DataError(
                f"pose file {path}: person {i} has {flat.size} keypoint values; expected 54 "
                "(COCO-18: 18 x, y, confidence) or 75 (BODY_25)."
            )
        if not np.isfinite(flat).all():
            raise DataError(f"pose file {path}: person {i} has NaN or infinite keypoints.")
        pose = flat.reshape(-1, 3)
        if len(pose) == len(BODY25_NAMES):
            pose = pose[list(BODY25_TO_COCO18)]
        score = float(pose[:, 2].sum())
        if score > best_score:
            best, best_score = pose, score
    return np.ascontiguousarray(best, dtype=np.float32)


def write_openpose_json(
    path: str | Path, pose: np.ndarray, layout: Literal["COCO18"] = "COCO18"
) -> None:
    """Write one pose as OpenPose's per-frame JSON (one person; none when all are missing)."""
    if layout != "COCO18":
        raise ConfigError(f"unknown keypoint layout '{layout}'; only COCO18 is written.")
    pose = check_poses(pose, f"pose for {path}")
    if pose.shape != (NUM_KEYPOINTS, 3):
        raise DataError(f"write_openpose_json takes one (18, 3) pose; got {pose.shape}.")
    people = []
    if (pose[:, 2] > 0).any():
        people.append({"person_id": [-1], "pose_keypoints_2d": [float(v) for v in pose.ravel()]})
    Path(path).write_text(json.dumps({"version": 1.3, "people": people}))


def _pose_files(directory: Path) -> dict[str, Path]:
    """``{stem: file}`` for every ``STEM_keypoints.json`` / ``STEM.json`` in ``directory``."""
    if not directory.is_dir():
        raise DataError(f"pose folder {directory} does not exist.")
    files: dict[str, Path] = {}
    for path in directory.iterdir():
        if path.suffix.lower() != ".json" or path.name.startswith("."):
            continue
        name = path.name
        stem = name[: -len("_keypoints.json")] if name.endswith("_keypoints.json") else path.stem
        if stem in files:
            raise DataError(
                f"{directory} holds two pose files for frame '{stem}' ({files[stem].name}, "
                f"{name}); keep one."
            )
        files[stem] = path
    if not files:
        raise DataError(
            f"pose folder {directory} holds no OpenPose files (NAME_keypoints.json or NAME.json)."
        )
    return files


def read_pose_folder(directory: str | Path) -> tuple[np.ndarray, list[str]]:
    """Every pose file of a folder in natural order (``frame2`` before ``frame10``).

    Returns:
        The poses ``(T, 18, 3)`` and the frame stems (file names without
        ``_keypoints.json`` or ``.json``).
    """
    files = _pose_files(Path(directory).expanduser())
    stems = sorted(files, key=_natural_key)
    return np.stack([read_openpose_json(files[s]) for s in stems]), stems


def _shown(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def load_pose_video(root: str | Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A user's video as frames and poses: ``root/frames/STEM.png`` + ``root/poses/STEM_keypoints.json``.

    Each frame is centre-cropped to a square and resized to ``size`` (PIL, bicubic);
    its pose is mapped into the same ``size`` x ``size`` pixel frame (keypoints that
    fall outside the crop keep their coordinates outside ``[0, size)``).

    Returns:
        frames ``(T, size, size, 3)`` uint8 RGB and poses ``(T, 18, 3)`` float32, in
        natural order of the stems.

    Raises:
        DataError: a folder is missing or empty, or some frames have no pose file (or
            the reverse); the message lists a few of them.
    """
    root = Path(root).expanduser()
    if size < 1:
        raise ConfigError(f"load_pose_video size must be >= 1, got {size}.")
    frames_dir = root / "frames"
    if not frames_dir.is_dir():
        raise DataError(
            f"pose video {root} has no frames/ sub-folder; expected {root}/frames/NAME.png and "
            f"{root}/poses/NAME_keypoints.json."
        )
    frame_files = {
        p.stem: p
        for p in frames_dir.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    }
    if not frame_files:
        raise DataError(f"{frames_dir} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    pose_files = _pose_files(root / "poses")
    only_frames = sorted(frame_files.keys() - pose_files, key=_natural_key)
    only_poses = sorted(pose_files.keys() - frame_files, key=_natural_key)
    if only_frames or only_poses:
        parts = []
        if only_frames:
            parts.append(f"{len(only_frames)} frames without a pose file: {_shown(only_frames)}")
        if only_poses:
            parts.append(f"{len(only_poses)} pose files without a frame: {_shown(only_poses)}")
        raise DataError(
            f"pose video {root}: frames/NAME.* and poses/NAME_keypoints.json are matched by "
            "NAME; " + "; ".join(parts) + "."
        )
    stems = sorted(frame_files, key=_natural_key)
    frames = np.empty((len(stems), size, size, 3), np.uint8)
    poses = np.zeros((len(stems), NUM_KEYPOINTS, 3), np.float32)
    for i, stem in enumerate(stems):
        try:
            with Image.open(frame_files[stem]) as image:
                rgb = image.convert("RGB")
        except OSError as exc:
            raise DataError(f"cannot read frame {frame_files[stem]}: {exc}") from None
        w, h = rgb.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        crop = rgb.crop((left, top, left + side, top + side))
        frames[i] = np.asarray(crop.resize((size, size), Image.BICUBIC))
        pose = read_openpose_json(pose_files[stem])
        present = pose[:, 2] > 0
        k = size / side
        poses[i, present, 0] = (pose[present, 0] - left + 0.5) * k - 0.5
        poses[i, present, 1] = (pose[present, 1] - top + 0.5) * k - 0.5
        poses[i, present, 2] = pose[present, 2]
    return frames, poses


# -- rendering ---------------------------------------------------------------------------


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


# -- temporal smoothing ------------------------------------------------------------------


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
held-out PSNR, for 0.5 dB on a faster source dance (docs/benchmarks.md). The paper gives
no window."""


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


# -- global pose normalisation -----------------------------------------------------------


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


# -- detector noise and the face crop ------------------------------------------------------


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
