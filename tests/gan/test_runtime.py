"""model_mode: a block in train or eval mode, every module's own flag restored after."""

from torch import nn

from counterfeit.gan import EMA
from counterfeit.gan.runtime import model_mode


def flags(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def test_every_module_switches_inside_and_gets_its_own_flag_back():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.BatchNorm1d(2))
    model[1].eval()  # a mixed model: a frozen dropout inside a training network
    before = flags(model)
    with model_mode(model, False) as switched:
        assert switched and not any(flags(model))
    assert flags(model) == before
    model.eval()
    model[2].train()  # top level already in eval mode, one submodule not
    with model_mode(model, False):
        assert not any(flags(model))
    assert flags(model) == [False, False, False, True]
    with model_mode(model, True):
        assert all(flags(model))
    assert flags(model) == [False, False, False, True]


def test_modules_that_pin_their_mode_keep_it():
    model = nn.Sequential(nn.Linear(2, 2), EMA(nn.Linear(2, 2))).eval()
    with model_mode(model, True):
        assert model[0].training and model[1].training
        assert not model[1].module.training  # the average stays in eval mode


def test_programs_that_refuse_a_mode_and_plain_callables():
    class Fixed(nn.Module):
        def train(self, mode: bool = True):
            raise NotImplementedError

    fixed = Fixed()
    with model_mode(fixed, False) as switched:
        assert not switched and fixed.training
    with model_mode(lambda x: x, False) as switched:
        assert switched
