"""``counterfeit transfer``: a source dancer's motion onto the trained target person.

    counterfeit transfer --checkpoint runs/puppet-dance/checkpoints/pose2video.ckpt \\
        --poses SOURCE_DIR --out dance.gif

``SOURCE_DIR`` is the folder layout of :func:`gan.data.pose.load_pose_video`:
``frames/`` (the source video's frames) and ``poses/`` (OpenPose
``NAME_keypoints.json`` per frame, COCO-18 or BODY_25). The poses are smoothed
(the paper's keypoint smoothing), mapped onto the target's ankle line and scale
(global pose normalisation, fitted against the target's training poses that the
recipe saved as ``reference_poses.npy`` beside ``checkpoints/``), drawn as
stick figures and turned into frames recursively. Writes the video (``.gif``
with Pillow, ``.mp4`` where imageio has ffmpeg) and, beside it,
``NAME_side_by_side.gif`` (source | pose | output).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from counterfeit.gan.checkpoint import load_method
from counterfeit.gan.data.pose import (
    DEFAULT_SMOOTHING_WINDOW,
    check_poses,
    face_corners,
    fit_pose_normalizer,
    load_pose_video,
    pose_labels,
    smooth_poses,
)
from counterfeit.gan.errors import DataError, reason
from counterfeit.gan.models.pose2video import Pose2Video
from counterfeit.gan.runtime import resolve_device
from counterfeit.gan.video import side_by_side, to_tensor_frames, write_video

REFERENCE_POSES = "reference_poses.npy"


def load_pose2video(checkpoint: str | Path) -> Pose2Video:
    """Rebuild a trained :class:`Pose2Video` from its checkpoint (``weights_only``), eval mode."""
    return load_method(  # type: ignore[return-value]
        checkpoint,
        {"Pose2Video": Pose2Video},
        "transfer needs a Pose2Video checkpoint "
        "(e.g. runs/puppet-dance/checkpoints/pose2video.ckpt).",
    )


def find_reference_poses(checkpoint: Path, given: str | Path | None) -> np.ndarray | None:
    """The target's training poses: ``given``, else ``reference_poses.npy`` of the run."""
    path = Path(given) if given is not None else checkpoint.parent.parent / REFERENCE_POSES
    if not path.is_file():
        if given is not None:
            raise DataError(f"reference poses not found: {path}")
        return None
    try:
        poses = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(
            f"cannot read reference poses {path} ({reason(exc)}): give a .npy array of "
            "(T, 18, 3) poses, such as a pose2video run's reference_poses.npy."
        ) from None
    if not isinstance(poses, np.ndarray):
        raise DataError(f"reference poses {path} hold several arrays; give one .npy array.")
    return check_poses(poses.astype(np.float32), str(path))


def run_transfer(
    checkpoint: str | Path,
    poses: str | Path,
    out: str | Path,
    *,
    reference_poses: str | Path | None = None,
    smoothing_window: int = DEFAULT_SMOOTHING_WINDOW,
    normalize: bool = True,
    fps: int = 15,
    scale: int = 3,
    device: str = "cpu",
) -> dict:
    """Transfer the motion in ``poses`` (frames/ + poses/) and write the videos.

    Returns what was written and how the poses were processed (also written as
    ``NAME.json`` beside the video).
    """
    checkpoint, out = Path(checkpoint), Path(out)
    reference = find_reference_poses(checkpoint, reference_poses) if normalize else None
    if normalize and reference is None:
        raise DataError(
            f"no {REFERENCE_POSES} beside {checkpoint.parent} to normalise the source's "
            "poses against: pass --reference-poses (the target's training poses, "
            "(T, 18, 3) .npy) or --no-normalize."
        )
    model = load_pose2video(checkpoint).to(resolve_device(device))
    frames, source = load_pose_video(poses, model.image_size)
    processed = smooth_poses(source, smoothing_window)
    normalized = False
    if reference is not None:
        processed = fit_pose_normalizer(processed, reference).apply(processed)
        normalized = True
    labels = pose_labels(processed, model.image_size).float() / 255
    faces = face_corners(processed, model.image_size, model.face_size) if model.use_face else None
    video = model.generate(labels, faces)
    written = [write_video(video, out, fps, scale)]
    strip = side_by_side(to_tensor_frames(frames), labels, video)
    written.append(write_video(strip, out.with_name(f"{out.stem}_side_by_side.gif"), fps, scale))
    meta = {
        "checkpoint": str(checkpoint),
        "poses": str(poses),
        "frames": len(video),
        "image_size": model.image_size,
        "smoothing_window": smoothing_window,
        "normalized": normalized,
        "written": [str(p) for p in written],
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return meta
