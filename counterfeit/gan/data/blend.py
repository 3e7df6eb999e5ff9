"""MNIST-M-style blending: handwritten digits over patches of real photographs.

Ganin et al. (JMLR 2016, Sec. 5.2.1) built MNIST-M by blending MNIST digits
over random patches of BSDS500 colour photos: ``out = |patch - digit|`` per
channel, with the digit binarised. We do the same with the photographs that
ship in scikit-image and scikit-learn, so the target domain exists offline.
The published MNIST-M binarises at grey level > 0 (every inked pixel full;
measured by ``benchmarks/mnistm_geometry.py``). Our default keeps grey > 127,
thinner strokes, on which the embedded recipes were calibrated; at 0 PixelDA and
the CycleGAN judge lost 10 and 6 points (docs/archive/benchmarks-notebook.md).
Every photo choice and crop comes from a seeded generator.
"""

from __future__ import annotations

import numpy as np
import torch

from counterfeit.gan.data.embedded import sample_photos
from counterfeit.gan.data.tensors import ImageTensors, convert_channels
from counterfeit.gan.errors import DataError

DIGIT_THRESHOLD = 127  # grey levels above it are digit; MNIST-M's own threshold is 0


def blend_with_photos(
    digits: ImageTensors,
    seed: int = 0,
    photos: tuple[np.ndarray, ...] | None = None,
    threshold: int = DIGIT_THRESHOLD,
    name: str | None = None,
) -> ImageTensors:
    """Blend each digit over a random crop of a random photo (Ganin et al. 2016).

    Args:
        digits: grey (or RGB, converted to grey) digit images, white on black.
        seed: chooses the photo and crop for each digit.
        photos: RGB uint8 photos (H, W, 3), larger than the digits; default
            :func:`gan.data.embedded.sample_photos`.
        threshold: grey level above which a pixel counts as digit (binarisation);
            0 is MNIST-M's (anti-aliased edges count in full).

    Returns:
        RGB :class:`ImageTensors` with the digits' labels.
    """
    photos = photos if photos is not None else sample_photos()
    _, h, w = digits.shape
    for i, photo in enumerate(photos):
        if photo.ndim != 3 or photo.shape[2] != 3 or photo.shape[0] <= h or photo.shape[1] <= w:
            raise DataError(
                f"photo {i} has shape {photo.shape}; need RGB photos larger than {h}x{w}."
            )
    grey = convert_channels(digits.images, 1, digits.name)[:, 0].numpy()
    mask = (grey > threshold).astype(np.int16) * 255
    rng = np.random.default_rng(seed)
    out = np.empty((len(grey), h, w, 3), np.uint8)
    for i in range(len(grey)):
        photo = photos[int(rng.integers(len(photos)))]
        top = int(rng.integers(photo.shape[0] - h))
        left = int(rng.integers(photo.shape[1] - w))
        patch = photo[top : top + h, left : left + w].astype(np.int16)
        out[i] = np.abs(patch - mask[i, :, :, None]).astype(np.uint8)
    images = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
    return ImageTensors(images, digits.labels.clone(), name or f"{digits.name}+photos")
