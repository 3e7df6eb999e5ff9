"""APGD (Croce & Hein 2020): its step-size rule, its budgets, its losses, its strength."""

import pytest
import torch
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.robust import pgd
from counterfeit.robust.apgd import apgd, checkpoints, dlr_loss, halve_step, targeted_dlr_loss
from tests.robust.conftest import sklearn_digits, trained_model


def robust_accuracy(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x_adv).argmax(1) == y).float().mean().item()


@pytest.fixture(scope="module")
def digits_batch() -> tuple[torch.Tensor, torch.Tensor]:
    _, test = sklearn_digits()
    return test.get_batch(torch.arange(200))


def test_checkpoints_follow_the_papers_recurrence():
    # p = 0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 (Sec. 3.2), times 100 steps
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(10) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert checkpoints(1) == [1]


def test_step_halves_on_oscillation_or_a_stalled_best_loss():
    window = 22  # rho * window = 16.5
    halve = halve_step(
        increases=torch.tensor([16.0, 17.0, 17.0, 17.0]),
        window=window,
        halved_last=torch.tensor([False, False, True, False]),
        best_at_last=torch.tensor([1.0, 1.0, 1.0, 1.0]),
        best_now=torch.tensor([2.0, 2.0, 1.0, 1.0]),
    )
    # 1: the loss rose on too few steps; 2: it rose often and the best improved;
    # 3: the best stalled but the step was just halved; 4: the best stalled
    assert halve.tolist() == [True, False, False, True]


def test_dlr_is_invariant_to_shifting_and_scaling_the_logits():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(32, 10, generator=generator)
    y = torch.randint(10, (32,), generator=generator)
    target = (y + 1) % 10
    assert torch.allclose(dlr_loss(3 * logits + 5, y), dlr_loss(logits, y), atol=1e-5)
    assert torch.allclose(
        targeted_dlr_loss(3 * logits + 5, y, target),
        targeted_dlr_loss(logits, y, target),
        atol=1e-5,
    )
    # positive exactly where the true class is not the top logit
    assert torch.equal(dlr_loss(logits, y) > 0, logits.argmax(1) != y)


@pytest.mark.parametrize("norm, eps", [("inf", 0.1), ("2", 0.8)])
@pytest.mark.parametrize("loss, targeted", [("ce", False), ("dlr", False), ("dlr", True)])
def test_stays_in_the_ball_and_the_image_range(digits_batch, norm, eps, loss, targeted):
    x, y = digits_batch
    x_adv = apgd(
        trained_model(),
        x,
        y,
        eps,
        norm=norm,
        loss=loss,
        targeted=targeted,
        steps=10,
        n_target_classes=3,
    )
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "inf" else delta.norm(dim=1)
    assert float(size.max()) <= eps * (1 + 1e-5)
    assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
    assert x_adv.dtype == x.dtype and x_adv.shape == x.shape


def test_apgd_ce_is_at_least_as_strong_as_pgd_at_equal_steps(digits_batch):
    x, y = digits_batch
    model = trained_model()
    for eps in (0.05, 0.1):
        by_pgd = robust_accuracy(
            model, pgd(model, x, y, eps, steps=20, generator=torch.Generator().manual_seed(0)), y
        )
        by_apgd = robust_accuracy(model, apgd(model, x, y, eps, steps=20), y)
        assert by_apgd <= by_pgd, (eps, by_apgd, by_pgd)
    assert by_apgd < robust_accuracy(model, x, y) - 0.3


def test_images_already_misclassified_are_left_as_they_are(digits_batch):
    x, y = digits_batch
    model = trained_model()
    wrong = (y + 1) % 10  # labels the model disagrees with almost everywhere
    with torch.no_grad():
        disagrees = model(x).argmax(1) != wrong
    x_adv = apgd(model, x, wrong, 0.1, steps=5)
    assert torch.equal(x_adv[disagrees], x[disagrees])


def test_bad_settings_are_named():
    x, y = torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ConfigError, match="loss must be 'ce' or 'dlr'"):
        apgd(trained_model(), x, y, 0.1, loss="cw")
    with pytest.raises(ConfigError, match="steps must be an integer >= 1"):
        apgd(trained_model(), x, y, 0.1, steps=0)
    two_classes = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    with pytest.raises(ConfigError, match="needs at least 3 classes"):
        apgd(two_classes, x, y, 0.1, loss="dlr")
    assert torch.equal(apgd(trained_model(), x, y, 0.0), x)
