"""The base class of feature extractors: images in [0, 1] to features and class logits."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from counterfeit.gan.errors import DataError


class FeatureExtractor(nn.Module):
    """Maps images in [0, 1] (N, C, H, W) to features (N, num_features); ``head`` maps
    features to class logits (for the Inception Score). Always in eval mode.

    Attributes:
        name: suffix of the score names (``"digits"`` gives ``fid-digits``; ``""`` gives ``fid``).
        num_features: feature width.
        description: what the features are, for reports.
    """

    name: str = ""
    num_features: int = 0
    description: str = ""

    def train(self, mode: bool = True) -> FeatureExtractor:
        return super().train(False)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def from_weights(cls, weights: str | Path | None = None) -> FeatureExtractor:
        """The extractor as :func:`gan.metrics.build_extractor` makes it by its registry name.

        Args:
            weights: a local weights file, or None for the extractor's default.
        """
        raise NotImplementedError

    @torch.no_grad()
    def extract(
        self, images: torch.Tensor, batch_size: int = 500
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, logits) of ``images`` in float64 on the CPU, computed in batches."""
        check_images(images)
        self.eval()
        device = next(self.parameters()).device
        features, logits = [], []
        for chunk in images.split(batch_size):
            f = self(chunk.to(device).float())
            features.append(f.double().cpu())
            logits.append(self.head(f).double().cpu())
        return torch.cat(features), torch.cat(logits)


def check_images(images: torch.Tensor) -> None:
    """Raise :class:`DataError` unless ``images`` is a 4-d (N, C, H, W) tensor."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataError(f"expected images (N, C, H, W) in [0, 1], got {shape}.")
