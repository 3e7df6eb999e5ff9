"""The MNIST classifiers the patch benchmark attacks (``--arch``): Wong et al. 2020's network
(counterfeit's ``digits_cnn``, the default) and four common alternatives."""

from __future__ import annotations

import torch

from counterfeit.robust import digits_cnn


def pytorch_example_cnn() -> torch.nn.Module:
    """The CNN of PyTorch's MNIST example (pytorch/examples, mnist/main.py): conv3x3-32, conv3x3-64,
    max-pool 2, dropout 0.25, fc 128, dropout 0.5, fc 10."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(9216, 128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, 10),
    )


def lenet5() -> torch.nn.Module:
    """LeCun et al. 1998's LeNet-5 (tanh, average pooling; the input padded to 32 px)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10),
    )  # fmt: skip


def batchnorm_cnn() -> torch.nn.Module:
    """A common MNIST CNN with BatchNorm: two conv3x3-BN-ReLU-maxpool stages (32, 64), fc 128."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 49, 128), nn.ReLU(), nn.Linear(128, 10),
    )  # fmt: skip


def gap_cnn() -> torch.nn.Module:
    """An all-convolutional MNIST CNN with global average pooling (Lin et al. 2014's "Network in
    Network" head): conv3x3-BN-ReLU at 32, 64 (stride 2), 128 (stride 2), global average pool, fc 10.
    Its prediction is nearly invariant to where a feature appears."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10),
    )  # fmt: skip


DEFAULT_ARCH = "wong"
ARCHS = {
    DEFAULT_ARCH: digits_cnn,
    "pytorch-example": pytorch_example_cnn,
    "lenet5": lenet5,
    "batchnorm": batchnorm_cnn,
    "gap": gap_cnn,
}
ARCH_NAMES = {
    "wong": "Wong et al. 2020's MNIST CNN (two strided convs, no pooling)",
    "pytorch-example": "PyTorch's MNIST example CNN (max-pooling, dropout)",
    "lenet5": "LeNet-5 (tanh, average pooling)",
    "batchnorm": "a BatchNorm CNN (conv-BN-ReLU-maxpool x2, fc 128)",
    "gap": "an all-convolutional CNN with global average pooling (BN, 3 convs, GAP, fc 10)",
}
