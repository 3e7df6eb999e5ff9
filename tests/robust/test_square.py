"""Square Attack (Andriushchenko et al. 2020): gradient-free, so gradient masking does not stop it."""

import pytest
import torch
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.robust import pgd
from counterfeit.robust.square import bump, margins, pseudo_gaussian, square, square_fraction
from tests.robust.conftest import Quantised, sklearn_digits, trained_model


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def test_the_window_shrinks_along_the_papers_schedule():
    assert square_fraction(0, 10000) == 0.8
    assert square_fraction(10, 10000) == 0.8
    assert square_fraction(11, 10000) == 0.4
    assert square_fraction(600, 10000) == 0.8 / 16
    assert square_fraction(9000, 10000) == 0.8 / 512
    # rescaled: query 500 of 1,000 is query 5,000 of 10,000
    assert square_fraction(500, 1000) == 0.8 / 128


def test_breaks_a_gradient_masked_model_that_pgd_cannot():
    _, test = sklearn_digits()
    x, y = test.get_batch(torch.arange(100))
    masked = Quantised(trained_model()).eval()
    clean = accuracy(masked, x, y)
    by_pgd = accuracy(masked, pgd(masked, x, y, 0.2, steps=20, random_start=False), y)
    x_adv = square(masked, x, y, 0.2, queries=300)
    by_square = accuracy(masked, x_adv, y)
    assert by_pgd == pytest.approx(clean)  # zero gradients: PGD does not move
    assert by_square < clean - 0.4
    assert float((x_adv - x).abs().max()) <= 0.2 + 1e-6
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1


def test_l2_square_stays_on_its_sphere_and_breaks_the_masked_model():
    _, test = sklearn_digits()
    x, y = test.get_batch(torch.arange(100))
    masked = Quantised(trained_model()).eval()
    clean = accuracy(masked, x, y)
    by_pgd = accuracy(masked, pgd(masked, x, y, 1.5, norm="2", steps=20, random_start=False), y)
    x_adv = square(masked, x, y, 1.5, norm="2", queries=300)
    assert by_pgd == pytest.approx(clean)
    assert accuracy(masked, x_adv, y) < clean - 0.3
    assert float((x_adv - x).flatten(1).norm(dim=1).max()) <= 1.5 + 1e-4
    assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1


def test_the_l2_bumps_are_unit_norm_halves_of_opposite_sign():
    generator = torch.Generator().manual_seed(0)
    for side in (3, 5, 8):
        b = bump(side, side)
        assert float(b.norm()) == pytest.approx(1.0)
        assert float(b[side // 2, side // 2]) == float(b.max())  # the centre weighs most
        g = pseudo_gaussian(side, generator)
        assert float(g.norm()) == pytest.approx(1.0)
        top, bottom = g[: side // 2], g[side // 2 :]
        left, right = g[:, : side // 2], g[:, side // 2 :]
        by_rows = bool((top >= 0).all() and (bottom <= 0).all())
        assert by_rows or bool((left >= 0).all() and (right <= 0).all())


def test_queries_keep_no_autograd_graph():
    """A graph kept per query grew a 1,000-image AutoAttack evaluation to 24 GB."""
    _, test = sklearn_digits()
    x, y = test.get_batch(torch.arange(20))
    model = trained_model()
    with torch.enable_grad():
        assert margins(model, x, y).grad_fn is None
        assert square(model, x, y, 0.1, queries=5).grad_fn is None


def test_sane_settings():
    x, y = torch.rand(2, 1, 8, 8), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ConfigError, match="queries must be an integer >= 1"):
        square(trained_model(), x, y, 0.1, queries=0)
    assert torch.equal(square(trained_model(), x, y, 0.0), x)
