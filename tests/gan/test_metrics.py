"""Generative metrics: FID's closed form, FID(X, X) ~ 0, shifts score worse, FID-digits, Inception."""

import pytest
import torch

from counterfeit.gan.data.embedded import mnist_small
from counterfeit.gan.errors import CheckpointError, ConfigError, DataError
from counterfeit.gan.metrics import (
    CACHE_ENV,
    TORCHVISION_INCEPTION,
    DigitsFeatures,
    FeatureExtractor,
    GenerativeScores,
    InceptionFeatures,
    Score,
    cache_dir,
    cluster_accuracy,
    find_inception_weights,
    load_digits_classifier,
    scores_to_metrics,
    to_digit_input,
)


class Flat(FeatureExtractor):
    """Features = the pixels themselves: images (N, d, 1, 1) are d-dimensional points."""

    name = "flat"

    def __init__(self, d: int) -> None:
        super().__init__()
        self.num_features = d
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the module a device

    def forward(self, images):
        return images.flatten(1)

    def head(self, features):
        return features


def points(n, mean, std, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, len(mean), generator=g, dtype=torch.float64)
    return (x * torch.tensor(std, dtype=torch.float64) + torch.tensor(mean, dtype=torch.float64))[
        :, :, None, None
    ]


def test_fid_of_a_set_with_itself_is_zero():
    x = points(500, [0.0, 1.0, -2.0], [1.0, 0.5, 2.0], seed=0)
    (fid,) = GenerativeScores(Flat(3), x, metrics=["fid"])(x)
    assert fid.value == pytest.approx(0.0, abs=1e-6)
    assert (fid.metric, fid.n_real, fid.n_fake) == ("fid-flat", 500, 500)


def test_fid_matches_the_closed_form_for_two_gaussians():
    """d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^1/2); diagonal S: sum (s1 - s2)^2."""
    mu1, s1 = [0.0, 0.0, 0.0], [1.0, 2.0, 0.5]
    mu2, s2 = [1.0, -2.0, 0.0], [1.5, 1.0, 0.5]
    closed = sum((a - b) ** 2 for a, b in zip(mu1, mu2)) + sum((a - b) ** 2 for a, b in zip(s1, s2))
    real, fake = points(20000, mu1, s1, seed=1), points(20000, mu2, s2, seed=2)
    (fid,) = GenerativeScores(Flat(3), real, metrics=["fid"])(fake)
    assert closed == pytest.approx(6.25)
    assert fid.value == pytest.approx(closed, rel=0.03)


def test_shifted_distribution_scores_worse_than_unshifted():
    x = points(2000, [0.0, 0.0], [1.0, 1.0], seed=3)
    scores = GenerativeScores(
        Flat(2), x, metrics=["fid", "kid"], kid_subset_size=500, kid_subsets=20
    )
    same = scores_to_metrics(scores(points(2000, [0.0, 0.0], [1.0, 1.0], seed=4)))
    shifted = scores_to_metrics(scores(points(2000, [0.5, 0.0], [1.0, 1.0], seed=4)))
    assert same["fid-flat"] < 0.02 < 0.2 < shifted["fid-flat"]
    assert same["kid-flat"] < shifted["kid-flat"]


@pytest.fixture(scope="module")
def digits():
    """The cached FID-digits extractor (trained once per machine, ~10-20 s) and real digits."""
    extractor = DigitsFeatures()
    test = mnist_small("test")
    train = mnist_small("train").take(1000, seed=0)
    return (
        extractor,
        test.get_batch(torch.arange(len(test)))[0],
        train.get_batch(torch.arange(len(train)))[0],
    )


def test_fid_digits_ranks_real_above_corrupted_digits(digits):
    extractor, test, train = digits
    assert "0.9" in extractor.description  # its held-out accuracy is reported
    scores = GenerativeScores(extractor, test, kid_subset_size=500, kid_subsets=20)
    real = scores_to_metrics(scores(train))
    shifted = scores_to_metrics(scores(torch.roll(train, shifts=3, dims=-1)))
    noise = scores_to_metrics(scores(torch.rand(1000, 1, 28, 28)))
    assert real["fid-digits"] < 15 < shifted["fid-digits"] < noise["fid-digits"]
    assert real["kid-digits"] < shifted["kid-digits"]
    assert real["is-digits"] > 8 > 2 > noise["is-digits"]  # 10 classes, confidently
    assert (real["fid-digits/n_real"], real["fid-digits/n_fake"]) == (1000, 1000)
    assert real["is-digits/n_fake"] == 1000 and "is-digits/n_real" not in real


def test_digit_input_pads_28_and_resizes_the_rest():
    image = torch.rand(2, 1, 28, 28)
    padded = to_digit_input(image)
    assert padded.shape == (2, 1, 32, 32) and torch.equal(padded[:, :, 2:30, 2:30], image)
    assert padded[:, :, :2].abs().sum() == 0
    assert to_digit_input(torch.rand(3, 3, 64, 64)).shape == (3, 1, 32, 32)
    with pytest.raises(DataError, match=r"\(N, C, H, W\)"):
        to_digit_input(torch.rand(28, 28))


