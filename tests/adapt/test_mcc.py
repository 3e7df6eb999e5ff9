"""MCC (Jin et al. 2020): the class-confusion loss by hand, and one training step of it."""

import math

import pytest
import torch
import torch.nn.functional as F

from counterfeit.adapt import DANN
from counterfeit.adapt.mcc import mcc_loss
from counterfeit.gan.errors import ConfigError
from counterfeit.recipes import load_recipe


def hand_mcc(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. 1-7 written out element by element; the certainty weights as constants."""
    batch, classes = logits.shape
    p = torch.softmax(logits / temperature, 1)
    entropy = [
        -sum(float(p[i, k].detach()) * math.log(float(p[i, k].detach())) for k in range(classes))
        for i in range(batch)
    ]
    certainty = [1 + math.exp(-h) for h in entropy]
    weights = [batch * c / sum(certainty) for c in certainty]
    confusion = [
        [sum(weights[i] * p[i, j] * p[i, k] for i in range(batch)) for k in range(classes)]
        for j in range(classes)
    ]
    total = 0.0
    for k in range(classes):
        column = sum(confusion[j][k] for j in range(classes))
        total = total + sum(confusion[j][k] / column for j in range(classes) if j != k)
    return total / classes


def test_the_loss_and_its_gradient_equal_the_papers_equations_by_hand():
    logits = torch.tensor([[2.0, 0.1, -1.0], [0.3, 1.5, 0.2], [1.0, 0.9, 0.8], [-0.5, 0.0, 2.5]])
    ours = logits.clone().requires_grad_(True)
    theirs = logits.clone().requires_grad_(True)
    value = mcc_loss(ours, 2.5)
    expected = hand_mcc(theirs, 2.5)
    assert float(value.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    (g_ours,) = torch.autograd.grad(value, ours)
    (g_hand,) = torch.autograd.grad(expected, theirs)
    assert torch.allclose(g_ours, g_hand, atol=1e-6)


def test_uniform_predictions_confuse_every_class_and_confident_diverse_ones_none():
    assert float(mcc_loss(torch.zeros(8, 4))) == pytest.approx(3 / 4)
    confident = F.one_hot(torch.arange(8) % 4, 4).float() * 40
    assert float(mcc_loss(confident)) == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(ConfigError, match="temperature"):
        mcc_loss(confident, 0.0)


def test_one_mcc_step_minimises_source_cross_entropy_plus_target_confusion():
    torch.manual_seed(0)
    model = DANN((1, 28, 28), mode="mcc", lr=0.1, momentum=0.0, lr_schedule="constant")
    assert model.domain_classifier is None
    xs, ys = torch.rand(6, 1, 28, 28), torch.arange(6) % 10
    xt = torch.rand(6, 1, 28, 28)
    losses = model.mcc_losses(xs, ys, xt)
    logits = model.label_predictor(model.features(torch.cat([xs, xt])))
    expected = F.cross_entropy(logits[:6], ys) + hand_mcc(logits[6:], 2.5)
    assert float(losses["loss"].detach()) == pytest.approx(float(expected), rel=1e-5)
    # the target batch moves the weights: without its loss the step is different
    weight = model.label_predictor[-1].weight
    grads = {}
    for mu in (1.0, 0.0):
        model.trade_off = mu
        model.zero_grad()
        model.mcc_losses(xs, ys, xt)["loss"].backward()
        grads[mu] = weight.grad.clone()
    assert not torch.allclose(grads[1.0], grads[0.0])


def test_recipes_list_mcc_beside_dann_and_pass_its_settings():
    recipe = load_recipe(
        "digits-dann", overrides=["methods=[source-only,dann,mcc]", "model.trade_off=0.5"]
    ).recipe
    assert recipe.methods == ["source-only", "dann", "mcc"]
    model = DANN((3, 28, 28), mode="mcc", **recipe.model.model_dump(exclude={"input_mean"}))
    assert (model.mode, model.trade_off, model.hparams["mcc_temperature"]) == ("mcc", 0.5, 2.5)
