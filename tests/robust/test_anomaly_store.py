"""Saved anomaly detectors: every detector comes back from its file with the same scores,
threshold and flags; bad files and settings are named (real data: scikit-learn's digits)."""

import pytest
import torch
from sklearn.datasets import load_digits

from counterfeit.gan.errors import CheckpointError, ConfigError
from counterfeit.robust.anomaly import (
    DETECTORS,
    KNNDistance,
    build_detector,
    load_detector,
)

TINY = {
    "pca": {"components": 6},
    "knn": {"k": 3},
    "autoencoder": {"latent_dim": 4, "width": 4, "steps": 3, "batch_size": 16},
    "anogan": {"width": 8, "latent_dim": 8, "steps": 3, "batch_size": 16, "search_steps": 4},
    "f-anogan": {"width": 8, "latent_dim": 8, "gan_steps": 3, "encoder_steps": 3},
    "ganomaly": {"width": 8, "latent_dim": 8, "steps": 3, "batch_size": 16},
}


@pytest.fixture(scope="module")
def zeros_and_ones():
    """(zeros, ones) of the 8x8 digits as (N, 1, 8, 8) images in [0, 1]."""
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).div(16).unsqueeze(1)
    labels = torch.tensor(data.target)
    return images[labels == 0], images[labels == 1]


def test_every_registered_detector_has_a_tiny_setting_here():
    assert set(TINY) == set(DETECTORS)


@pytest.mark.parametrize("name", TINY)
def test_a_saved_detector_scores_flags_and_rebuilds_as_before(name, zeros_and_ones, tmp_path):
    zeros, ones = zeros_and_ones
    detector = build_detector(name, **TINY[name]).fit(zeros[:120])
    threshold = detector.calibrate(zeros[120:150], false_alarm=0.1)
    assert float((detector.score(zeros[120:150]) > threshold).float().mean()) <= 0.1
    images = torch.cat([zeros[150:], ones[:20]])
    path = detector.save(tmp_path / "detector.pt")

    loaded = load_detector(path)
    assert type(loaded) is type(detector) and loaded.config() == detector.config()
    assert loaded.threshold == threshold and loaded.false_alarm == 0.1
    torch.testing.assert_close(loaded.score(images), detector.score(images))
    assert torch.equal(loaded.flag(images), detector.flag(images))
    if name != "knn":
        torch.testing.assert_close(loaded.residual_map(images), detector.residual_map(images))


def test_bad_files_and_settings_are_named(zeros_and_ones, tmp_path):
    zeros, _ = zeros_and_ones
    with pytest.raises(ConfigError, match=r"unknown anomaly detector 'anogann'.*f-anogan"):
        build_detector("anogann")
    with pytest.raises(ConfigError, match=r"f-anogan has no setting 'widht'.*width"):
        build_detector("f-anogan", widht=32)
    with pytest.raises(ConfigError, match="call fit"):
        build_detector("pca").save(tmp_path / "unfitted.pt")
    with pytest.raises(ConfigError, match="call calibrate"):
        build_detector("pca", components=4).fit(zeros).flag(zeros)
    training_checkpoint = tmp_path / "dann.ckpt"
    torch.save({"method_class": "DANN", "method": {}}, training_checkpoint)
    with pytest.raises(CheckpointError, match=r"not a saved anomaly detector.*DANN"):
        load_detector(training_checkpoint)
    with pytest.raises(CheckpointError, match="not found"):
        load_detector(tmp_path / "missing.pt")
    on_features = KNNDistance(k=3, features=torch.nn.Flatten()).fit(zeros)
    with pytest.raises(ConfigError, match="feature extractor cannot be saved"):
        on_features.save(tmp_path / "knn.pt")
