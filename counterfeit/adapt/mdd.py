"""MDD: margin disparity discrepancy.

Zhang, Liu, Long, Jordan, "Bridging Theory and Algorithm for Domain Adaptation",
ICML 2019.

Beside the classifier ``f`` an adversarial head ``f'`` of the same shape reads the
features through a gradient reversal layer. ``f'`` is trained to agree with ``f``'s
predictions ``h_f`` on source and to disagree with them on target (Eq. 29-30); the
features, through the reversal, to make that impossible:

    min_{f'}  gamma * CE(f'(x_s), h_f(x_s)) - log(1 - softmax(f'(x_t))[h_f(x_t)])

``gamma`` is the margin factor (the paper's ``gamma = exp(rho)``; 4 in the authors' code
and TLlib). ``h_f`` is an argmax, so ``f`` learns only from the source labels. The
reversal's coefficient warms up as in the authors' code, ``0.1 * (2 / (1 + exp(-step /
1000)) - 1)``, and ``log`` is taken of ``1 - p`` shifted by 1e-6 (TLlib's ``shift_log``).

The networks are the authors' and TLlib's: the backbone's features pass a bottleneck
(linear to 1024, batch norm, ReLU, dropout 0.5) shared by both heads, each a linear layer
of 1024, ReLU, dropout 0.5 and the class layer. The bottleneck's batch norm matters: the
features maximise ``gamma`` times a cross-entropy, and without it they grew until the loss
overflowed (LeNet on MNIST -> USPS, two seeds, about step 1,100).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MARGIN = 4.0  # gamma
WIDTH = 1024  # the bottleneck's and the heads' hidden width
GRL_MAX = 0.1  # the reversal coefficient's ceiling (authors' code)
GRL_WARMUP = 1000.0  # steps setting the coefficient's rise (authors' code: max_iter)


def mdd_bottleneck(n_features: int, width: int = WIDTH) -> nn.Sequential:
    """Linear to ``width``, batch norm, ReLU, dropout 0.5 (TLlib's ``ImageClassifier``)."""
    return nn.Sequential(
        nn.Linear(n_features, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(0.5)
    )


def mdd_coefficient(step: int, high: float = GRL_MAX, warmup: float = GRL_WARMUP) -> float:
    """The reversal coefficient at ``step``: ``high * (2 / (1 + exp(-step / warmup)) - 1)``."""
    return high * (2.0 / (1.0 + math.exp(-step / warmup)) - 1.0)


def mdd_loss(
    source_logits: torch.Tensor,
    adversary_source: torch.Tensor,
    target_logits: torch.Tensor,
    adversary_target: torch.Tensor,
    margin: float = MARGIN,
) -> torch.Tensor:
    """The adversary's loss (to minimise), from the classifier's and the adversarial
    head's logits on one source and one target batch."""
    source_predictions = source_logits.detach().argmax(1)
    target_predictions = target_logits.detach().argmax(1)
    agreement = F.cross_entropy(adversary_source.float(), source_predictions)
    target_probability = F.softmax(adversary_target.float(), dim=1).gather(
        1, target_predictions[:, None]
    )
    disagreement = -torch.log((1 - target_probability + 1e-6).clamp(max=1.0)).mean()
    return margin * agreement + disagreement
