"""In-memory image datasets with one contract: uint8 NCHW images, int64 labels.

Every built-in domain (rendered digits, MNIST, MNIST-M, USPS, ...) is an
:class:`ImageTensors`. Images are stored as uint8 and converted to float in
[0, 1] one batch at a time, which keeps 60,000 digits in under 150 MB and lets
the loader index a whole batch at once instead of collating single items.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from counterfeit.gan.errors import DataError

UNLABELED = -1
Fit = Literal["resize", "center"]  # how images reach a size: interpolate, or crop / pad


class ImageTensors(Dataset):
    """A domain held in memory: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,).

    Args:
        images: uint8 tensor (N, C, H, W) with C in {1, 3}.
        labels: int64 tensor (N,), or None for an unlabeled domain (stored as -1).
        name: a short name used in messages and plots (e.g. ``"mnist-m/train"``).

    ``dataset[i]`` returns ``(image float32 (C, H, W) in [0, 1], label)``;
    :meth:`get_batch` does the same for a whole index tensor at once.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, name: str) -> None:
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
            raise DataError(f"{name}: images must be a uint8 tensor, got {_describe(images)}.")
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise DataError(
                f"{name}: images must have shape (N, C, H, W) with C = 1 or 3, "
                f"got {tuple(images.shape)}."
            )
        if labels is None:
            labels = torch.full((images.shape[0],), UNLABELED, dtype=torch.int64)
        labels = torch.as_tensor(labels, dtype=torch.int64)
        if labels.shape != (images.shape[0],):
            raise DataError(
                f"{name}: {images.shape[0]} images but labels have shape {tuple(labels.shape)}."
            )
        self.images = images.contiguous()
        self.labels = labels
        self.name = name

    @classmethod
    def from_numpy(cls, images: np.ndarray, labels: np.ndarray | None, name: str) -> ImageTensors:
        """Build from uint8 arrays shaped (N, H, W), (N, H, W, C) or (N, C, H, W)."""
        array = np.asarray(images)
        if array.dtype != np.uint8:
            raise DataError(f"{name}: expected uint8 pixels, got dtype {array.dtype}.")
        if array.ndim == 3:
            array = array[:, None]
        elif array.ndim == 4 and array.shape[-1] in (1, 3) and array.shape[1] not in (1, 3):
            array = array.transpose(0, 3, 1, 2)
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        label_tensor = (
            None if labels is None else torch.from_numpy(np.asarray(labels).astype(np.int64))
        )
        return cls(tensor, label_tensor, name)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index].float().div_(255.0), int(self.labels[index])

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (float32 in [0, 1]) and labels for a tensor of indices."""
        return self.images[indices].float().div_(255.0), self.labels[indices]

    def as_floats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image as float32 in [0, 1], with the labels: the whole set as one batch."""
        return self.images.float().div_(255.0), self.labels

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def has_labels(self) -> bool:
        return bool((self.labels != UNLABELED).any())

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1 if self.has_labels else 0

    def subset(self, indices: torch.Tensor | np.ndarray, name: str | None = None) -> ImageTensors:
        """A new dataset holding only ``indices`` (a copy)."""
        idx = torch.as_tensor(indices, dtype=torch.int64)
        return ImageTensors(self.images[idx], self.labels[idx], name or self.name)

    def take(self, n: int | None, seed: int = 0) -> ImageTensors:
        """At most ``n`` images: a random sample drawn with ``seed`` (all when ``n`` is None or
        at least the size). Every subset (plots, evaluation while training) is drawn so."""
        if n is None or n >= len(self):
            return self
        return self.subset(sample_indices(len(self), n, seed))

    def unlabeled(self) -> ImageTensors:
        """The same images with labels hidden (what an adaptation method may see)."""
        return ImageTensors(self.images, None, self.name)

    def binarized(self, threshold: int) -> ImageTensors:
        """The same images with every value above ``threshold`` set to 255, the rest to 0.

        MNIST-M (Ganin et al. 2016) blends MNIST digits binarised this way at
        ``threshold=0``: every pixel of the digit, anti-aliased edge included, is full.
        """
        images = (self.images > threshold).to(torch.uint8) * 255
        return ImageTensors(images, self.labels, self.name)

    def padded(self, pixels: int) -> ImageTensors:
        """The same images with ``pixels`` zero pixels added on every side."""
        return ImageTensors(F.pad(self.images, (pixels,) * 4), self.labels, self.name)

    def with_shape(self, channels: int, size: int, fit: Fit = "resize") -> ImageTensors:
        """Convert to ``channels`` (1 or 3) and bring to ``size`` x ``size``.

        ``fit="resize"`` interpolates (antialiased bilinear); ``fit="center"`` crops
        or zero-pads around the centre and keeps the pixel scale (see
        :func:`center_fit_uint8`).
        """
        images = convert_channels(self.images, channels, self.name)
        if fit not in get_args(Fit):
            raise DataError(
                f"{self.name}: unknown fit '{fit}'; use one of {', '.join(get_args(Fit))}."
            )
        if images.shape[-2:] != (size, size):
            images = (
                resize_uint8(images, size) if fit == "resize" else center_fit_uint8(images, size)
            )
        return ImageTensors(images, self.labels, self.name)


def sample_indices(size: int, n: int | None, seed: int = 0) -> torch.Tensor:
    """Indices of a random sample of ``n`` of ``size`` items, drawn without replacement with
    ``seed``; all of them in order when ``n`` is None or at least ``size``.

    Never the first ``n``: datasets are often sorted by class (the embedded MNIST splits
    are), and their first images would all be zeros.
    """
    if n is None or n >= size:
        return torch.arange(size)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(size, generator=generator)[:n]


def convert_channels(images: torch.Tensor, channels: int, name: str = "images") -> torch.Tensor:
    """Grey to RGB by repetition, RGB to grey by ITU-R 601 luma."""
    if channels not in (1, 3):
        raise DataError(f"{name}: channels must be 1 or 3, got {channels}.")
    have = images.shape[1]
    if have == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    grey = (images.float() * weights).sum(1, keepdim=True)
    return grey.round().clamp_(0, 255).to(torch.uint8)


def resize_uint8(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 images with antialiased bilinear interpolation, in chunks."""
    out = []
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk].float()
        part = F.interpolate(part, size=(size, size), mode="bilinear", antialias=True)
        out.append(part.round().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out) if out else images.new_zeros((0, images.shape[1], size, size))


def center_fit_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop or zero-pad each side to ``size`` pixels; no interpolation.

    Keeps the objects' pixel scale, which resizing would change: MNIST-M's 32 px
    images are MNIST's 28 px digits padded by 2, so cropping them to 28 matches
    MNIST exactly where resizing shrinks their digits by 12.5%. An odd margin puts
    the extra pixel at the bottom / right.
    """
    grow_h, grow_w = size - images.shape[2], size - images.shape[3]
    # F.pad crops where a margin is negative; int(x / 2) rounds towards zero
    before_h, before_w = int(grow_h / 2), int(grow_w / 2)
    margins = (before_w, grow_w - before_w, before_h, grow_h - before_h)
    return F.pad(images, margins).contiguous()


def _describe(obj: object) -> str:
    if isinstance(obj, torch.Tensor):
        return f"tensor of dtype {obj.dtype} and shape {tuple(obj.shape)}"
    return type(obj).__name__
