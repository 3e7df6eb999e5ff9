"""The anomaly-detector contract: ``fit(normal)``, ``score(images)``, ``residual_map(images)``.

A detector learns from normal images only (no labels, no anomalies: Schlegl et al.,
IPMI 2017, Sec. 2) and gives each new image a score, higher meaning less like the
normal data. Detectors that rebuild the image (an autoencoder, PCA, a GAN's latent
search) also give a residual map ``|x - x_hat|`` showing where the image differs.

A deployed detector also needs a threshold: :meth:`AnomalyDetector.calibrate` sets it on
held-out normal images at a false-alarm rate the user chooses, :meth:`~AnomalyDetector.flag`
applies it, and :meth:`~AnomalyDetector.save` writes the detector, its threshold and its
learned state to one file (read back with :func:`counterfeit.robust.anomaly.load_detector`,
``weights_only``).
"""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch

from counterfeit.gan.checkpoint import load_module_state, save_atomic
from counterfeit.gan.data import ImageTensors, InfiniteLoader
from counterfeit.gan.errors import ConfigError, DataError, ShapeError
from counterfeit.gan.method import TrainingMethod
from counterfeit.gan.train import Trainer, TrainerConfig

DETECTOR_FORMAT = "counterfeit-anomaly-detector"


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


def threshold_at_false_alarm(normal_scores: torch.Tensor, false_alarm: float = 0.05) -> float:
    """The score above which at most ``false_alarm`` of ``normal_scores`` (held-out normal
    images, not the training ones) would be flagged."""
    if not 0 < false_alarm < 1:
        raise ConfigError(f"false_alarm must be in (0, 1), got {false_alarm}.")
    if len(normal_scores) == 0:
        raise DataError("the threshold needs held-out normal images; got none.")
    return float(np.quantile(normal_scores.double().numpy(), 1 - false_alarm, method="higher"))


class AnomalyDetector(ABC):
    """Fit on normal images, then score images: higher = more anomalous.

    Subclasses implement :meth:`_fit` and :meth:`_score`, :meth:`_reconstruct` when they
    rebuild images (for :meth:`residual_map`), and :meth:`_state` / :meth:`_load_state` for
    :meth:`save`. Every constructor argument is kept as an attribute of the same name, so
    :meth:`config` can give them back (except those in ``unsaved``).
    """

    name = "detector"
    reconstructs: ClassVar[bool] = True  # rebuilds images, so has a residual map
    unsaved: ClassVar[tuple[str, ...]] = ()
    image_shape: tuple[int, ...] | None = None
    threshold: float | None = None
    false_alarm: float | None = None

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

    def calibrate(self, normal: torch.Tensor, false_alarm: float = 0.05) -> float:
        """Set :attr:`threshold` so that at most ``false_alarm`` of ``normal`` (held-out
        normal images, not the training ones) score above it; returns it."""
        return self.calibrate_on_scores(self.score(normal), false_alarm)

    def calibrate_on_scores(self, normal_scores: torch.Tensor, false_alarm: float = 0.05) -> float:
        """:meth:`calibrate` from the held-out normal images' scores, when they are at hand."""
        self.threshold = threshold_at_false_alarm(normal_scores, false_alarm)
        self.false_alarm = false_alarm
        return self.threshold

    def flag(self, images: torch.Tensor) -> torch.Tensor:
        """Whether each image scores above :attr:`threshold` (a bool tensor of length N)."""
        if self.threshold is None:
            raise ConfigError(f"{self.name}.flag: call calibrate(normal_val_images) first.")
        return self.score(images) > self.threshold

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, read back from the attributes of the same name."""
        parameters = inspect.signature(type(self).__init__).parameters
        return {k: getattr(self, k) for k in list(parameters)[1:] if k not in self.unsaved}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted detector (settings, image shape, threshold, learned state) to
        ``path`` atomically; :func:`~counterfeit.robust.anomaly.load_detector` reads it."""
        if self.image_shape is None:
            raise ConfigError(f"{self.name}.save: call fit(normal_images) first.")
        record = {
            "format": DETECTOR_FORMAT,
            "detector": self.name,
            "config": self.config(),
            "image_shape": list(self.image_shape),
            "threshold": self.threshold,
            "false_alarm": self.false_alarm,
            "state": self._state(),
        }
        return save_atomic(record, path)

    def restore(self, record: dict[str, Any], source: str) -> Self:
        """Take a saved detector's image shape, threshold and learned state (``record`` as
        :meth:`save` wrote it; ``source`` names it in errors)."""
        self.image_shape = tuple(record["image_shape"])
        self.threshold, self.false_alarm = record["threshold"], record["false_alarm"]
        self._load_state(record["state"], source)
        return self

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

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """The learned state (tensors and plain values) that :meth:`_load_state` takes."""

    @abstractmethod
    def _load_state(self, state: dict[str, Any], source: str) -> None: ...


class NetworkDetector(AnomalyDetector):
    """A detector whose learned state is one network, :attr:`model`, that :meth:`_build`
    makes (untrained) for an image shape; ``device`` is where it runs."""

    model: torch.nn.Module | None = None
    device: str = "cpu"

    @abstractmethod
    def _build(self, image_shape: tuple[int, ...]) -> None:
        """Set :attr:`model` to an untrained network for images of ``image_shape``."""

    def _state(self) -> dict[str, Any]:
        assert self.model is not None
        return {"weights": self.model.state_dict()}

    def _load_state(self, state: dict[str, Any], source: str) -> None:
        assert self.image_shape is not None
        self._build(self.image_shape)
        assert self.model is not None
        load_module_state(self.model, state["weights"], source)
        self.model.to(self.device).eval()
