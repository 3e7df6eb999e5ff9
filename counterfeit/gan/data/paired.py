"""Paired image datasets for image-to-image translation (pix2pix, Isola et al., CVPR 2017).

* :class:`PairedImages`: aligned pairs ``(a, b)`` held in memory as uint8, served
  as float [0, 1] batches ``(a, b)`` by :class:`gan.data.InfiniteLoader`
  (through :meth:`PairedImages.get_batch`, a whole batch at a time).
* :func:`edges2digits`: an embedded stand-in for the paper's edges2shoes /
  edges2handbags: the edge map (the paper's edges come from the HED detector
  plus post-processing; here OpenCV's Canny) or the one-pixel stroke
  skeleton (scikit-image) of each real MNIST digit of ``mnist-small``, paired
  with the digit itself. Digits are zero-padded 28 -> 32 px (not resized) before
  the edges are taken, so the U-Net gets a power-of-two size.
* :func:`load_paired_folder`: a user's own pairs, ``ROOT/A/NAME.png`` with
  ``ROOT/B/NAME.png`` (matched by file name without extension; any image type).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from counterfeit.gan.data.embedded import mnist_small
from counterfeit.gan.data.files import IMAGE_SUFFIXES, find_images
from counterfeit.gan.data.tensors import UNLABELED
from counterfeit.gan.errors import ConfigError, DataError

EdgeKind = Literal["canny", "skeleton"]
CANNY_THRESHOLDS = (50, 150)


class PairedImages(Dataset):
    """Aligned image pairs in memory: ``a`` uint8 (N, Ca, H, W), ``b`` uint8 (N, Cb, H, W).

    ``dataset[i]`` is ``(a float (Ca, H, W), b float (Cb, H, W))`` in [0, 1];
    :meth:`get_batch` does the same for an index tensor (what
    :class:`gan.data.InfiniteLoader` calls), so a training batch is a tuple ``(a, b)``.

    Args:
        a, b: uint8 tensors with the same N, H and W; 1 or 3 channels each.
        name: a short name for messages (e.g. ``"edges2digits/train"``).
        labels: optional int64 (N,) labels carried along (e.g. the digit classes).
    """

    def __init__(
        self, a: torch.Tensor, b: torch.Tensor, name: str, labels: torch.Tensor | None = None
    ) -> None:
        for side, images in (("A", a), ("B", b)):
            if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
                raise DataError(f"{name}: {side} images must be a uint8 tensor.")
            if images.ndim != 4 or images.shape[1] not in (1, 3):
                raise DataError(
                    f"{name}: {side} images must be (N, C, H, W) with C = 1 or 3, "
                    f"got {tuple(images.shape)}."
                )
        if a.shape[0] != b.shape[0] or a.shape[2:] != b.shape[2:]:
            raise DataError(
                f"{name}: A and B must hold as many images of the same size, got A "
                f"{tuple(a.shape)} and B {tuple(b.shape)}."
            )
        self.a, self.b, self.name = a.contiguous(), b.contiguous(), name
        self.labels = (
            torch.full((a.shape[0],), UNLABELED, dtype=torch.int64)
            if labels is None
            else torch.as_tensor(labels, dtype=torch.int64)
        )

    def __len__(self) -> int:
        return self.a.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.a[index].float().div_(255.0), self.b[index].float().div_(255.0)

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a, b)``: float32 images in [0, 1] for a tensor of indices."""
        return self.a[indices].float().div_(255.0), self.b[indices].float().div_(255.0)

    @property
    def shape_a(self) -> tuple[int, int, int]:
        return tuple(self.a.shape[1:])  # type: ignore[return-value]

    @property
    def shape_b(self) -> tuple[int, int, int]:
        return tuple(self.b.shape[1:])  # type: ignore[return-value]

    def subset(self, indices: torch.Tensor | np.ndarray, name: str | None = None) -> PairedImages:
        """A new dataset holding only ``indices`` (a copy)."""
        idx = torch.as_tensor(indices, dtype=torch.int64)
        return PairedImages(self.a[idx], self.b[idx], name or self.name, self.labels[idx])

    def take(self, n: int | None, seed: int = 0) -> PairedImages:
        """At most ``n`` pairs, drawn without replacement with a fixed seed."""
        if n is None or n >= len(self):
            return self
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        return self.subset(order[:n])

    def split(self, test_fraction: float, seed: int = 0) -> tuple[PairedImages, PairedImages]:
        """A fixed-seed (train, test) split holding out ``test_fraction`` of the pairs."""
        if not 0 < test_fraction < 1:
            raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}.")
        n_test = max(1, round(len(self) * test_fraction))
        if n_test >= len(self):
            raise DataError(
                f"{self.name}: {len(self)} pairs are too few to hold out {test_fraction:.0%} "
                "for testing and still train."
            )
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        test, train = order[:n_test].sort().values, order[n_test:].sort().values
        return self.subset(train, f"{self.name}/train"), self.subset(test, f"{self.name}/test")


