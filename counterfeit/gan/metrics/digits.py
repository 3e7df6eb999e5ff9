"""The FID-digits feature extractor: a digit classifier's 128-d penultimate features.

The classifier (:class:`~gan.metrics.digits_net.DigitsClassifier`) is trained on the
embedded real MNIST digits and cached on disk (:mod:`gan.metrics.cache`). Its scores are
named ``fid-digits``, ``kid-digits`` and ``is-digits`` ("FID-digits"...): they measure
digits in this classifier's feature space and are **not** comparable with Inception FIDs
from papers.
"""

from __future__ import annotations

from pathlib import Path

import torch

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.metrics.base import FeatureExtractor
from counterfeit.gan.metrics.cache import load_digits_classifier
from counterfeit.gan.metrics.digits_net import DigitsClassifier, to_digit_input


class DigitsFeatures(FeatureExtractor):
    """The digits classifier's 128-d penultimate features (``fid-digits`` etc.).

    Args:
        classifier: a trained :class:`DigitsClassifier`; default the cached one
            (:func:`load_digits_classifier`, trained on first use).
        accuracy: its test accuracy, for the description.
    """

    name = "digits"

    def __init__(self, classifier: DigitsClassifier | None = None, accuracy: float | None = None):
        super().__init__()
        if classifier is None:
            classifier, accuracy = load_digits_classifier()
        self.classifier = classifier
        self.num_features = self.classifier.output.in_features
        self.eval()
        acc = f", {accuracy:.3f} test accuracy" if accuracy is not None else ""
        self.description = (
            f"digits classifier (small CNN trained on embedded MNIST{acc}), "
            f"{self.num_features}-d penultimate features"
        )

    @classmethod
    def from_weights(cls, weights: str | Path | None = None) -> DigitsFeatures:
        """The cached classifier's features; it trains its own, so ``weights`` must be None."""
        if weights is not None:
            raise ConfigError("the digits extractor takes no weights file; it trains its own.")
        return cls()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(to_digit_input(images))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier.output(features)
