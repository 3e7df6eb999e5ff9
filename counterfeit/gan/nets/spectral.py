"""Spectral normalisation and orthogonal regularisation: the two weight constraints of BigGAN
(Brock, Donahue & Simonyan, "Large Scale GAN Training for High Fidelity Natural Image
Synthesis", ICLR 2019, Sec. 3 and 3.1).

* :func:`spectral_norm` (Miyato et al., ICLR 2018): the weight divided by its largest
  singular value, estimated by one power iteration per training forward pass (torch's
  parametrisation, with BigGAN's eps 1e-6); in G and D alike, as in BigGAN.
* :func:`orthogonal_regularization` (BigGAN Eq. 3): ``beta * ||W W^T * (1 - I)||_F^2`` summed
  over weight matrices (each weight viewed as (out, rest)), with beta 1e-4. Only the
  off-diagonal of the Gram matrix is penalised, so filters may keep their norms. The
  authors' code adds ``2 beta (W W^T * (1 - I)) W`` to the gradient, half the gradient of
  Eq. 3 (``4 beta (...) W``); this function is Eq. 3 as written, as a loss for autograd.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.utils import parametrizations

SPECTRAL_EPS = 1e-6


def spectral_norm(module: nn.Module, power_iterations: int = 1) -> nn.Module:
    """``module`` (a Linear, Conv or Embedding) with its weight spectrally normalised."""
    return parametrizations.spectral_norm(
        module, n_power_iterations=power_iterations, eps=SPECTRAL_EPS
    )


def orthogonal_regularization(
    module: nn.Module, beta: float = 1e-4, exclude: Iterable[nn.Parameter] = ()
) -> torch.Tensor:
    """BigGAN's Eq. 3 over every weight of ``module`` with two or more dimensions (biases,
    gains and the parameters in ``exclude``, e.g. the shared class embedding, are left out)."""
    skipped = {id(p) for p in exclude}
    total = torch.zeros(())
    for parameter in module.parameters():
        if parameter.ndim < 2 or id(parameter) in skipped or not parameter.requires_grad:
            continue
        w = parameter.flatten(1)
        gram = w @ w.T
        off_diagonal = gram * (1 - torch.eye(len(gram), device=gram.device, dtype=gram.dtype))
        total = total.to(w) + off_diagonal.pow(2).sum()
    return beta * total
