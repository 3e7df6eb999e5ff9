"""Detectors of generated images: the spectrum against a hand FFT, the Blur+JPEG augmentation,
a detector that learns a real-vs-blurred toy, the threshold chosen on validation data, the
degradations, the generalisation matrix, and a PGD counterfeiter that slips past."""

import numpy as np
import pytest
import torch

from counterfeit.gan import Trainer, TrainerConfig
from counterfeit.gan.data import InfiniteLoader
from counterfeit.gan.data.embedded import mnist_small
from counterfeit.gan.errors import ConfigError, DataError, ShapeError
from counterfeit.robust.attacks import pgd
from counterfeit.robust.counterfeits import (
    FAKE,
    BlurJpeg,
    CounterfeitDetection,
    build_detector_net,
    choose_threshold,
    degrade,
    detection_metrics,
    fake_probability,
    generalisation_matrix,
    log_spectrum,
    real_vs_fake,
)


def test_log_spectrum_equals_a_hand_fft():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    by_hand = np.log(np.abs(np.fft.fftshift(np.fft.fft2(x.numpy()), axes=(-2, -1))) + 1e-4)
    torch.testing.assert_close(log_spectrum(x), torch.from_numpy(by_hand).float())
    assert float(log_spectrum(torch.ones(1, 1, 8, 8))[0, 0, 4, 4]) == pytest.approx(np.log(64))
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        log_spectrum(torch.rand(8, 8))


def test_blur_jpeg_keeps_each_image_in_place_and_its_label():
    digits = mnist_small("test").take(16, seed=0)
    x, labels = digits.get_batch(torch.arange(16))
    out = BlurJpeg(probability=1.0, seed=0)(x)
    assert out.shape == x.shape and (out - x).abs().mean() > 0.01  # every image changed...
    a, b = out.flatten(1), x.flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    correlation = (a / a.norm(dim=1, keepdim=True)) @ (b / b.norm(dim=1, keepdim=True)).T
    assert torch.equal(correlation.argmax(1), torch.arange(16))  # ...but stays most like its own
    assert torch.equal(digits.get_batch(torch.arange(16))[1], labels)
    torch.testing.assert_close(BlurJpeg(probability=0.0)(x), x)
    with pytest.raises(ConfigError, match="qualities in"):
        BlurJpeg(quality=(0, 100))


def _toy(n: int, seed: int):
    """Real digits against the same kind of digits blurred (sigma 1.5): a fake that a
    spectrum or a CNN can tell by its missing high frequencies."""
    real = mnist_small("train").take(2 * n, seed=seed)
    images = real.get_batch(torch.arange(2 * n))[0]
    return real.subset(torch.arange(n)), degrade(images[n:], "blur", 1.5, seed=seed)


@pytest.mark.parametrize("kind", ["cnn", "spectrum"])
def test_a_detector_learns_real_against_blurred_digits(kind):
    torch.manual_seed(0)
    real, fake = _toy(400, seed=0)
    data = InfiniteLoader(real_vs_fake(real, fake), 32, seed=0)
    detector = CounterfeitDetection(kind, 1, 28, lr=1e-3, augment=0.0)
    config = TrainerConfig(max_steps=60, progress=False, device="cpu")
    Trainer(detector, data, config).fit()
    test_real, test_fake = _toy(200, seed=1)
    real_images = test_real.get_batch(torch.arange(200))[0]
    val_real, val_fake = _toy(100, seed=2)
    threshold = choose_threshold(
        fake_probability(detector.net, val_real.get_batch(torch.arange(100))[0]),
        fake_probability(detector.net, val_fake),
    )
    metrics = detection_metrics(detector.net, real_images, test_fake, threshold)
    assert metrics["auroc"] > 0.9 and metrics["accuracy"] > 0.8, metrics


def test_choose_threshold_maximises_validation_accuracy():
    real, fake = torch.tensor([0.1, 0.2, 0.35, 0.6]), torch.tensor([0.3, 0.7, 0.8, 0.9])
    threshold = choose_threshold(real, fake)
    assert threshold == pytest.approx(0.6)  # real <= 0.6: all four; fake above: three of four
    # every threshold in [0.1, 0.9) separates these; the lowest is taken
    assert choose_threshold(torch.tensor([0.1]), torch.tensor([0.9])) == pytest.approx(0.1)


def test_degradations_grow_with_their_level():
    x = mnist_small("test").take(8, seed=0).get_batch(torch.arange(8))[0]
    error = {
        (kind, level): float((degrade(x, kind, level) - x).abs().mean())
        for kind, level in [("jpeg", 95), ("jpeg", 20), ("blur", 0.5), ("blur", 2.0)]
    }
    assert error[("jpeg", 95)] < error[("jpeg", 20)]
    assert error[("blur", 0.5)] < error[("blur", 2.0)]
    torch.testing.assert_close(degrade(x, "resize", 1.0), x, atol=1e-5, rtol=0)
    assert float((degrade(x, "resize", 0.5) - x).abs().mean()) > 0.02
    with pytest.raises(ConfigError, match="unknown degradation"):
        degrade(x, "sharpen", 1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"\(0, 1\]"):
        degrade(x, "resize", 2.0)


def test_generalisation_matrix_and_a_counterfeiter_that_slips_past():
    torch.manual_seed(0)
    real, fake = _toy(400, seed=0)
    detector = CounterfeitDetection("cnn", 1, 28, lr=1e-3, augment=0.0)
    data = InfiniteLoader(real_vs_fake(real, fake), 32, seed=0)
    Trainer(detector, data, TrainerConfig(max_steps=60, progress=False, device="cpu")).fit()
    test_real, blurred = _toy(150, seed=1)
    real_images = test_real.get_batch(torch.arange(150))[0]
    fakes = {"blur": blurred, "same": real_images.flip(0)}  # the second: real images again
    matrix = generalisation_matrix({"blur": (detector.net, 0.5)}, real_images, fakes)
    assert matrix["blur"]["blur"]["auroc"] > 0.9
    assert 0.3 < matrix["blur"]["same"]["auroc"] < 0.7  # cannot tell real from real
    net = detector.net.eval()
    labels = torch.full((150,), FAKE)
    attacked = pgd(net, blurred, labels, eps=0.2, steps=20)
    before = detection_metrics(net, real_images, blurred)["fake_accuracy"]
    after = detection_metrics(net, real_images, attacked)["fake_accuracy"]
    assert after < before - 0.3, (before, after)  # the counterfeiter passes the police


def test_clear_errors():
    real = mnist_small("test").take(10, seed=0)
    with pytest.raises(DataError, match=r"\(1, 28, 28\).*\(3, 28, 28\)"):
        real_vs_fake(real, torch.rand(10, 3, 28, 28))
    with pytest.raises(ConfigError, match="unknown detector 'vit'"):
        build_detector_net("vit", 1, 28)
    with pytest.raises(ShapeError, match=r"shape \(1, 28, 28\)"):
        build_detector_net("cnn", 1, 28)(torch.rand(2, 1, 32, 32))