def test_digits_classifier_is_cached_and_a_bad_cache_is_a_clear_error(
    digits, tmp_path, monkeypatch
):
    path = cache_dir() / "fid-digits-v2.pt"
    assert path.is_file()
    mtime = path.stat().st_mtime
    a, acc_a = load_digits_classifier()
    b, acc_b = load_digits_classifier()
    assert path.stat().st_mtime == mtime and acc_a == acc_b > 0.9
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert cache_dir() == tmp_path
    (tmp_path / "fid-digits-v2.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"fid-digits-v2\.pt"):
        load_digits_classifier()


def test_scores_report_their_sample_counts_and_check_them():
    x = points(100, [0.0], [1.0], seed=5)
    scores = GenerativeScores(Flat(1), x, kid_subset_size=50, kid_subsets=10, is_splits=2)
    results = scores(points(60, [0.0], [1.0], seed=6))
    assert [s.metric for s in results] == ["fid-flat", "kid-flat", "is-flat"]
    assert all(isinstance(s, Score) and s.n_fake == 60 for s in results)
    assert "(60 generated vs 100 real)" in str(results[0]) and results[0].label == "FID-flat"
    assert "60 generated)" in str(results[2])
    with pytest.raises(ConfigError, match="KID subset size 50 exceeds the 40 generated"):
        scores(points(40, [0.0], [1.0], seed=7))
    with pytest.raises(ConfigError, match="exceeds the 100 real"):
        GenerativeScores(Flat(1), x, kid_subset_size=200)
    with pytest.raises(ConfigError, match="unknown metrics"):
        GenerativeScores(Flat(1), x, metrics=["fid", "lpips"])


def test_scores_leave_the_global_random_state_alone():
    x = points(200, [0.0], [1.0], seed=8)
    scores = GenerativeScores(Flat(1), x, kid_subset_size=100, kid_subsets=10)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    first = scores(x)
    assert torch.equal(torch.rand(3), expected)
    assert [s.value for s in first] == [s.value for s in scores(x)]  # seeded subsets/splits


def test_inception_needs_local_weights_and_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ConfigError, match="never downloads"):
        find_inception_weights()
    with pytest.raises(ConfigError, match="not found"):
        InceptionFeatures(tmp_path / "missing.pth")


def test_inception_from_the_hub_cache(tmp_path, monkeypatch):
    from torchvision.models import inception_v3

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / TORCHVISION_INCEPTION
    cached.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), cached)
    assert find_inception_weights() == cached
    extractor = InceptionFeatures()
    features, logits = extractor.extract(torch.rand(2, 1, 28, 28))
    assert features.shape == (2, 2048) and logits.shape == (2, 1000)
    assert extractor.name == "" and not extractor.training


def test_cluster_accuracy_uses_the_best_matching():
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    assert cluster_accuracy(torch.tensor([2, 2, 0, 0, 1, 1, 1]), labels) == 1.0
    assert cluster_accuracy(torch.tensor([2, 2, 0, 1, 1, 1, 1]), labels) == pytest.approx(6 / 7)
    with pytest.raises(DataError, match="as many"):
        cluster_accuracy(torch.tensor([0, 1]), labels)


def test_precision_recall_separate_realism_from_coverage():
    from counterfeit.gan.metrics import precision_recall

    generator = torch.Generator().manual_seed(0)
    real = torch.randn(400, 2, generator=generator)
    same = torch.randn(400, 2, generator=generator)
    precision, recall = precision_recall(real, same)
    assert precision > 0.9 and recall > 0.9
    collapsed = 0.1 * torch.randn(400, 2, generator=generator)  # one mode of the real data
    precision, recall = precision_recall(real, collapsed)
    assert precision > 0.95 and recall < 0.3
    off = torch.randn(400, 2, generator=generator) + 10  # unrealistic samples
    assert precision_recall(real, off)[0] == 0
    with pytest.raises(DataError, match="more than 3"):
        precision_recall(real, off[:3])


def test_conditional_scores_reward_the_class_asked_for_and_its_variety(digits):
    from counterfeit.gan.metrics import conditional_scores

    extractor, _, _ = digits
    train, test = mnist_small("train"), mnist_small("test")
    pool, pool_labels = train.get_batch(torch.arange(len(train)))
    real, real_labels = test.get_batch(torch.arange(len(test)))

    def drawer(shift: int, one_image: bool):
        def sample(classes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            picks = []
            for c in classes.tolist():
                of_class = torch.nonzero(pool_labels == (c + shift) % 10).flatten()
                j = 0 if one_image else int(torch.randint(len(of_class), (1,), generator=generator))
                picks.append(of_class[j])
            return pool[torch.stack(picks)]

        return sample

    faithful = conditional_scores(drawer(0, False), extractor, real, real_labels, 10, 40, 200)
    wrong = conditional_scores(drawer(1, False), extractor, real, real_labels, 10, 40, 200)
    collapsed = conditional_scores(drawer(0, True), extractor, real, real_labels, 10, 40, 200)
    assert faithful.accuracy > 0.9 > 0.1 > wrong.accuracy
    assert len(faithful.per_class_fid) == 10 and faithful.n_real_per_class[0] > 50
    # a class drawn as one repeated digit reads right but scores worse within its class
    assert collapsed.accuracy > 0.8
    assert faithful.intra_fid < collapsed.intra_fid and faithful.intra_fid < wrong.intra_fid
    with pytest.raises(DataError, match=r"at least 2 real images of every class; \[9\]"):
        keep = real_labels != 9
        conditional_scores(drawer(0, False), extractor, real[keep], real_labels[keep], 10, 4)
