"""The detectors a GAN detector must beat: PCA reconstruction and k-nearest-neighbour distance.

Both are the classical foils of the GAN anomaly-detection papers: f-AnoGAN (Schlegl et
al., MedIA 2019, Sec. 3.3) compares with a PCA-style reconstruction and with distances in
an image or feature space; Ruff et al. (ICML 2018, Deep SVDD, Table 1) report both on the
MNIST one-class protocol. The convolutional autoencoder, the lectures' foil, is in
:mod:`counterfeit.robust.anomaly.autoencoder`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.runtime import module_device
from counterfeit.robust.anomaly.base import AnomalyDetector


def _flat(images: torch.Tensor) -> np.ndarray:
    return images.reshape(len(images), -1).double().cpu().numpy()


class PCAReconstruction(AnomalyDetector):
    """Score = mean squared error of the image rebuilt from its first principal components.

    Args:
        components: how many components (an int), or the fraction of the normal data's
            variance to keep (a float in (0, 1)).
    """

    name = "pca"

    def __init__(self, components: int | float = 0.9) -> None:
        if not (isinstance(components, int) and components >= 1) and not (0 < components < 1):
            raise ConfigError(
                f"pca: components must be an int >= 1 or a variance fraction in (0, 1), "
                f"got {components!r}."
            )
        self.components = components
        self.mean: torch.Tensor | None = None  # (pixels,) float64
        self.basis: torch.Tensor | None = None  # (components, pixels) float64, orthonormal rows

    def _fit(self, normal: torch.Tensor) -> None:
        n_features = normal[0].numel()
        if isinstance(self.components, int) and self.components > min(len(normal), n_features):
            raise ConfigError(
                f"pca: {self.components} components from {len(normal)} images of "
                f"{n_features} pixels; use at most {min(len(normal), n_features)}."
            )
        pca = PCA(n_components=self.components, svd_solver="full").fit(_flat(normal))
        self.mean, self.basis = torch.from_numpy(pca.mean_), torch.from_numpy(pca.components_)

    def _reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        assert self.mean is not None and self.basis is not None
        centred = torch.from_numpy(_flat(images)) - self.mean
        rebuilt = centred @ self.basis.T @ self.basis + self.mean
        return rebuilt.float().reshape(images.shape).clamp(0, 1)

    def _score(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self._reconstruct(images)).pow(2).flatten(1).mean(1)

    def _state(self) -> dict[str, Any]:
        return {"mean": self.mean, "basis": self.basis}

    def _load_state(self, state: dict[str, Any], source: str) -> None:
        self.mean, self.basis = state["mean"], state["basis"]


class KNNDistance(AnomalyDetector):
    """Score = mean Euclidean distance to the ``k`` nearest normal training images, on pixels
    or on the features of any given extractor (``features(images) -> (N, D)``).

    Args:
        k: neighbours averaged.
        features: a module mapping images to feature vectors (e.g. a trained classifier's
            penultimate layer); ``None`` compares pixels.
    """

    name = "knn"
    reconstructs = False
    unsaved = ("features",)

    def __init__(self, k: int = 5, features: nn.Module | None = None) -> None:
        if k < 1:
            raise ConfigError(f"knn: k must be >= 1, got {k}.")
        self.k = k
        self.features = features
        self.bank: np.ndarray | None = None  # the normal images' embeddings
        self.index: NearestNeighbors | None = None

    @torch.no_grad()
    def _embed(self, images: torch.Tensor) -> np.ndarray:
        if self.features is None:
            return _flat(images)
        device = module_device(self.features)
        self.features.eval()
        return _flat(self.features(images.to(device)).flatten(1))

    def _fit(self, normal: torch.Tensor) -> None:
        if len(normal) < self.k:
            raise ConfigError(f"knn: k={self.k} neighbours, but only {len(normal)} normal images.")
        self._index(np.concatenate([self._embed(b) for b in normal.split(256)]))

    def _index(self, bank: np.ndarray) -> None:
        self.bank = bank
        self.index = NearestNeighbors(n_neighbors=self.k).fit(bank)

    def _score(self, images: torch.Tensor) -> torch.Tensor:
        assert self.index is not None
        distances, _ = self.index.kneighbors(self._embed(images))
        return torch.from_numpy(distances.mean(1)).float()

    def _state(self) -> dict[str, Any]:
        if self.features is not None:
            raise ConfigError(
                "knn: a detector on a feature extractor cannot be saved (the extractor is "
                "not part of the file); save a knn on pixels, or refit with the extractor."
            )
        assert self.bank is not None
        return {"bank": torch.from_numpy(self.bank)}

    def _load_state(self, state: dict[str, Any], source: str) -> None:
        self._index(state["bank"].numpy())
