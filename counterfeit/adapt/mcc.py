"""MCC: minimum class confusion.

Jin, Wang, Long, Wang, "Minimum Class Confusion for Versatile Domain Adaptation",
ECCV 2020.

No adversary: on each target batch, the classifier's class predictions at temperature
``T`` (Eq. 1) give a class-correlation matrix ``C = Y^T W Y`` (Eq. 2-5) in which each
example is weighted by its certainty, ``W_ii = B (1 + exp(-H(y_i))) / sum_j (1 +
exp(-H(y_j)))`` (the entropy ``H`` taken as a constant); each column of ``C`` is divided
by its sum (category normalisation, Eq. 6) and the loss is the mean over classes of the
off-diagonal mass (Eq. 7): how often the classifier confuses one class with another.
The method's objective is the source cross-entropy plus ``mu`` times this loss (Eq. 8;
the paper's ``T = 2.5``, ``mu = 1``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from counterfeit.adapt.evaluate import entropy
from counterfeit.gan.errors import ConfigError

TEMPERATURE = 2.5


def mcc_loss(logits: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """The class-confusion loss (Eq. 7) of one batch of target ``logits`` (B x K)."""
    if temperature <= 0:
        raise ConfigError(f"MCC's temperature must be > 0, got {temperature}.")
    batch, classes = logits.shape
    probabilities = F.softmax(logits.float() / temperature, dim=1)
    with torch.no_grad():
        certainty = 1 + torch.exp(-entropy(probabilities))
        weights = batch * certainty / certainty.sum()
    confusion = (probabilities * weights[:, None]).T @ probabilities
    confusion = confusion / confusion.sum(0, keepdim=True)
    return (confusion.sum() - confusion.trace()) / classes
