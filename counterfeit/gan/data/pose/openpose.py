"""OpenPose files: per-frame JSON (COCO-18 or BODY_25), pose folders and a user's pose video."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from counterfeit.gan.data.files import IMAGE_SUFFIXES
from counterfeit.gan.data.pose.keypoints import (
    BODY25_NAMES,
    BODY25_TO_COCO18,
    NUM_KEYPOINTS,
    check_poses,
)
from counterfeit.gan.errors import ConfigError, DataError


def _natural_key(text: str) -> list[int | str]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


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
