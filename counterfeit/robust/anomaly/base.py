"""The anomaly-detector contract: ``fit(normal)``, ``score(images)``, ``residual_map(images)``.

A detector learns from normal images only (no labels, no anomalies: Schlegl et al.,
IPMI 2017, Sec. 2) and gives each new image a score, higher meaning less like the
normal data. Detectors that rebuild the image (an autoencoder, PCA, a GAN's latent
search) also give a residual map ``|x - x_hat|`` showing where the image differs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self

import torch

from counterfeit.gan.data import ImageTensors, InfiniteLoader
from counterfeit.gan.errors import ConfigError, DataError, ShapeError
from counterfeit.gan.method import TrainingMethod
from counterfeit.gan.train import Trainer, TrainerConfig


def check_images(images: torch.Tensor, what: str, shape: tuple[int, ...] | None = None) -> None:
    """Raise a named error unless ``images`` is a non-empty NCHW float batch in [0, 1]
    (of per-image ``shape`` when given)."""
    if not isinstance(images, torch.Tensor):
        raise DataError(f"{what}: expected a tensor of images, got {type(images).__name__}.")
    if images.ndim != 4:
        raise ShapeError(f"{what}: expected images (N, C, H, W), got shape {tuple(images.shape)}.")
    if len(images) == 0:
        raise DataError(f"{what}: no images.")
    if not images.is_floating_point():
        raise DataError(f"{what}: expected float images in [0, 1], got {images.dtype}.")
    low, high = float(images.min()), float(images.max())
    if low < 0 or high > 1:
        raise DataError(f"{what}: pixel values span [{low:.3g}, {high:.3g}], not [0, 1].")
    if shape is not None and tuple(images.shape[1:]) != tuple(shape):
        raise ShapeError(
            f"{what}: images of shape {tuple(images.shape[1:])}, but the detector was fitted "
            f"on {tuple(shape)}."
        )


def train_on_normal(
    method: TrainingMethod,
    normal: torch.Tensor,
    steps: int,
    batch_size: int,
    seed: int,
    device: str,
    description: str,
) -> TrainingMethod:
    """Train ``method`` on ``normal`` images (float in [0, 1]) with the shared Trainer for
    ``steps`` batches; returned in eval mode."""
    pixels = normal.mul(255).round().to(torch.uint8).cpu()
    loader = InfiniteLoader(ImageTensors(pixels, None, "normal"), batch_size, seed=seed)
    config = TrainerConfig(max_steps=steps, device=device, progress=False, log_every=100)
    Trainer(method, loader, config, description=description).fit()
    return method.eval()


class AnomalyDetector(ABC):
    """Fit on normal images, then score images: higher = more anomalous.

    Subclasses implement :meth:`_fit` and :meth:`_score`, and :meth:`_reconstruct` when
    they rebuild images (for :meth:`residual_map`).
    """

    name = "detector"
    image_shape: tuple[int, ...] | None = None

    def fit(self, normal: torch.Tensor) -> Self:
        """Learn the normal data from ``normal`` images (N, C, H, W) in [0, 1]."""
        check_images(normal, f"{self.name}.fit")
        self.image_shape = tuple(normal.shape[1:])
        self._fit(normal.float())
        return self

    @torch.no_grad()
    def score(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """One anomaly score per image (a float tensor of length N), higher = more anomalous."""
        self._check_fitted(images, "score")
        return torch.cat([self._score(b) for b in images.float().split(batch_size)]).cpu()

    @torch.no_grad()
    def residual_map(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """``|x - x_hat|`` averaged over channels: (N, 1, H, W), where each image differs from
        the detector's rebuild of it."""
        self._check_fitted(images, "residual_map")
        maps = []
        for batch in images.float().split(batch_size):
            rebuilt = self._reconstruct(batch)
            maps.append((batch - rebuilt.to(batch)).abs().mean(1, keepdim=True).cpu())
        return torch.cat(maps)

    def _check_fitted(self, images: torch.Tensor, what: str) -> None:
        if self.image_shape is None:
            raise ConfigError(f"{self.name}.{what}: call fit(normal_images) first.")
        check_images(images, f"{self.name}.{what}", self.image_shape)

    @abstractmethod
    def _fit(self, normal: torch.Tensor) -> None: ...

    @abstractmethod
    def _score(self, images: torch.Tensor) -> torch.Tensor: ...

    def _reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        raise ConfigError(
            f"{self.name} does not rebuild images, so it has no residual map; use a "
            "reconstruction detector (autoencoder, pca, a GAN detector)."
        )
