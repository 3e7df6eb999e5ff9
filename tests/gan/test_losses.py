"""Adversarial losses: hand-computed values, the gradient penalty, and one step on a toy game."""

import math

import pytest
import torch

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.losses import (
    LOSSES,
    clip_weights_,
    get_loss,
    gradient_penalty,
    hinge_d,
    hinge_g,
    least_squares_d,
    least_squares_g,
    minimax_d,
    minimax_g,
    non_saturating_g,
    wasserstein_d,
    wasserstein_g,
)


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


def softplus(x):
    return math.log1p(math.exp(x))


def test_minimax_and_non_saturating_match_hand_computed_values():
    # -log sigmoid(2) - log(1 - sigmoid(-1)) = softplus(-2) + softplus(-1)
    assert minimax_d(t(2.0), t(-1.0)).item() == pytest.approx(softplus(-2) + softplus(-1))
    assert minimax_d(t(0.0, 0.0), t(0.0)).item() == pytest.approx(2 * math.log(2))
    # log(1 - sigmoid(-1)) = -softplus(-1);  -log sigmoid(-1) = softplus(1)
    assert minimax_g(t(-1.0)).item() == pytest.approx(-softplus(-1))
    assert non_saturating_g(t(-1.0, 3.0)).item() == pytest.approx((softplus(1) + softplus(-3)) / 2)


def test_wasserstein_least_squares_and_hinge_match_hand_computed_values():
    assert wasserstein_d(t(1.0, 3.0), t(0.5, -0.5)).item() == pytest.approx(0.0 - 2.0)
    assert wasserstein_g(t(1.0, 2.0)).item() == pytest.approx(-1.5)
    # 1/2 mean((1-1)^2, (0-1)^2) + 1/2 mean((0-0)^2, (1-0)^2) = 0.25 + 0.25
    assert least_squares_d(t(1.0, 0.0), t(0.0, 1.0)).item() == pytest.approx(0.5)
    assert least_squares_d(t(1.0), t(-1.0), a=-1.0, b=1.0).item() == pytest.approx(0.0)
    assert least_squares_g(t(0.0, 1.0)).item() == pytest.approx(0.25)
    assert least_squares_g(t(0.0), c=0.0).item() == pytest.approx(0.0)
    # mean(max(0, 1-2), max(0, 1-0.5)) + mean(max(0, 1-2), max(0, 1+0)) = 0.25 + 0.5
    assert hinge_d(t(2.0, 0.5), t(-2.0, 0.0)).item() == pytest.approx(0.75)
    assert hinge_g(t(-2.0, 0.0)).item() == pytest.approx(1.0)


def test_non_saturating_keeps_the_gradient_the_minimax_loss_loses():
    """When D confidently rejects the fakes, log(1 - D) saturates (Goodfellow et al. 2014, Sec. 3)."""
    grads = {}
    for name, fn in (("minimax", minimax_g), ("non-saturating", non_saturating_g)):
        fake = torch.tensor([-6.0], requires_grad=True)
        fn(fake).backward()
        grads[name] = fake.grad.abs().item()
    assert grads["minimax"] < 0.01 < 0.99 < grads["non-saturating"]


@pytest.mark.parametrize(
    ("w", "expected"), [((0.6, 0.8), 0.0), ((1.2, 1.6), 1.0), ((0.0, 3.0), 4.0)]
)
def test_gradient_penalty_of_a_linear_critic(w, expected):
    """f(x) = w.x has gradient w everywhere, so GP = (||w|| - 1)^2 whatever eps is."""
    weight = torch.tensor(w, dtype=torch.float64)
    real, fake = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    penalty = gradient_penalty(lambda x: x @ weight, real, fake)
    assert penalty.item() == pytest.approx(expected)


def test_gradient_penalty_interpolates_and_is_differentiable_in_the_critic():
    # f(x) = a * x^2 / 2 on 1-d inputs: grad = a x_hat; with eps = 0.5, x_hat = (real + fake) / 2.
    a = torch.tensor(2.0, requires_grad=True)
    real, fake = torch.tensor([[3.0]]), torch.tensor([[1.0]])
    penalty = gradient_penalty(
        lambda x: (a * x.pow(2) / 2).sum(1), real, fake, eps=torch.tensor([0.5])
    )
    assert penalty.item() == pytest.approx((2.0 * 2.0 - 1) ** 2)
    penalty.backward()  # d/da (2 a - 1)^2 = 4 (2 a - 1) = 12
    assert a.grad.item() == pytest.approx(12.0)
    with pytest.raises(ConfigError, match="one shape"):
        gradient_penalty(lambda x: x.sum(1), torch.zeros(2, 3), torch.zeros(3, 3))


def test_clip_weights_clamps_every_parameter():
    net = torch.nn.Linear(4, 3)
    with torch.no_grad():
        net.weight.mul_(100)
    clip_weights_(net, 0.01)
    assert all(p.abs().max() <= 0.01 for p in net.parameters())


def test_losses_are_selectable_by_name_with_their_constraints():
    assert set(LOSSES) == {
        "minimax",
        "non-saturating",
        "wasserstein",
        "wgan-gp",
        "least-squares",
        "hinge",
    }
    assert get_loss("wasserstein").clip_value == 0.01
    assert get_loss("wgan-gp").gp_weight == 10.0
    assert get_loss("hinge").clip_value is None and get_loss("hinge").gp_weight is None
    with pytest.raises(ConfigError, match=r"unknown GAN loss 'wgan'.*wgan-gp"):
        get_loss("wgan")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_one_step_moves_d_and_g_the_right_way(name):
    """A toy 1-D game: real data at 2, G(z) = theta = 0, a linear D(x) = a x + b.

    One D step must widen D's margin between real and fake; then one G step must
    move the fake towards the real data (theta up).
    """
    loss = get_loss(name)
    real = torch.full((16, 1), 2.0)
    d = torch.nn.Linear(1, 1)
    with torch.no_grad():
        d.weight.fill_(0.005)
        d.bias.zero_()
    theta = torch.zeros(1, requires_grad=True)

    def margin():
        with torch.no_grad():
            return (d(real).mean() - d(theta.expand(16, 1)).mean()).item()

    before = margin()
    fake = theta.expand(16, 1)
    d_loss = loss.d(d(real).flatten(), d(fake.detach()).flatten())
    if loss.gp_weight:
        d_loss = d_loss + loss.gp_weight * gradient_penalty(lambda x: d(x).flatten(), real, fake)
    d_opt = torch.optim.SGD(d.parameters(), lr=1e-3)
    d_opt.zero_grad()
    d_loss.backward()
    d_opt.step()
    if loss.clip_value:
        clip_weights_(d, loss.clip_value)
        assert d.weight.abs().item() <= loss.clip_value
    assert margin() > before, f"{name}: D did not learn to separate real from fake"

    g_opt = torch.optim.SGD([theta], lr=0.1)
    g_opt.zero_grad()
    loss.g(d(theta.expand(16, 1)).flatten()).backward()
    g_opt.step()
    assert theta.item() > 0, f"{name}: G did not move towards the real data"
