"""Label-free validators: hand values, the direction of each score, and sealed target labels."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.adapt import DANN, VALIDATORS, Predictions, Validator, build_validator
from counterfeit.adapt.validators import collapse_score, dev_risk
from counterfeit.gan.data import ImageTensors
from counterfeit.gan.errors import ConfigError, DataError


def predictions(logits, labels=None, features=None) -> Predictions:
    logits = torch.as_tensor(logits, dtype=torch.float32)
    labels = torch.full((len(logits),), -1) if labels is None else torch.as_tensor(labels)
    return Predictions(logits, labels, features)


def one_hot_logits(classes, scale=30.0):
    return F.one_hot(torch.as_tensor(classes), 3).float() * scale


def test_a_validator_refuses_target_predictions_that_carry_labels():
    source = predictions(torch.randn(6, 3), [0, 1, 2, 0, 1, 2])
    target = predictions(torch.randn(6, 3), [0, 1, 2, 0, 1, 2])
    for name in ("entropy", "snd", "im"):
        with pytest.raises(DataError, match="unlabeled"):
            build_validator(name)(source, target)


def test_score_strips_the_target_labels_before_any_validator_code_runs():
    seen = []

    class Spy(Validator):
        name = "spy"

        def compute(self, source, target):
            seen.append(target.labels.clone())
            return 0.0

    features, head = nn.Flatten(), nn.Linear(4, 3)
    source = ImageTensors(
        torch.randint(0, 255, (8, 1, 2, 2), dtype=torch.uint8), torch.arange(8) % 3, "source"
    )
    target = ImageTensors(
        torch.randint(0, 255, (5, 1, 2, 2), dtype=torch.uint8), torch.arange(5) % 3, "target"
    )
    Spy().score(features, head, source, target)
    assert seen[0].tolist() == [-1] * 5


def test_entropy_im_and_bnm_prefer_confident_diverse_predictions_with_hand_values():
    source = predictions(torch.zeros(6, 3), [0] * 6)
    diverse = predictions(one_hot_logits([0, 1, 2, 0, 1, 2]))
    collapsed = predictions(one_hot_logits([0] * 6))
    uniform = predictions(torch.zeros(6, 3))
    entropy, im, bnm = (build_validator(n) for n in ("entropy", "im", "bnm"))
    assert entropy(source, diverse) == pytest.approx(0.0, abs=1e-6)
    assert entropy(source, uniform) == pytest.approx(-math.log(3))
    # IM: H(mean) - mean H = log 3 for confident balanced predictions, 0 when collapsed
    assert im(source, diverse) == pytest.approx(math.log(3), abs=1e-5)
    assert im(source, collapsed) == pytest.approx(0.0, abs=1e-5)
    # BNM: one-hot rows, two per class -> singular values sqrt(2) x 3, over n = 6
    assert bnm(source, diverse) == pytest.approx(3 * math.sqrt(2) / 6, rel=1e-5)
    assert bnm(source, collapsed) == pytest.approx(math.sqrt(6) / 6, rel=1e-5)


def test_snd_equals_a_hand_computation_and_is_higher_for_a_dense_neighbourhood():
    logits = torch.tensor([[2.0, 0.0, 0.0], [1.5, 0.2, 0.0], [0.0, 2.0, 0.1], [0.1, 0.0, 3.0]])
    p = F.normalize(F.softmax(logits, 1), dim=1)
    expected = []
    for i in range(len(p)):
        others = [j for j in range(len(p)) if j != i]
        weights = torch.softmax(torch.stack([p[i] @ p[j] for j in others]) / 0.05, 0)
        expected.append(float(-(weights * weights.log()).sum()))
    snd = build_validator("snd")
    source = predictions(torch.zeros(4, 3), [0] * 4)
    assert snd(source, predictions(logits)) == pytest.approx(np.mean(expected), rel=1e-5)
    # blocks give the same value as one pass
    assert VALIDATORS["snd"](block=3)(source, predictions(logits)) == pytest.approx(
        snd(source, predictions(logits)), rel=1e-6
    )
    # four points close together: each has three equal neighbours (entropy near log 3)
    generator = torch.Generator().manual_seed(0)
    clustered = one_hot_logits([0] * 4 + [1] * 4, scale=4.0)
    clustered += 0.01 * torch.randn(8, 3, generator=generator)
    scattered = torch.randn(8, 3, generator=generator) * 4
    source = predictions(torch.zeros(8, 3), [0] * 8)
    dense = snd(source, predictions(clustered))
    assert dense == pytest.approx(math.log(3), abs=0.05)
    assert dense > snd(source, predictions(scattered)) + 0.3


def test_dev_risk_is_the_mean_loss_for_equal_weights_and_follows_the_control_variate():
    losses = np.array([0.1, 0.5, 2.0, 0.2])
    assert dev_risk(np.ones(4), losses) == pytest.approx(losses.mean())
    weights = np.array([0.5, 1.0, 2.0, 0.5])
    weighted = weights * losses
    eta = -np.cov(weighted, weights)[0, 1] / np.var(weights, ddof=1)
    assert dev_risk(weights, losses) == pytest.approx(weighted.mean() + eta * weights.mean() - eta)


def test_dev_on_matching_domains_is_about_minus_the_validation_loss():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(400, 5, generator=generator)
    labels = (features[:, 0] > 0).long()
    logits = torch.stack([-features[:, 0], features[:, 0]], 1) * 2
    source = Predictions(logits[:200], labels[:200], features[:200])
    target = Predictions(logits[200:], torch.full((200,), -1), features[200:])
    loss = F.cross_entropy(logits[:200], labels[:200]).item()
    assert build_validator("dev")(source, target) == pytest.approx(-loss, rel=0.35)


def test_feature_validators_name_what_is_missing_and_unknown_names_are_listed():
    source, target = predictions(torch.zeros(6, 3), [0] * 6), predictions(torch.zeros(6, 3))
    with pytest.raises(DataError, match="features"):
        build_validator("dev")(source, target)
    with pytest.raises(ConfigError, match="known: source-accuracy, entropy, im, bnm, snd"):
        build_validator("snnd")


def test_collapse_score_scores_a_dann_model_on_its_parts(tiny_domains):
    model = DANN((3, 28, 28))
    score = collapse_score(
        build_validator("source-accuracy"),
        tiny_domains["source_test"],
        tiny_domains["target_test"],
    )
    value = score(model)
    assert 0 <= value <= 1
    assert value == pytest.approx(
        build_validator("source-accuracy").score(
            model.features,
            model.label_predictor,
            tiny_domains["source_test"],
            tiny_domains["target_test"],
        )
    )
