"""Photographs for super-resolution, from wheels only: crops for training, whole photos for test.

SRGAN (Ledig et al., CVPR 2017) trains on 350k ImageNet crops and tests on Set5,
Set14 and BSD100; none of those ship offline. This module uses the colour and
grey photographs bundled *inside* the scikit-image wheel (``skimage/data/*``:
no pooch download) and the two of scikit-learn
(:func:`sklearn.datasets.load_sample_images`):

* training (:data:`TRAIN_PHOTOS`): chelsea, rocket, the left motorcycle view,
  hubble_deep_field and immunohistochemistry from scikit-image, china and flower
  from scikit-learn, and the grey camera, brick, grass, gravel and coins photos
  (replicated to RGB) for texture;
* held out for test (:data:`TEST_PHOTOS`): astronaut and coffee, never cropped for
  training.

Low-resolution images are made the paper's way, by bicubic down-sampling by the
scale factor: here :func:`downsample`, torch's bicubic kernel (Keys, a = -0.75)
with ``antialias=True`` (the kernel widened by the factor, as MATLAB's
``imresize`` does; MATLAB uses a = -0.5), then quantised to 8 bits as a saved
low-resolution image would be. :func:`bicubic_upsample` is the bicubic baseline
(torch's bicubic, no antialiasing needed when enlarging), clamped to [0, 1].
Everything is float in [0, 1], NCHW.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import ConfigError, DataError

TRAIN_PHOTOS: tuple[str, ...] = (
    "chelsea",
    "rocket",
    "motorcycle",
    "hubble_deep_field",
    "immunohistochemistry",
    "china",
    "flower",
    "camera",
    "brick",
    "grass",
    "gravel",
    "coins",
)
TEST_PHOTOS: tuple[str, ...] = ("astronaut", "coffee")
_SKLEARN = {"china": "china.jpg", "flower": "flower.jpg"}
_SKIMAGE = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "camera",
    "brick",
    "grass",
    "gravel",
    "coins",
    "moon",
    "colorwheel",
    "retina",
)
PHOTO_NAMES: tuple[str, ...] = (*_SKIMAGE, "motorcycle", *_SKLEARN)


def load_photo(name: str) -> np.ndarray:
    """One bundled photo as (H, W, 3) uint8 (grey photos replicated to three channels).

    Raises:
        ConfigError: ``name`` is not one of :data:`PHOTO_NAMES`.
    """
    if name in _SKLEARN:
        from sklearn.datasets import load_sample_image

        image = np.asarray(load_sample_image(_SKLEARN[name]))
    elif name == "motorcycle":
        import skimage.data
        import skimage.io

        image = skimage.io.imread(Path(skimage.data.__file__).parent / "motorcycle_left.png")
    elif name in _SKIMAGE:
        import skimage.data

        image = np.asarray(getattr(skimage.data, name)())
    else:
        raise ConfigError(
            f"unknown photo '{name}'; the bundled photos are {', '.join(PHOTO_NAMES)}."
        )
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.array(image[..., :3], dtype=np.uint8, order="C", copy=True)


def photo_tensor(name: str, multiple: int = 1) -> torch.Tensor:
    """A photo as a (1, 3, H, W) float tensor in [0, 1], cropped so H and W divide by ``multiple``."""
    image = torch.from_numpy(load_photo(name)).permute(2, 0, 1)[None].float() / 255
    h, w = image.shape[-2:]
    return image[..., : h - h % multiple, : w - w % multiple].contiguous()


def photo_crops(
    names: Sequence[str], size: int, stride: int | None = None, name: str = "photo-crops"
) -> ImageTensors:
    """Every ``size`` x ``size`` crop on a grid of step ``stride`` (default size // 2) of the photos.

    Returned as uint8 :class:`ImageTensors` (unlabelled), so an :class:`InfiniteLoader`
    shuffles and resumes them; pair with :func:`random_flips` for augmentation.

    Raises:
        ConfigError: a photo is held out for test, or none is given.
        DataError: a photo is smaller than one crop.
    """
    if not names:
        raise ConfigError("photo_crops needs at least one photo name.")
    held_out = sorted(set(names) & set(TEST_PHOTOS))
    if held_out:
        raise ConfigError(
            f"{', '.join(held_out)} {'is' if len(held_out) == 1 else 'are'} held out for test "
            f"({', '.join(TEST_PHOTOS)}); choose training photos from the others."
        )
    step = stride or max(1, size // 2)
    crops = []
    for photo_name in names:
        image = torch.from_numpy(load_photo(photo_name)).permute(2, 0, 1)
        h, w = image.shape[-2:]
        if h < size or w < size:
            raise DataError(f"photo '{photo_name}' ({h}x{w}) is smaller than one {size} px crop.")
        patches = image.unfold(1, size, step).unfold(2, size, step)  # 3, nh, nw, size, size
        crops.append(patches.permute(1, 2, 0, 3, 4).reshape(-1, 3, size, size))
    images = torch.cat(crops).contiguous()
    return ImageTensors(images, None, name)


def random_flips(
    batch: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch transform: each image flipped left-right, top-bottom and transposed at random.

    The eight symmetries of the square; an :class:`InfiniteLoader` seeds ``generator`` so a
    resumed run draws the same ones.
    """
    images, labels = batch
    n = images.shape[0]
    draws = torch.rand(n, 3, generator=generator) < 0.5
    out = []
    for i in range(n):
        x = images[i]
        if draws[i, 0]:
            x = x.flip(-1)
        if draws[i, 1]:
            x = x.flip(-2)
        if draws[i, 2]:
            x = x.transpose(-1, -2)
        out.append(x)
    return torch.stack(out), labels


def check_images(images: torch.Tensor, what: str = "images", min_size: int = 1) -> None:
    """Raise :class:`DataError` unless ``images`` is (N, 3, H, W) float with H, W >= min_size."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise DataError(
            f"{what} must be RGB images of shape (N, 3, H, W); got shape {tuple(images.shape)}. "
            "Convert grey or RGBA images to RGB first."
        )
    if not images.is_floating_point():
        raise DataError(f"{what} must be float tensors in [0, 1]; got {images.dtype}.")
    if min(images.shape[-2:]) < min_size:
        raise DataError(
            f"{what} are {images.shape[-2]}x{images.shape[-1]} px; at least "
            f"{min_size}x{min_size} is needed."
        )


def downsample(hr: torch.Tensor, scale: int = 4, quantize: bool = True) -> torch.Tensor:
    """Bicubic down-sampling by ``scale`` (antialiased), the paper's degradation.

    ``hr`` (N, 3, H, W) in [0, 1] with H, W divisible by ``scale``; the result is clamped
    to [0, 1] and, with ``quantize``, rounded to 8 bits.
    """
    check_images(hr, "high-resolution images", scale)
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise DataError(f"high-resolution images of {h}x{w} px do not divide by the scale {scale}.")
    lr = F.interpolate(
        hr, size=(h // scale, w // scale), mode="bicubic", align_corners=False, antialias=True
    ).clamp(0, 1)
    return (lr * 255).round() / 255 if quantize else lr


def bicubic_upsample(lr: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """Bicubic up-sampling by ``scale``, clamped to [0, 1]: the baseline every table shows."""
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
