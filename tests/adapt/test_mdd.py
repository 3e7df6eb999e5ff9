"""MDD (Zhang et al. 2019): the disparity loss, its gradients and the warm-up by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from counterfeit.adapt import DANN
from counterfeit.adapt.mdd import mdd_coefficient, mdd_loss


def test_the_adversary_loss_is_gamma_times_source_agreement_plus_target_disagreement():
    source = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    target = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    adversary_s = torch.tensor([[0.5, 0.2, 0.1], [0.1, 0.3, 0.2]])
    adversary_t = torch.tensor([[0.0, 2.0, 0.0], [0.3, 0.1, -0.2]])
    ce = (
        -(math.log(F.softmax(adversary_s[0], 0)[0]) + math.log(F.softmax(adversary_s[1], 0)[2])) / 2
    )
    p_t = [float(F.softmax(adversary_t[0], 0)[1]), float(F.softmax(adversary_t[1], 0)[0])]
    disagreement = -sum(math.log(1 - p + 1e-6) for p in p_t) / 2
    value = mdd_loss(source, adversary_s, target, adversary_t, margin=4.0)
    assert float(value) == pytest.approx(4.0 * ce + disagreement, rel=1e-5)


def test_mdd_has_the_authors_bottleneck_and_heads():
    model = DANN((1, 28, 28), mode="mdd", backbone="lenet")
    bottleneck = model.features[-1]
    assert [type(m).__name__ for m in bottleneck] == ["Linear", "BatchNorm1d", "ReLU", "Dropout"]
    for head in (model.label_predictor, model.adversarial_head):
        assert [m.out_features for m in head if isinstance(m, torch.nn.Linear)] == [1024, 10]
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_the_reversal_coefficient_warms_up_to_a_tenth():
    assert mdd_coefficient(0) == 0.0
    assert mdd_coefficient(1000) == pytest.approx(0.1 * (2 / (1 + math.exp(-1)) - 1))
    assert mdd_coefficient(10**6) == pytest.approx(0.1)


def test_one_mdd_step_trains_the_head_to_the_loss_and_the_features_against_it():
    torch.manual_seed(0)
    model = DANN((1, 28, 28), mode="mdd", lr_schedule="constant").eval()  # no dropout draws
    xs, ys, xt = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3]), torch.rand(4, 1, 28, 28)
    losses = model.mdd_losses(xs, ys, xt, coefficient=0.1)
    features = model.features(torch.cat([xs, xt]))
    logits = model.label_predictor(features)
    adversary = model.adversarial_head(features)
    expected_disparity = mdd_loss(logits[:4], adversary[:4], logits[4:], adversary[4:], 4.0)
    expected = F.cross_entropy(logits[:4], ys) + expected_disparity
    assert float(losses["loss"].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)

    # the classifier learns only from source labels: the disparity gives it no gradient
    model.zero_grad()
    losses["loss/mdd"].backward()
    assert all(
        p.grad is None or p.grad.abs().sum() == 0 for p in model.label_predictor.parameters()
    )
    assert model.adversarial_head[-1].weight.grad.abs().sum() > 0

    # the features receive minus the coefficient times the disparity's gradient
    method_grads = [p.grad.clone() for p in model.features.parameters()]
    model.zero_grad()
    expected_disparity.backward()
    plain_grads = [p.grad for p in model.features.parameters()]
    assert sum(float(g.abs().sum()) for g in plain_grads) > 0
    for reversed_grad, plain_grad in zip(method_grads, plain_grads, strict=True):
        assert torch.allclose(reversed_grad, -0.1 * plain_grad, atol=1e-7)
