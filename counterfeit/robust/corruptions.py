"""Common corruptions at five severities, built with albumentations.

After Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to
Common Corruptions and Perturbations", ICLR 2019. The severities are their
CIFAR-10-C parameters (32-pixel images, which suit 28-pixel digits), mapped
onto the albumentations transform that performs the same operation.
Deviations from their generation code, where albumentations differs:

* ``shot_noise``: albumentations draws the Poisson noise in linear light
  (after a 2.2 gamma) rather than on the stored pixel values;
* ``brightness`` adds to HSV value, as the paper does, through
  ``HueSaturationValue``; ``contrast`` blends toward the grey-level mean (the
  paper: per-channel means; the same for grey images);
* ``motion_blur``: OpenCV line kernels of 3-11 pixels instead of ImageMagick's
  radius/sigma kernels; ``elastic_transform``: the Simard et al. (2003)
  displacement field with a growing strength and no extra random affine
  (the paper's elastic severities are not monotone);
* ``pixelate`` runs the paper's PIL box-filter resizes inside ``A.Lambda``
  (albumentations' ``Downscale`` rounds sizes so that damage is not monotone
  in severity at 28 pixels);
* fog, frost, snow, spatter, saturate, defocus and glass blur are left out (no
  albumentations equivalent at these image sizes, RGB only, or, for
  ``GlassBlur``, severities that are not monotone and 1 s per 200 images).

Each corruption is applied per image to uint8 pixels with a seeded
albumentations pipeline, so results are reproducible.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image

from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.lazy import lazy_import

A = lazy_import("albumentations")  # loaded when a transform is first built

SEVERITIES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Corruption:
    """A named corruption: ``build(severity, image_size) -> albumentations transform``."""

    name: str
    family: str
    build: Callable[[int, int], A.BasicTransform]
    description: str


def _table(values: tuple) -> Callable[[int], object]:
    return lambda severity: values[severity - 1]


_gauss = _table((0.04, 0.06, 0.08, 0.09, 0.10))
_shot = _table((500, 250, 100, 75, 50))
_impulse = _table((0.01, 0.02, 0.03, 0.05, 0.07))
_blur = _table((0.4, 0.6, 0.7, 0.8, 1.0))
_motion = _table((3, 5, 7, 9, 11))
_zoom = _table((1.06, 1.11, 1.16, 1.21, 1.26))
_brightness = _table((0.05, 0.1, 0.15, 0.2, 0.3))
_contrast = _table((0.75, 0.5, 0.4, 0.3, 0.15))
_elastic = _table((10.0, 20.0, 30.0, 40.0, 50.0))
_pixelate = _table((0.95, 0.9, 0.85, 0.75, 0.65))
_jpeg = _table((80, 65, 58, 50, 40))


def _pixelate_image(image: np.ndarray, factor: float, **params) -> np.ndarray:
    """The paper's pixelate: PIL box-filter resize to ``factor`` of the size and back."""
    height, width = image.shape[:2]
    pil = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image)
    small = pil.resize((int(width * factor), int(height * factor)), Image.BOX)
    return np.asarray(small.resize((width, height), Image.BOX)).reshape(image.shape)


def _elastic_transform(severity: int, size: int) -> A.BasicTransform:
    scale = size / 28  # Simard et al. 2003: sigma 4 and alpha ~34 on 28-pixel MNIST
    return A.ElasticTransform(
        alpha=_elastic(severity) * scale,
        sigma=4.0 * scale,
        border_mode=cv2.BORDER_REFLECT_101,
        p=1,
    )


CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in (
        Corruption(
            "gaussian_noise",
            "noise",
            lambda s, n: A.GaussNoise(std_range=(_gauss(s),) * 2, p=1),
            "additive Gaussian noise, std 0.04-0.10",
        ),
        Corruption(
            "shot_noise",
            "noise",
            lambda s, n: A.ShotNoise(scale_range=(1 / _shot(s),) * 2, p=1),
            "Poisson (photon) noise, 500-50 photons per unit",
        ),
        Corruption(
            "impulse_noise",
            "noise",
            lambda s, n: A.SaltAndPepper(amount=(_impulse(s),) * 2, salt_vs_pepper=(0.5, 0.5), p=1),
            "salt-and-pepper noise on 1-7% of pixels",
        ),
        Corruption(
            "gaussian_blur",
            "blur",
            lambda s, n: A.GaussianBlur(sigma_limit=(_blur(s),) * 2, blur_limit=0, p=1),
            "Gaussian blur, sigma 0.4-1.0",
        ),
        Corruption(
            "motion_blur",
            "blur",
            lambda s, n: A.MotionBlur(blur_limit=(_motion(s),) * 2, allow_shifted=False, p=1),
            "linear motion blur, 3-11 pixel kernels at a random angle",
        ),
        Corruption(
            "zoom_blur",
            "blur",
            lambda s, n: A.ZoomBlur(max_factor=(_zoom(s),) * 2, step_factor=(0.01, 0.01), p=1),
            "mean of centre zooms up to 1.06-1.26x",
        ),
        Corruption(
            "brightness",
            "digital",
            lambda s, n: A.HueSaturationValue(
                hue_shift_limit=0,
                sat_shift_limit=0,
                val_shift_limit=(_brightness(s) * 255,) * 2,
                p=1,
            ),
            "HSV value + 0.05-0.3",
        ),
        Corruption(
            "contrast",
            "digital",
            lambda s, n: A.ColorJitter(
                brightness=(1, 1), contrast=(_contrast(s),) * 2, saturation=(1, 1), hue=0, p=1
            ),
            "contrast scaled to 0.75-0.15 around the mean",
        ),
        Corruption(
            "elastic_transform",
            "digital",
            _elastic_transform,
            "elastic distortion (Simard et al. 2003), sigma 4 px, alpha 10-50 (at 28 px)",
        ),
        Corruption(
            "pixelate",
            "digital",
            lambda s, n: A.Lambda(
                image=functools.partial(_pixelate_image, factor=_pixelate(s)), p=1
            ),
            "box-filter downscale to 95-65% and back",
        ),
        Corruption(
            "jpeg_compression",
            "digital",
            lambda s, n: A.ImageCompression(quality_range=(_jpeg(s),) * 2, p=1),
            "JPEG at quality 80-40",
        ),
    )
}


def corruption_names() -> list[str]:
    """Registered corruption names, in the paper's order (noise, blur, digital)."""
    return list(CORRUPTIONS)


def resolve_corruptions(names: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``"all"`` -> every name, ``None``/``"none"`` -> [], else the validated list."""
    if names is None or names == "none":
        return []
    if names == "all":
        return corruption_names()
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown:
        raise ConfigError(
            f"unknown corruption(s) {', '.join(unknown)}; known: {', '.join(CORRUPTIONS)} "
            "(or 'all', 'none')."
        )
    return list(names)


def corrupt(images: torch.Tensor, name: str, severity: int, seed: int = 0) -> torch.Tensor:
    """Apply corruption ``name`` at ``severity`` (1-5) to float images (N, C, H, W) in [0, 1].

    Pixels are quantised to uint8 for albumentations and returned as float32
    in [0, 1] on the input's device. The same seed gives the same result.
    """
    if name not in CORRUPTIONS:
        resolve_corruptions([name])
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise ConfigError(f"severity must be one of 1-5, got {severity!r}.")
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] not in (1, 3):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataError(f"corrupt expects images (N, C, H, W) with C = 1 or 3, got {shape}.")
    transform = A.Compose([CORRUPTIONS[name].build(severity, images.shape[-1])], seed=seed)
    array = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    array = array.permute(0, 2, 3, 1).numpy()
    out = np.stack([_as_hwc(transform(image=image)["image"]) for image in array])
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255).to(images.device)


def _as_hwc(image: np.ndarray) -> np.ndarray:
    return image[..., None] if image.ndim == 2 else image
