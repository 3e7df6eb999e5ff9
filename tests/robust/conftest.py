"""Shared by the robustness tests: a small classifier trained in a few seconds."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from counterfeit.gan import Trainer, TrainerConfig, TrainResult
from counterfeit.gan.data import DomainSpec, ImageTensors, InfiniteLoader, build_domain
from counterfeit.robust import AdversarialPatch, AdvGAN, digits_cnn

TARGET = 3  # the adversarial patches' target class
ADVGAN_EPS = 0.25


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run 10x faster on one thread than on two when the CPU is shared."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@functools.cache
def sklearn_digits() -> tuple[ImageTensors, ImageTensors]:
    """scikit-learn's 8x8 digits, grey, as (train, test)."""
    spec = DomainSpec(name="sklearn-digits")
    return build_domain(spec, "train", 8, channels=1), build_domain(spec, "test", 8, channels=1)


@functools.cache
def _trained_state() -> dict[str, torch.Tensor]:
    train, _ = sklearn_digits()
    torch.manual_seed(0)
    model = digits_cnn(1, 10, 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(250):
        x, y = train.get_batch(torch.randint(len(train), (64,), generator=generator))
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


def trained_model() -> torch.nn.Module:
    """A fresh copy of a digits CNN trained on 8x8 digits (about 97% test accuracy), in eval mode."""
    model = digits_cnn(1, 10, 8)
    model.load_state_dict(_trained_state())
    return model.eval()


@functools.cache
def trained_advgan() -> tuple[AdvGAN, torch.nn.Module, dict[str, torch.Tensor], TrainResult]:
    """An AdvGAN (eps 0.25) trained for a few seconds against a fresh :func:`trained_model`:
    (advgan, the attacked model, its weights before training, the training result)."""
    train, _ = sklearn_digits()
    model = trained_model()
    torch.manual_seed(0)
    advgan = AdvGAN(model, eps=ADVGAN_EPS, channels=1, image_size=8, lr=2e-3)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    config = TrainerConfig(max_steps=150, progress=False, log_every=50, seed=0)
    result = Trainer(advgan, InfiniteLoader(train, 64, seed=0), config).fit()
    advgan.cpu(), model.cpu()  # training left both on its device (CUDA when present)
    return advgan, model, initial, result


def make_patch(model: torch.nn.Module | None = None, **kwargs) -> AdversarialPatch:
    """An untrained patch toward :data:`TARGET` with small, fast settings (``kwargs`` override)."""
    options = dict(area=0.3, scale=(0.9, 1.1), rotation=10.0, steps=80, batch_size=32, lr=0.3)
    options.update(progress=False, seed=0)
    options.update(kwargs)
    return AdversarialPatch(model if model is not None else trained_model(), TARGET, **options)


@functools.cache
def fitted_patch(area: float = 0.3) -> AdversarialPatch:
    """A patch of ``area`` trained on the 8x8 digits (shared: do not modify it)."""
    train, _ = sklearn_digits()
    return make_patch(area=area).fit(train)


class Quantised(torch.nn.Module):
    """A classifier behind a rounding of its input to 8 grey levels: zero input gradient
    everywhere (gradient masking by construction)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(torch.round(x * 7) / 7)
