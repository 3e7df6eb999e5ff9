"""Feature extractors by name: the built-in ones, registering a new one, clear errors."""

import pytest
import torch

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.metrics import (
    FEATURE_EXTRACTORS,
    DigitsFeatures,
    FeatureExtractor,
    GenerativeScores,
    InceptionFeatures,
    build_extractor,
    feature_extractor_names,
    get_feature_extractor,
    register_feature_extractor,
)


class Mean(FeatureExtractor):
    """One feature per image: its mean pixel, scaled by ``weights`` (a number here)."""

    name = "mean"
    num_features = 1

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(scale), requires_grad=False)

    @classmethod
    def from_weights(cls, weights=None):
        return cls() if weights is None else cls(float(weights))

    def forward(self, images):
        return images.mean((1, 2, 3))[:, None] * self.scale

    def head(self, features):
        return torch.cat([features, -features], 1)


@pytest.fixture
def mean_registered():
    register_feature_extractor("mean", Mean)
    yield
    del FEATURE_EXTRACTORS["mean"]


def test_the_built_in_extractors_are_registered_by_name():
    assert feature_extractor_names() == ["digits", "inception"]
    assert get_feature_extractor("digits") is DigitsFeatures
    assert get_feature_extractor("inception") is InceptionFeatures
    with pytest.raises(ConfigError, match="unknown feature extractor 'lpips'; use digits or incep"):
        build_extractor("lpips")


def test_build_extractor_passes_weights_to_the_registered_class(tmp_path):
    with pytest.raises(ConfigError, match="takes no weights file"):
        build_extractor("digits", tmp_path / "weights.pt")
    with pytest.raises(ConfigError, match="not found"):
        build_extractor("inception", tmp_path / "missing.pth")


def test_a_registered_extractor_is_built_by_name_and_scores(mean_registered):
    extractor = build_extractor("mean", 2.0)
    assert isinstance(extractor, Mean) and float(extractor.scale) == 2.0
    assert "mean" in feature_extractor_names()
    real = torch.rand(40, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    (fid,) = GenerativeScores(extractor, real, metrics=["fid"])(real + 0.5)
    assert fid.metric == "fid-mean" and fid.value == pytest.approx(1.0, abs=1e-5)  # (2 * 0.5)^2


def test_registering_checks_the_name_and_the_class(mean_registered):
    with pytest.raises(ConfigError, match="already registered"):
        register_feature_extractor("mean", Mean)
    with pytest.raises(ConfigError, match="non-empty word"):
        register_feature_extractor(" spaced", Mean)
    with pytest.raises(ConfigError, match="FeatureExtractor subclass"):
        register_feature_extractor("module", torch.nn.Identity)
    assert "spaced" not in FEATURE_EXTRACTORS and "module" not in FEATURE_EXTRACTORS
