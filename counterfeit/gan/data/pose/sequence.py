"""A target person's video as consecutive (label, frame) pairs, for pose-to-video training."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from counterfeit.gan.data.pose.face import NO_FACE
from counterfeit.gan.errors import DataError


class PoseFrameSequence(Dataset):
    """A target person's video as consecutive (label, frame) pairs, for temporal training.

    Args:
        labels: uint8 (T, 3, H, W) stick figures (:func:`pose_labels`).
        frames: uint8 (T, 3, H, W) video frames of the target person.
        faces: long (T, 2) face-crop corners (:func:`face_corners`), or None.
        name: used in messages.

    Item ``t`` (``0 <= t < T - 1``) is ``(label_t, label_{t+1}, frame_t, frame_{t+1},
    face_t, face_{t+1})`` with images in [0, 1].
    """

    def __init__(
        self,
        labels: torch.Tensor,
        frames: torch.Tensor,
        faces: torch.Tensor | None = None,
        name: str = "pose-video",
    ) -> None:
        if labels.dtype != torch.uint8 or frames.dtype != torch.uint8:
            raise DataError(f"{name}: labels and frames must be uint8 tensors.")
        if labels.ndim != 4 or frames.ndim != 4 or labels.shape[0] != frames.shape[0]:
            raise DataError(
                f"{name}: labels {tuple(labels.shape)} and frames {tuple(frames.shape)} must be "
                "(T, C, H, W) with the same T."
            )
        if labels.shape[2:] != frames.shape[2:]:
            raise DataError(
                f"{name}: labels are {tuple(labels.shape[2:])} px, frames "
                f"{tuple(frames.shape[2:])} px; they must match."
            )
        if len(frames) < 2:
            raise DataError(
                f"{name}: temporal training needs at least 2 frames, got {len(frames)}."
            )
        if faces is None:
            faces = torch.full((len(frames), 2), NO_FACE, dtype=torch.long)
        self.labels, self.frames, self.faces, self.name = labels, frames, faces, name

    def __len__(self) -> int:
        return len(self.frames) - 1

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, ...]:
        nxt = indices + 1
        return (
            self.labels[indices].float().div_(255.0),
            self.labels[nxt].float().div_(255.0),
            self.frames[indices].float().div_(255.0),
            self.frames[nxt].float().div_(255.0),
            self.faces[indices],
            self.faces[nxt],
        )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(x[0] for x in self.get_batch(torch.tensor([index])))
