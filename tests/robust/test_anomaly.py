"""Anomaly detectors: the contract, the baselines and the protocols (real data: scikit-learn's
8x8 handwritten digits)."""

from typing import ClassVar

import pytest
import torch
from sklearn.datasets import load_digits

from counterfeit.gan.errors import ConfigError, DataError, ShapeError
from counterfeit.robust.anomaly import (
    AnoGAN,
    AnomalyDetector,
    AutoencoderDetector,
    FAnoGAN,
    GANomaly,
    IziEncoder,
    KNNDistance,
    PCAReconstruction,
    detection_scores,
    evaluate_protocol,
    roc_figure,
    score_histogram_figure,
    threshold_at_false_alarm,
    top_anomalies_figure,
)
from counterfeit.robust.anomaly.anogan import pad_to

pytestmark = pytest.mark.slow  # its file runs first: see conftest


@pytest.fixture(scope="module")
def digits():
    """(train, test) as (images (N, 1, 8, 8) in [0, 1], labels), split in half."""
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).div(16).unsqueeze(1)
    labels = torch.tensor(data.target)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    train, test = order[: len(order) // 2], order[len(order) // 2 :]
    return (images[train], labels[train]), (images[test], labels[test])


DETECTORS = {
    "pca": lambda: PCAReconstruction(components=8),
    "knn": lambda: KNNDistance(k=3),
    "autoencoder": lambda: AutoencoderDetector(latent_dim=8, width=8, steps=150, batch_size=32),
}


@pytest.mark.parametrize("name", DETECTORS)
def test_each_detector_tells_an_unseen_digit_from_the_one_it_learned(name, digits):
    (x_train, y_train), (x_test, y_test) = digits
    detector = DETECTORS[name]().fit(x_train[y_train == 0])
    scores = detector.score(x_test)
    auroc = detection_scores(scores[y_test == 0], scores[y_test == 1])["auroc"]
    assert auroc > 0.85, f"{name}: AUROC {auroc:.3f} for 0 (normal) vs 1"


def test_auroc_and_auprc_follow_the_ranking():
    normal, anomalies = torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.4, 0.5])
    assert detection_scores(normal, anomalies) == {"auroc": 1.0, "auprc": 1.0}
    assert detection_scores(anomalies, normal)["auroc"] == 0.0
    mixed = detection_scores(torch.tensor([0.1, 0.4]), torch.tensor([0.2, 0.5]))
    assert mixed["auroc"] == pytest.approx(0.75)  # 3 of the 4 pairs ranked right


def test_the_threshold_flags_the_chosen_share_of_normal_images():
    normal = torch.arange(100, dtype=torch.float32)
    threshold = threshold_at_false_alarm(normal, 0.05)
    assert float((normal > threshold).float().mean()) == pytest.approx(0.05, abs=0.011)
    with pytest.raises(ConfigError, match="false_alarm"):
        threshold_at_false_alarm(normal, 1.5)


class _Recorder(KNNDistance):
    """kNN that keeps every batch ``fit`` received."""

    fitted: ClassVar[list[torch.Tensor]] = []

    def _fit(self, normal):
        _Recorder.fitted.append(normal.clone())
        super()._fit(normal)


@pytest.mark.parametrize("protocol", ["one-class", "leave-one-out"])
def test_fit_sees_only_the_rounds_normal_training_images(protocol, digits):
    (x_train, y_train), test = digits
    _Recorder.fitted = []
    report = evaluate_protocol(lambda: _Recorder(k=3), (x_train, y_train), test, protocol, [2, 7])
    assert [r.target for r in report.rounds] == [2, 7]
    for target, fitted in zip((2, 7), _Recorder.fitted, strict=True):
        # each fitted image is a training image of a normal class for that round
        match = (fitted.flatten(1)[:, None] == x_train.flatten(1)[None]).all(-1)
        rows = match.float().argmax(1)
        assert match.any(1).all()
        normal = y_train[rows] == target if protocol == "one-class" else y_train[rows] != target
        assert normal.all()
    assert all(r.auroc > 0.7 for r in report.rounds), report.to_dict()


