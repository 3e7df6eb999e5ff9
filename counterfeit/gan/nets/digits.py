"""The digit networks of Ganin et al., "Domain-Adversarial Training of Neural
Networks", JMLR 17(59), 2016, Fig. 4 and Sec. 5.2.2.

* MNIST architecture (MNIST -> MNIST-M): conv 5x5x32, ReLU, max-pool 2x2/2;
  conv 5x5x48, ReLU, max-pool 2x2/2. Label predictor fc100-ReLU-fc100-ReLU-fc10;
  domain classifier fc100-ReLU-fc1.
* SVHN architecture (SVHN <-> MNIST, Syn -> SVHN): conv 5x5x64, ReLU, max-pool
  3x3/2; conv 5x5x64, ReLU, max-pool 3x3/2; conv 5x5x128, ReLU. Label predictor
  fc3072-ReLU-fc2048-ReLU-fc10; domain classifier fc1024-ReLU-fc1024-ReLU-fc1.

And the LeNet that TLlib's digits benchmarks use (LeCun et al. 1998, as in ADDA, Tzeng
et al. 2017, and CDAN's digits experiments): conv 5x5x20, max-pool 2x2, ReLU; conv
5x5x50, dropout 0.5, max-pool 2x2, ReLU; then TLlib's bottleneck fc500-ReLU-dropout 0.5
(part of the features here), a linear head fc10 and a domain classifier fc500-fc500-fc1
(TLlib's has batch norm in its hidden layers; ours has none).

The paper's only preprocessing is mean subtraction; here it is the first
layer of the feature extractor (:class:`ChannelShift`), so the networks take
images in [0, 1] like everything else in counterfeit.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from counterfeit.gan.nets.blocks import ChannelShift


def ganin_mnist_features(
    in_channels: int = 3, mean: Sequence[float] | None = None
) -> nn.Sequential:
    """Feature extractor of the MNIST architecture (Ganin et al. 2016, Fig. 4a)."""
    mean = mean if mean is not None else [0.5] * in_channels
    return nn.Sequential(
        ChannelShift(mean),
        nn.Conv2d(in_channels, 32, 5),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 48, 5),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
    )


def ganin_svhn_features(in_channels: int = 3, mean: Sequence[float] | None = None) -> nn.Sequential:
    """Feature extractor of the SVHN architecture (Ganin et al. 2016, Fig. 4b)."""
    mean = mean if mean is not None else [0.5] * in_channels
    return nn.Sequential(
        ChannelShift(mean),
        nn.Conv2d(in_channels, 64, 5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 64, 5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 128, 5, padding=2),
        nn.ReLU(inplace=True),
        nn.Flatten(),
    )


def lenet_features(in_channels: int = 1, mean: Sequence[float] | None = None) -> nn.Sequential:
    """LeNet's convolutions and TLlib's 500-unit bottleneck, for 28 x 28 digits."""
    mean = mean if mean is not None else [0.5] * in_channels
    return nn.Sequential(
        ChannelShift(mean),
        nn.Conv2d(in_channels, 20, 5),
        nn.MaxPool2d(2),
        nn.ReLU(inplace=True),
        nn.Conv2d(20, 50, 5),
        nn.Dropout2d(0.5),
        nn.MaxPool2d(2),
        nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Linear(50 * 4 * 4, 500),
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
    )
