"""Adversarial losses: small functions of the discriminator's raw outputs.

``real`` and ``fake`` are D's outputs on real and on generated samples: logits
for the probabilistic losses (D(x) = sigmoid(logit)), unbounded scores for the
Wasserstein, least-squares and hinge losses. Every ``*_d`` function is what the
discriminator (critic) minimises, every ``*_g`` what the generator minimises;
expectations are batch means. :func:`get_loss` picks a pair by the name a
recipe uses (:data:`LOSSES`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.errors import ConfigError

LossName = Literal["minimax", "non-saturating", "wasserstein", "wgan-gp", "least-squares", "hinge"]


def minimax_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """L_D = -E[log D(x)] - E[log(1 - D(G(z)))] (Goodfellow et al. 2014, Eq. 1).

    With D = sigmoid(l): -log D = softplus(-l) and -log(1 - D) = softplus(l).
    Also the discriminator loss of the non-saturating game.
    """
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def minimax_g(fake: torch.Tensor) -> torch.Tensor:
    """L_G = E[log(1 - D(G(z)))] = -E[softplus(l)] (Goodfellow et al. 2014, Eq. 1).

    Saturates when D rejects the samples confidently (its gradient vanishes).
    """
    return -F.softplus(fake).mean()


def non_saturating_g(fake: torch.Tensor) -> torch.Tensor:
    """L_G = -E[log D(G(z))] = E[softplus(-l)] (Goodfellow et al. 2014, Sec. 3)."""
    return F.softplus(-fake).mean()


def wasserstein_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """L_D = E[f(G(z))] - E[f(x)] for a (1-Lipschitz) critic f (Arjovsky et al. 2017, Algorithm 1)."""
    return fake.mean() - real.mean()


def wasserstein_g(fake: torch.Tensor) -> torch.Tensor:
    """L_G = -E[f(G(z))] (Arjovsky et al. 2017, Algorithm 1)."""
    return -fake.mean()


def clip_weights_(module: nn.Module, clip_value: float) -> None:
    """Clamp every parameter of the critic to [-c, c] in place (Arjovsky et al. 2017, Algorithm 1)."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.clamp_(-clip_value, clip_value)


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    eps: torch.Tensor | None = None,
) -> torch.Tensor:
    """GP = E[(||grad_x f(x_hat)||_2 - 1)^2], x_hat = eps x + (1 - eps) G(z), eps ~ U[0, 1]
    per sample (Gulrajani et al. 2017, Algorithm 1). Multiply by lambda (10 in the paper).

    Args:
        critic: maps a batch of inputs to one score per sample (bind labels with a lambda).
        real, fake: equally shaped batches; ``fake`` need not be detached.
        eps: interpolation weights of shape (N,); drawn uniformly when None.
    """
    if real.shape != fake.shape:
        raise ConfigError(
            f"gradient penalty needs real and fake batches of one shape, got "
            f"{tuple(real.shape)} and {tuple(fake.shape)}."
        )
    if eps is None:
        eps = torch.rand(real.shape[0], device=real.device, dtype=real.dtype)
    eps = eps.view(-1, *([1] * (real.ndim - 1)))
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def least_squares_d(
    real: torch.Tensor, fake: torch.Tensor, a: float = 0.0, b: float = 1.0
) -> torch.Tensor:
    """L_D = 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2] (Mao et al. 2017, Eq. 2).

    Defaults: the paper's 0-1 binary coding (a = 0, b = c = 1); its other choice,
    a = -1, b = 1, c = 0, minimises the Pearson chi-squared divergence.
    """
    return 0.5 * (real - b).pow(2).mean() + 0.5 * (fake - a).pow(2).mean()


def least_squares_g(fake: torch.Tensor, c: float = 1.0) -> torch.Tensor:
    """L_G = 1/2 E[(D(G(z)) - c)^2] (Mao et al. 2017, Eq. 2)."""
    return 0.5 * (fake - c).pow(2).mean()


def hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017; Miyato et al. 2018)."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_g(fake: torch.Tensor) -> torch.Tensor:
    """L_G = -E[D(G(z))] (Lim & Ye 2017; Miyato et al. 2018)."""
    return -fake.mean()


@dataclass(frozen=True)
class GANLoss:
    """A named adversarial loss: D's and G's objectives and the critic constraint it needs.

    Attributes:
        clip_value: clamp the critic's weights to [-c, c] after every D step (WGAN).
        gp_weight: add ``gp_weight * gradient_penalty`` to D's loss (WGAN-GP).
    """

    name: str
    d: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g: Callable[[torch.Tensor], torch.Tensor]
    reference: str
    clip_value: float | None = None
    gp_weight: float | None = None


LOSSES: dict[str, GANLoss] = {
    loss.name: loss
    for loss in (
        GANLoss("minimax", minimax_d, minimax_g, "Goodfellow et al. 2014, Eq. 1"),
        GANLoss("non-saturating", minimax_d, non_saturating_g, "Goodfellow et al. 2014, Sec. 3"),
        GANLoss(
            "wasserstein",
            wasserstein_d,
            wasserstein_g,
            "Arjovsky et al. 2017, Algorithm 1 (c = 0.01)",
            clip_value=0.01,
        ),
        GANLoss(
            "wgan-gp",
            wasserstein_d,
            wasserstein_g,
            "Gulrajani et al. 2017, Algorithm 1 (lambda = 10)",
            gp_weight=10.0,
        ),
        GANLoss("least-squares", least_squares_d, least_squares_g, "Mao et al. 2017, Eq. 2"),
        GANLoss("hinge", hinge_d, hinge_g, "Lim & Ye 2017; Miyato et al. 2018"),
    )
}


def get_loss(name: str) -> GANLoss:
    """The loss registered as ``name`` (see :data:`LOSSES`)."""
    if name not in LOSSES:
        raise ConfigError(f"unknown GAN loss '{name}'; choose one of {', '.join(LOSSES)}.")
    return LOSSES[name]
