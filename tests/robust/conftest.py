"""Shared by the robustness tests: a small classifier trained in a few seconds."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from counterfeit.gan.data import DomainSpec, ImageTensors, build_domain
from counterfeit.robust import digits_cnn


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
