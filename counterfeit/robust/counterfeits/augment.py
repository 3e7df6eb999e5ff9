"""The augmentation Wang et al. found essential for a detector that generalises across
generators ("CNN-generated images are surprisingly easy to spot... for now", CVPR 2020,
Sec. 4.2, "Blur+JPEG (0.5)"): each training image is, with probability 0.5, Gaussian-blurred
with sigma ~ U[0, 3], and, with probability 0.5, JPEG-compressed at a quality ~ U{30..100}.
The two are independent; labels are untouched. Built on albumentations.
"""

from __future__ import annotations

import albumentations as A
import numpy as np
import torch

from counterfeit.gan.errors import ConfigError


class BlurJpeg:
    """Wang et al.'s Blur+JPEG augmentation of float images in [0, 1] (N, C, H, W).

    Args:
        probability: of each of the two (0.5 in the paper; 0: no augmentation).
        sigma: the blur's standard-deviation range in pixels ((0, 3)).
        quality: the JPEG quality range ((30, 100)).
        seed: of the random draws (a fixed sequence per instance).
    """

    def __init__(
        self,
        probability: float = 0.5,
        sigma: tuple[float, float] = (0.0, 3.0),
        quality: tuple[int, int] = (30, 100),
        seed: int = 0,
    ) -> None:
        if not 0 <= probability <= 1 or not 1 <= quality[0] <= quality[1] <= 100:
            raise ConfigError(
                f"BlurJpeg needs a probability in [0, 1] and qualities in [1, 100]; got "
                f"{probability}, {quality}."
            )
        self.probability = probability
        self.transform = A.Compose(
            [
                A.GaussianBlur(blur_limit=0, sigma_limit=sigma, p=probability),
                A.ImageCompression(quality_range=quality, p=probability),
            ],
            seed=seed,
        )

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.probability == 0:
            return images
        return apply_per_image(images, self.transform)


def apply_per_image(images: torch.Tensor, transform: A.BasicTransform) -> torch.Tensor:
    """An albumentations ``transform`` applied to each float image in [0, 1] (N, C, H, W), on
    its uint8 pixels; the result on ``images``' device, in the same order."""
    pixels = images.detach().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    out = []
    for array in pixels.permute(0, 2, 3, 1).numpy():
        image = np.ascontiguousarray(array[..., 0] if array.shape[-1] == 1 else array)
        result = transform(image=image)["image"]
        out.append(result[..., None] if result.ndim == 2 else result)
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float().div(255).to(images.device)