def test_the_threshold_does_not_depend_on_the_test_anomalies(digits):
    (x_train, y_train), (x_test, y_test) = digits
    keep = (y_test == 0) | (y_test == 5)
    few = evaluate_protocol(
        lambda: KNNDistance(k=3), (x_train, y_train), (x_test[keep], y_test[keep]), classes=[0]
    )
    every = evaluate_protocol(
        lambda: KNNDistance(k=3), (x_train, y_train), (x_test, y_test), classes=[0]
    )
    assert few.rounds[0].threshold == every.rounds[0].threshold
    assert few.rounds[0].false_alarm_rate == every.rounds[0].false_alarm_rate
    assert few.rounds[0].n_anomaly_test < every.rounds[0].n_anomaly_test


def test_the_residual_map_lights_up_where_the_image_was_changed(digits):
    (x_train, y_train), _ = digits
    zeros = x_train[y_train == 0]
    detector = PCAReconstruction(components=8).fit(zeros[10:])
    changed = zeros[:10].clone()
    changed[:, :, 3:5, 3:5] = 1.0  # a bright blob in the hole of the zero
    residual = detector.residual_map(changed)
    assert residual.shape == (10, 1, 8, 8)
    inside = residual[:, :, 3:5, 3:5].mean()
    outside = residual.sum((2, 3)).sub(residual[:, :, 3:5, 3:5].sum((2, 3))).mean() / 60
    assert inside > 3 * outside
    assert (detector.score(changed) > detector.score(zeros[:10])).float().mean() >= 0.9
    with pytest.raises(ConfigError, match="no residual map"):
        KNNDistance(k=3).fit(zeros).residual_map(changed)


def test_bad_input_is_named(digits):
    (x_train, _), _ = digits
    with pytest.raises(DataError, match="no images"):
        PCAReconstruction().fit(x_train[:0])
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        PCAReconstruction().fit(x_train[:, 0])
    with pytest.raises(DataError, match=r"not \[0, 1\]"):
        PCAReconstruction().fit(x_train * 16)
    with pytest.raises(ConfigError, match="call fit"):
        KNNDistance().score(x_train)
    fitted = KNNDistance(k=3).fit(x_train)
    with pytest.raises(ShapeError, match=r"\(1, 8, 8\)"):
        fitted.score(torch.rand(2, 1, 28, 28))
    with pytest.raises(ConfigError, match="only 2 normal images"):
        KNNDistance(k=5).fit(x_train[:2])
    with pytest.raises(ShapeError, match="divisible by 4"):
        AutoencoderDetector(steps=1).fit(torch.rand(4, 1, 10, 10))
    assert issubclass(AutoencoderDetector, AnomalyDetector)


@pytest.fixture(scope="module")
def anogan(digits):
    """AnoGAN on the zeros (8 px, padded to a 16 px DCGAN), a short latent search."""
    (x_train, y_train), _ = digits
    detector = AnoGAN(
        width=16, latent_dim=16, steps=300, batch_size=32, search_steps=60, search_lr=0.05
    )
    return detector.fit(x_train[y_train == 0])


