"""CDAN and CDAN+E (Long et al. 2018): the conditioning, the weights and one step by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from counterfeit.adapt import DANN
from counterfeit.adapt.cdan import (
    ConditionalAdversary,
    RandomizedMultilinear,
    conditional_domain_loss,
    entropy_weights,
    multilinear_map,
)


def test_the_multilinear_map_holds_every_product_of_a_class_probability_and_a_feature():
    f = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]])
    g = torch.tensor([[0.2, 0.8], [0.6, 0.4]])
    mapped = multilinear_map(f, g)
    assert mapped.shape == (2, 6)
    for b in range(2):
        for c in range(2):
            for i in range(3):
                assert float(mapped[b, c * 3 + i]) == pytest.approx(float(g[b, c] * f[b, i]))


def test_the_randomized_map_is_the_scaled_product_of_two_fixed_projections():
    torch.manual_seed(0)
    layer = RandomizedMultilinear(5, 3, output_dim=4)
    f, g = torch.randn(2, 5), torch.softmax(torch.randn(2, 3), 1)
    rf, rg = layer.feature_projection, layer.class_projection
    for b in range(2):
        for k in range(4):
            hand = sum(float(rf[i, k] * f[b, i]) for i in range(5)) * sum(
                float(rg[c, k] * g[b, c]) for c in range(3)
            )
            assert float(layer(f, g)[b, k]) == pytest.approx(hand / 2, rel=1e-5)
    assert not any(p.requires_grad for p in layer.parameters())  # fixed, saved as buffers
    assert set(layer.state_dict()) == {"feature_projection", "class_projection"}


def test_entropy_weights_favour_certain_examples_and_sum_to_one_per_domain():
    probabilities = torch.tensor([[0.98, 0.02], [0.5, 0.5], [0.9, 0.1], [0.6, 0.4], [0.5, 0.5]])
    weights = entropy_weights(probabilities, n_source=2)
    raw = [1 + math.exp(sum(p * math.log(p) for p in row.tolist())) for row in probabilities]
    hand = [raw[0] / sum(raw[:2]), raw[1] / sum(raw[:2])] + [w / sum(raw[2:]) for w in raw[2:]]
    assert weights.tolist() == pytest.approx(hand, rel=1e-5)
    assert weights[0] > weights[1] and weights[2] > weights[3] > weights[4]


def test_one_cdan_e_step_equals_the_hand_written_loss_and_reverses_the_features_gradient():
    torch.manual_seed(0)
    model = DANN((1, 28, 28), mode="cdan+e", lr_schedule="constant")
    xs, ys, xt = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3]), torch.rand(4, 1, 28, 28)
    losses = model.cdan_losses(xs, ys, xt, lambda_=0.5)

    features = model.features(torch.cat([xs, xt]))
    logits = model.label_predictor(features)
    g = torch.softmax(logits, 1).detach()
    conditioned = torch.stack([torch.outer(g[b], features[b]).flatten() for b in range(8)])
    d = model.conditional_adversary.discriminator(conditioned).squeeze(1)
    bce = F.binary_cross_entropy_with_logits(
        d, torch.tensor([1.0] * 4 + [0.0] * 4), reduction="none"
    )
    w = entropy_weights(g, 4)
    expected = F.cross_entropy(logits[:4], ys) + (w * bce).sum() / w.sum()
    assert float(losses["loss"].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)

    # the discriminator descends its loss; the features receive -lambda times its gradient
    probe = features.detach().requires_grad_(True)
    adversary = model.conditional_adversary
    reversed_loss = conditional_domain_loss(adversary(probe, logits, 0.5), 4, w)
    (reversed_grad,) = torch.autograd.grad(reversed_loss, probe)
    plain = adversary.discriminator(adversary.conditioned(probe, logits)).squeeze(1)
    (plain_grad,) = torch.autograd.grad(conditional_domain_loss(plain, 4, w), probe)
    assert torch.allclose(reversed_grad, -0.5 * plain_grad, atol=1e-7)
    assert plain_grad.abs().sum() > 0


def test_plain_cdan_averages_the_domain_loss_and_leaves_predictions_unconditioned_by_grad():
    torch.manual_seed(1)
    model = DANN((1, 28, 28), mode="cdan", lr_schedule="constant")
    xs, ys, xt = torch.rand(3, 1, 28, 28), torch.tensor([4, 5, 6]), torch.rand(5, 1, 28, 28)
    losses = model.cdan_losses(xs, ys, xt, lambda_=1.0)
    features = model.features(torch.cat([xs, xt]))
    logits = model.label_predictor(features)
    d = model.conditional_adversary(features, logits, 1.0)
    labels = torch.tensor([1.0] * 3 + [0.0] * 5)
    assert float(losses["loss/domain"].detach()) == pytest.approx(
        float(F.binary_cross_entropy_with_logits(d, labels)), rel=1e-5
    )
    # the domain loss reaches the label predictor only through the features (g is a constant)
    model.zero_grad()
    losses["loss/domain"].backward()
    assert all(
        p.grad is None or p.grad.abs().sum() == 0 for p in model.label_predictor.parameters()
    )


def test_the_randomized_variant_trains_through_the_same_step():
    torch.manual_seed(2)
    model = DANN((1, 28, 28), mode="cdan", cdan_randomized=True, cdan_random_dim=64)
    assert isinstance(model.conditional_adversary, ConditionalAdversary)
    assert model.conditional_adversary.discriminator[0].in_features == 64
    xs, ys, xt = torch.rand(4, 1, 28, 28), torch.arange(4), torch.rand(4, 1, 28, 28)
    model.cdan_losses(xs, ys, xt, 1.0)["loss/domain"].backward()
    for net in (model.features, model.conditional_adversary):
        assert sum(float(p.grad.abs().sum()) for p in net.parameters() if p.grad is not None) > 0
