"""Each sanity flag fires on a model built to deserve it, and none on a plain trained CNN."""

import pytest
import torch
from torch import nn

from counterfeit.robust.sanity import (
    at_chance,
    black_box_beats_white_box,
    model_flags,
    rises_with_eps,
)
from tests.robust.conftest import Quantised, sklearn_digits, trained_model


class Noisy(nn.Module):
    """Adds fresh noise to its input on every call, in eval mode too."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x + 0.05 * torch.randn_like(x))


class Softmaxed(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).softmax(1)


class Constant(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(len(x), 10) + 0 * x.flatten(1).sum(1, keepdim=True)


@pytest.fixture(scope="module")
def batch():
    _, test = sklearn_digits()
    return test.get_batch(torch.arange(100))


@pytest.mark.parametrize(
    "wrap, code",
    [
        (Noisy, "randomized"),
        (Softmaxed, "probabilities"),
        (Quantised, "zero-gradients"),
        (lambda _: Constant(), "chance"),
    ],
)
def test_each_model_flag_fires_on_its_model(batch, wrap, code):
    x, y = batch
    codes = [flag.code for flag in model_flags(wrap(trained_model()).eval(), x, y)]
    assert code in codes, codes


def test_a_plain_trained_cnn_raises_no_flag(batch):
    x, y = batch
    assert model_flags(trained_model(), x, y) == []


def test_result_flags():
    assert rises_with_eps([0.0, 0.1, 0.2], [0.9, 0.5, 0.6]).code == "rises-with-eps"
    assert rises_with_eps([0.0, 0.1, 0.2], [0.9, 0.5, 0.5]) is None
    white = torch.tensor([True, True, False])
    assert black_box_beats_white_box(white, torch.tensor([True, False, False])) is not None
    assert black_box_beats_white_box(white, torch.tensor([True, True, False])) is None
    assert at_chance(0.12, 10) is not None and at_chance(0.9, 10) is None