def test_anogan_latent_search_lowers_its_loss_and_finds_the_normal_digit(anogan, digits):
    _, (x_test, y_test) = digits
    images = torch.cat([x_test[y_test == 0][:40], x_test[y_test == 1][:40]])
    scores, rebuilt, history = anogan.search(images)
    assert history[-1] < 0.85 * history[0], history[:: len(history) // 5]
    assert rebuilt.shape == images.shape and rebuilt.min() >= 0 and rebuilt.max() <= 1
    # the score is the last step's loss: (1 - lambda) * L1 residual + lambda * feature L1
    residual = (images - rebuilt).abs().flatten(1).sum(1)
    assert torch.all(scores >= 0.9 * residual - 1e-4)
    auroc = detection_scores(scores[:40], scores[40:])["auroc"]
    assert auroc > 0.75, f"AnoGAN AUROC {auroc:.3f} for 0 (normal) vs 1"


def test_f_anogan_encoder_learns_the_normal_digit_and_scores_in_one_pass(digits):
    (x_train, y_train), (x_test, y_test) = digits
    detector = FAnoGAN(width=24, latent_dim=16, gan_steps=500, encoder_steps=150, batch_size=32)
    detector.fit(x_train[y_train == 0])
    encoder = detector.model
    assert not any(p.requires_grad for p in encoder.gan.parameters())  # G and f stay frozen
    zeros = pad_to(x_test[y_test == 0][:40], 16)
    loss, rebuilt = encoder.izi_f(zeros)
    # izi_f by hand: pixel MSE + kappa * feature MSE on the critic's last hidden layer
    critic = encoder.gan.discriminator
    by_hand = (zeros - rebuilt).pow(2).flatten(1).mean(1) + (
        critic.features(zeros) - critic.features(rebuilt)
    ).pow(2).mean(1)
    torch.testing.assert_close(loss, by_hand)
    untrained = IziEncoder(encoder.gan).eval()
    with torch.no_grad():
        assert float(loss.mean()) < 0.8 * float(untrained.izi_f(zeros)[0].mean())
    scores = detector.score(x_test)
    auroc = detection_scores(scores[y_test == 0], scores[y_test == 1])["auroc"]
    assert auroc > 0.75, f"f-AnoGAN AUROC {auroc:.3f} for 0 (normal) vs 1"
    assert detector.residual_map(x_test[:3]).shape == (3, 1, 8, 8)


def test_ganomaly_losses_follow_the_paper_and_its_latent_score_finds_the_normal_digit(digits):
    (x_train, y_train), (x_test, y_test) = digits
    detector = GANomaly(width=16, latent_dim=16, steps=300, batch_size=32)
    detector.fit(x_train[y_train == 0])
    net = detector.model
    x = pad_to(x_test[:8], 16)
    rebuilt, z, z_hat = net(x)
    terms = net.generator_losses(x, rebuilt, z, z_hat)
    d = net.discriminator
    adv = (d.features(x) - d.features(rebuilt)).pow(2).mean()
    by_hand = adv + 50 * (x - rebuilt).abs().mean() + (z - z_hat).pow(2).mean()
    torch.testing.assert_close(terms["g_loss"], by_hand)
    torch.testing.assert_close(detector.score(x_test[:8]), (z - z_hat).pow(2).mean(1))
    scores = detector.score(x_test)
    auroc = detection_scores(scores[y_test == 0], scores[y_test == 1])["auroc"]
    assert auroc > 0.7, f"GANomaly AUROC {auroc:.3f} for 0 (normal) vs 1"


def test_figures_show_the_roc_the_threshold_and_the_most_anomalous_images(digits):
    (x_train, y_train), (x_test, y_test) = digits
    detector = PCAReconstruction(components=8).fit(x_train[y_train == 0])
    keep = (y_test == 0) | (y_test == 1)
    images, labels = x_test[keep], y_test[keep]
    scores = detector.score(images)
    normal, anomalous = scores[labels == 0], scores[labels == 1]
    perfect = (torch.zeros(5), torch.ones(5))
    roc = roc_figure({"pca": (normal, anomalous), "perfect": perfect})
    lines = {line.get_label(): line for line in roc.axes[0].get_lines()}
    auroc = detection_scores(normal, anomalous)["auroc"]
    assert f"pca (AUROC {auroc:.3f})" in lines and "chance" in lines
    perfect_line = lines["perfect (AUROC 1.000)"]
    assert (0.0, 1.0) in set(zip(perfect_line.get_xdata(), perfect_line.get_ydata(), strict=True))
    histogram = score_histogram_figure(normal, anomalous, threshold=0.05)
    assert [line.get_xdata()[0] for line in histogram.axes[0].get_lines()] == [0.05]
    top = top_anomalies_figure(images, scores, detector.residual_map(images), n=4)
    titles = [float(ax.get_title()) for ax in top.axes[:4]]
    assert titles == sorted(titles, reverse=True)
    assert titles[0] == pytest.approx(float(scores.max()), rel=1e-2)
