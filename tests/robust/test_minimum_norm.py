"""DeepFool and Carlini-Wagner L2 find the boundary a linear classifier has in closed form."""

import pytest
import torch
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.robust.minimum_norm import cw, deepfool, perturbation_sizes
from tests.robust.conftest import sklearn_digits, trained_model


@pytest.fixture(scope="module")
def linear():
    """A linear classifier of 8x8 images, and mid-grey images well inside [0, 1]."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    x = 0.5 + 0.05 * torch.randn(20, 1, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def closed_form_distance(model, x, y):
    """The L2 distance from each image to its nearest decision boundary of a linear model."""
    weight, bias = model[1].weight, model[1].bias
    with torch.no_grad():
        logits = x.flatten(1) @ weight.T + bias
        own = logits.gather(1, y[:, None])
        gaps = (own - logits).abs()
        norms = (weight[y][:, None, :] - weight[None]).norm(dim=2).squeeze(0)
        ratio = gaps / norms.clamp_min(1e-12)
        ratio[torch.arange(len(y)), y] = float("inf")
    return ratio.amin(1)


def test_deepfool_steps_once_to_the_nearest_linear_boundary_with_its_overshoot(linear):
    model, x, y = linear
    x_adv = deepfool(model, x, y)
    with torch.no_grad():
        assert bool((model(x_adv).argmax(1) != y).all())
    sizes = (x_adv - x).flatten(1).norm(dim=1)
    expected = closed_form_distance(model, x, y) * 1.02
    assert sizes == pytest.approx(expected, rel=1e-3, abs=1e-4)


def test_cw_finds_a_perturbation_no_smaller_than_the_minimum_and_close_to_it(linear):
    model, x, y = linear
    x_adv = cw(model, x, y, steps=200, search_steps=6, initial_const=1.0)
    with torch.no_grad():
        fooled = model(x_adv).argmax(1) != y
    assert float(fooled.float().mean()) >= 0.9
    sizes = (x_adv - x).flatten(1).norm(dim=1)[fooled]
    minimum = closed_form_distance(model, x, y)[fooled]
    assert bool((sizes >= minimum * 0.999).all())
    assert float((sizes / minimum).median()) < 1.15
    assert all(p.grad is None for p in model.parameters())


def test_median_sizes_on_a_trained_cnn_and_unfooled_images_count_as_infinitely_far():
    _, test = sklearn_digits()
    x, y = test.get_batch(torch.arange(40))
    model = trained_model()
    found = perturbation_sizes(model, x, y, deepfool(model, x, y))
    assert found["success"] > 0.9
    assert 0 < found["median_l2"] < 3.0 and found["median_linf"] <= found["median_l2"]
    nothing = perturbation_sizes(model, x, y, x.clone())
    assert nothing["success"] == 0 and nothing["median_l2"] == float("inf")


def test_bad_settings_are_named(linear):
    model, x, y = linear
    with pytest.raises(ConfigError, match="steps must be an integer >= 1"):
        deepfool(model, x, y, steps=0)
    with pytest.raises(ConfigError, match="initial_const > 0"):
        cw(model, x, y, initial_const=0)
