"""Helpers the GAN methods share: latent sampling and batch checking."""

from __future__ import annotations

from typing import Any, Literal

import torch

from counterfeit.gan.errors import ConfigError


def sample_latent(
    n: int,
    dim: int,
    distribution: Literal["uniform", "normal"],
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(n, dim) latent vectors, uniform on [-1, 1] or standard normal.

    With a ``generator`` the numbers are drawn on its device, then moved to ``device``.
    """
    where = generator.device if generator is not None else device
    if distribution == "uniform":
        z = torch.rand(n, dim, generator=generator, device=where).mul_(2).sub_(1)
    elif distribution == "normal":
        z = torch.randn(n, dim, generator=generator, device=where)
    else:
        raise ConfigError(f"unknown latent distribution '{distribution}'; use uniform or normal.")
    return z.to(device)


def truncated_normal(
    n: int,
    dim: int,
    threshold: float,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(n, dim) standard normal values, each one drawn again until ``|z| <= threshold``: the
    truncation trick (Brock et al., ICLR 2019, Sec. 3.1). Smaller thresholds trade variety for
    fidelity."""
    if threshold <= 0:
        raise ConfigError(f"the truncation threshold must be > 0, got {threshold}.")
    where = generator.device if generator is not None else device
    z = torch.randn(n, dim, generator=generator, device=where)
    outside = z.abs() > threshold
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator, device=where)
        outside = z.abs() > threshold
    return z.to(device)


def random_labels(
    n: int, num_classes: int, device: torch.device | str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(n,) labels drawn uniformly from [0, num_classes), on ``generator``'s device first."""
    where = generator.device if generator is not None else device
    return torch.randint(num_classes, (n,), generator=generator, device=where).to(device)


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(images, labels)`` or bare images, checked to be a float image batch."""
    images, labels = (batch[0], batch[1]) if isinstance(batch, (tuple, list)) else (batch, None)
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise ConfigError(
            "a GAN batch must be float images (N, C, H, W) in [0, 1], optionally with labels; "
            f"got {type(images).__name__}"
            + (f" of shape {tuple(images.shape)}" if isinstance(images, torch.Tensor) else "")
        )
    return images, labels