# -- edges2digits -----------------------------------------------------------------------


def digit_edges(digits: np.ndarray, kind: EdgeKind = "canny") -> np.ndarray:
    """Edge maps (N, H, W) uint8 in {0, 255} of grey digits (N, H, W) uint8.

    ``canny``: OpenCV's Canny with thresholds 50 / 150 (the stroke outlines);
    ``skeleton``: the strokes thinned to one pixel (``skimage.morphology.skeletonize``
    of the digit thresholded at 128).
    """
    if kind == "canny":
        import cv2

        return np.stack([cv2.Canny(d, *CANNY_THRESHOLDS) for d in digits]).astype(np.uint8)
    if kind == "skeleton":
        from skimage.morphology import skeletonize

        return np.stack([skeletonize(d >= 128) for d in digits]).astype(np.uint8) * 255
    raise ConfigError(f"unknown edge kind '{kind}'; use canny or skeleton.")


@functools.cache
def _edges2digits(split: str, kind: EdgeKind, pad: int) -> PairedImages:
    digits = mnist_small(split)
    images = F.pad(digits.images, (pad,) * 4) if pad else digits.images
    edges = digit_edges(images[:, 0].numpy(), kind)
    a = torch.from_numpy(edges)[:, None]
    return PairedImages(a, images, f"edges2digits-{kind}/{split}", digits.labels)


def edges2digits(split: str = "train", kind: EdgeKind = "canny", pad: int = 2) -> PairedImages:
    """Edge maps (A) of the embedded real MNIST digits paired with the digits (B), 1 channel.

    Args:
        split: ``train`` (4,000 pairs) or ``test`` (1,000), the fixed ``mnist-small`` split.
        kind: ``canny`` (outlines) or ``skeleton`` (one-pixel strokes); see :func:`digit_edges`.
        pad: zero pixels added on every side before taking edges (2: 28 -> 32 px).
    """
    if pad < 0:
        raise ConfigError(f"edges2digits pad must be >= 0, got {pad}.")
    if kind not in ("canny", "skeleton"):
        raise ConfigError(f"unknown edge kind '{kind}'; use canny or skeleton.")
    return _edges2digits(split, kind, pad)


# -- a user's paired folders ----------------------------------------------------------------


def _images_by_stem(folder: Path, side: str, root: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(
            f"paired folder {root} has no {side}/ sub-folder; expected {root}/A/NAME.png and "
            f"{root}/B/NAME.png with matching names."
        )
    files: dict[str, Path] = {}
    for path in find_images(folder):
        if path.stem in files:
            raise DataError(
                f"{folder} holds two images named '{path.stem}' ({files[path.stem].name}, "
                f"{path.name}); pairs are matched by name, so names must be unique."
            )
        files[path.stem] = path
    if not files:
        raise DataError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    return files


def _read(path: Path, mode: str, size: int) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode).resize((size, size), Image.BICUBIC))
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def load_paired_folder(
    root: str | Path, size: int, channels_a: int = 3, channels_b: int = 3
) -> PairedImages:
    """Pairs from ``root/A`` and ``root/B``, matched by file name (extension ignored).

    Every image is converted to the requested channels (1: grey, 3: RGB) and
    resized to ``size`` x ``size`` (bicubic). Raises :class:`gan.errors.DataError`
    naming the folder when ``A/`` or ``B/`` is missing or empty, and naming the
    files when some names have no partner.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"paired folder {root} does not exist.")
    for c in (channels_a, channels_b):
        if c not in (1, 3):
            raise ConfigError(f"paired folder channels must be 1 or 3, got {c}.")
    a_files = _images_by_stem(root / "A", "A", root)
    b_files = _images_by_stem(root / "B", "B", root)
    only_a, only_b = sorted(a_files.keys() - b_files), sorted(b_files.keys() - a_files)
    if only_a or only_b:
        parts = []
        for side, names in (("A", only_a), ("B", only_b)):
            if names:
                shown = ", ".join(names[:5]) + (
                    f" and {len(names) - 5} more" if len(names) > 5 else ""
                )
                other = "B" if side == "A" else "A"
                parts.append(
                    f"{len(names)} in {root / side} without a partner in {other}/: {shown}"
                )
        raise DataError(
            "paired images are matched by file name (without extension); " + "; ".join(parts) + "."
        )
    names = sorted(a_files)
    mode_a, mode_b = ("L" if channels_a == 1 else "RGB"), ("L" if channels_b == 1 else "RGB")
    a = np.stack([_read(a_files[n], mode_a, size) for n in names])
    b = np.stack([_read(b_files[n], mode_b, size) for n in names])
    a_t = torch.from_numpy(a[:, None] if a.ndim == 3 else a.transpose(0, 3, 1, 2).copy())
    b_t = torch.from_numpy(b[:, None] if b.ndim == 3 else b.transpose(0, 3, 1, 2).copy())
    return PairedImages(a_t.contiguous(), b_t.contiguous(), f"paired:{root.name}")
