"""CDAN and CDAN+E: conditional domain-adversarial networks.

Long, Cao, Wang, Jordan, "Conditional Adversarial Domain Adaptation", NeurIPS 2018.

DANN's domain discriminator sees only the features ``f``; CDAN's sees them conditioned on
the classifier's prediction ``g = softmax(logits)`` through the multilinear map
``T(f, g) = g (x) f`` (the flattened outer product, Eq. 4), so it can align the joint
distribution of features and classes, multimodal structure included. When ``d_f x C`` is
too large, the randomized map ``T(f, g) = (R_f f) . (R_g g) / sqrt(d)`` with fixed
Gaussian ``R_f``, ``R_g`` stands in (Eq. 7; its inner products approximate the full
map's). CDAN+E weights each example's domain loss by ``w = 1 + exp(-H(g))`` (Eq. 9), so
examples the classifier is sure of count more.

Details as in the authors' code (thuml/CDAN): ``g`` enters the map as a constant (only
the features receive the reversed gradient), the gradient is reversed at the
discriminator's input, the domain loss is the binary cross-entropy averaged over the
combined source + target batch, and the entropy weights are normalised to sum to one
within each domain. One deviation: the weights are constants here (TLlib's choice); the
authors' code also sends a reversed gradient through the entropy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.adapt.evaluate import entropy
from counterfeit.adapt.grl import grad_reverse
from counterfeit.gan.nets.blocks import mlp

RANDOM_DIM = 1024  # the randomized map's output size (the paper's d)


def multilinear_map(features: torch.Tensor, probabilities: torch.Tensor) -> torch.Tensor:
    """``g (x) f`` flattened: (B, d_f), (B, C) -> (B, C * d_f), element ``[c * d_f + i] =
    g_c f_i`` (Eq. 4)."""
    return torch.bmm(probabilities.unsqueeze(2), features.unsqueeze(1)).flatten(1)


class RandomizedMultilinear(nn.Module):
    """``(R_f f) . (R_g g) / sqrt(d)`` with fixed standard-Gaussian ``R_f``, ``R_g`` (Eq. 7).

    The matrices are buffers: drawn once, saved with the model, never trained.
    """

    def __init__(self, n_features: int, num_classes: int, output_dim: int = RANDOM_DIM) -> None:
        super().__init__()
        self.output_dim = output_dim
        self.register_buffer("feature_projection", torch.randn(n_features, output_dim))
        self.class_projection: torch.Tensor
        self.register_buffer("class_projection", torch.randn(num_classes, output_dim))

    def forward(self, features: torch.Tensor, probabilities: torch.Tensor) -> torch.Tensor:
        projected = (features @ self.feature_projection) * (probabilities @ self.class_projection)
        return projected / math.sqrt(self.output_dim)


def entropy_weights(probabilities: torch.Tensor, n_source: int) -> torch.Tensor:
    """CDAN+E's ``1 + exp(-H(g))`` per example (Eq. 9), as constants, each domain's
    weights divided by their sum (the authors' code)."""
    with torch.no_grad():
        weights = 1 + torch.exp(-entropy(probabilities.float()))
        source, target = weights[:n_source], weights[n_source:]
        return torch.cat([source / source.sum(), target / target.sum()])


class ConditionalAdversary(nn.Module):
    """The domain discriminator on ``T(f, g)``, behind a gradient reversal layer.

    Args:
        n_features: ``d_f``, the feature extractor's output size.
        num_classes: ``C``.
        hidden: the discriminator's hidden widths.
        randomized: use the randomized map (Eq. 7) instead of the full ``C * d_f`` one.
        random_dim: the randomized map's output size.
    """

    def __init__(
        self,
        n_features: int,
        num_classes: int,
        hidden: Sequence[int],
        *,
        randomized: bool = False,
        random_dim: int = RANDOM_DIM,
    ) -> None:
        super().__init__()
        self.randomized = (
            RandomizedMultilinear(n_features, num_classes, random_dim) if randomized else None
        )
        width = random_dim if randomized else n_features * num_classes
        self.discriminator = mlp(width, hidden, 1)

    def conditioned(self, features: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """``T(f, g)`` with ``g = softmax(logits)`` taken as a constant."""
        probabilities = F.softmax(logits.detach().float(), dim=1).to(features.dtype)
        if self.randomized is not None:
            return self.randomized(features, probabilities)
        return multilinear_map(features, probabilities)

    def forward(self, features: torch.Tensor, logits: torch.Tensor, lambda_: float) -> torch.Tensor:
        """Domain logits (B,), positive for source; the features' gradient reversed by
        ``lambda_``."""
        conditioned = grad_reverse(self.conditioned(features, logits), lambda_)
        return self.discriminator(conditioned).squeeze(1)


def conditional_domain_loss(
    domain_logits: torch.Tensor, n_source: int, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Binary cross-entropy of source (label 1) vs target (label 0) over the combined
    batch: a plain mean (CDAN) or weighted by ``weights`` (CDAN+E)."""
    labels = torch.zeros_like(domain_logits)
    labels[:n_source] = 1
    losses = F.binary_cross_entropy_with_logits(domain_logits.float(), labels, reduction="none")
    if weights is None:
        return losses.mean()
    return (weights * losses).sum() / weights.sum()
