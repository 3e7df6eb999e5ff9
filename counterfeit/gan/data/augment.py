"""Training-time augmentation with albumentations, applied per image to whole batches.

:class:`Augment` is a batch transform for :class:`gan.data.InfiniteLoader`:
the loader hands it a generator seeded from ``(seed, epoch, position)``, which
seeds albumentations, so a resumed run augments exactly like an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.lazy import lazy_import

A = lazy_import("albumentations")  # loaded when a transform is first built


def _light() -> A.Compose:
    return A.Compose(
        [
            A.Affine(scale=(0.9, 1.1), rotate=(-10, 10), translate_percent=(-0.06, 0.06), p=0.7),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
        ]
    )


def _strong() -> A.Compose:
    return A.Compose(
        [
            A.Affine(
                scale=(0.85, 1.15),
                rotate=(-15, 15),
                shear=(-10, 10),
                translate_percent=(-0.08, 0.08),
                p=0.8,
            ),
            A.ElasticTransform(alpha=20, sigma=4, p=0.3),
            A.RandomBrightnessContrast(brightness_limit=0.3, contrast_limit=0.3, p=0.6),
            A.HueSaturationValue(p=0.3),
            A.GaussianBlur(blur_limit=(3, 3), p=0.2),
            A.GaussNoise(std_range=(0.01, 0.05), p=0.3),
        ]
    )


PRESETS: dict[str, Callable[[], A.Compose]] = {"light": _light, "strong": _strong}


class Augment:
    """Apply an albumentations pipeline to each image of an ``(images, labels)`` batch.

    Args:
        transform: an ``A.Compose``, or a preset name (``"light"``, ``"strong"``).
    """

    def __init__(self, transform: A.Compose | str) -> None:
        if isinstance(transform, str):
            if transform not in PRESETS:
                raise ConfigError(
                    f"unknown augmentation preset '{transform}'; choose one of {', '.join(PRESETS)}."
                )
            transform = PRESETS[transform]()
        self.transform = transform

    def __call__(
        self, batch: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = batch
        self.transform.set_random_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
        array = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        out = np.stack([self.transform(image=image)["image"] for image in array])
        if out.ndim == 3:
            out = out[..., None]
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255), labels
