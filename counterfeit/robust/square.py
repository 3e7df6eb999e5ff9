"""Square Attack: a score-based attack that needs no gradient (L-inf and L2).

Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box
adversarial attack via random search", ECCV 2020, Algorithms 1 and 2, as AutoAttack
runs it (the authors' ``autoattack/square.py``): the margin loss
``z_y - max_{j != y} z_j``, a start of vertical stripes of ``+-eps``, then at each query
one square window of side ``s`` whose every channel is set to ``+-eps`` (the sign drawn
per channel), kept where it lowers the margin. The window's area is a fraction ``p``
of the image, halved along the paper's schedule (rescaled to the query budget). As in
the reference, one window position and one set of signs are drawn per query and
shared by the images still being attacked; unlike the reference, the window may also
sit at the last row and column (its random integer leaves them out).

The L2 attack (the paper's Algorithm 3, the reference's L2 branch) starts from a grid of
``+-`` "pseudo-Gaussian" bumps (:func:`bump`, each half of a square of opposite sign)
scaled to the eps-sphere; at each query it moves the perturbation's mass of a second
random window into a first one, adds a fresh bump there, and rescales that window so the
whole perturbation stays on the sphere (before clipping to [0, 1]).

Because it only reads the model's scores it is blind to gradient masking: where it
beats the gradient attacks on an image, their number was not the model's robustness.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.robust.attacks import (
    DEFAULT_EPS,
    Norm,
    _attack_context,
    _check,
    _labels,
    _norm,
    check_count,
)
from counterfeit.robust.models import checked_logits, logit_margin

P_INIT = 0.8
SCHEDULE = (
    (10, 1),
    (50, 2),
    (200, 4),
    (500, 8),
    (1000, 16),
    (2000, 32),
    (4000, 64),
    (6000, 128),
    (8000, 256),
)


def square_fraction(query: int, queries: int, p_init: float = P_INIT) -> float:
    """The window's area as a fraction of the image at ``query`` (0-based) of ``queries``.

    The paper's schedule for 10,000 queries (``p_init`` until query 10, then halved at
    50, 200, 500, 1,000, 2,000, 4,000, 6,000 and 8,000), rescaled to the budget.
    """
    at = int(query / queries * 10000)
    divisor = 512
    for end, value in SCHEDULE:
        if at <= end:
            divisor = value
            break
    return p_init / divisor


def margins(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``z_y - max_{j != y} z_j`` per image: negative once it is misclassified.

    Computed without autograd even where gradients are on: the attack keeps these values
    across thousands of queries, and a graph attached to each would be kept with them.
    """
    with torch.no_grad():
        return logit_margin(checked_logits(model, x).float(), y)


@torch.no_grad()
def square(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = DEFAULT_EPS,
    *,
    norm: Norm | float = "inf",
    queries: int = 5000,
    p_init: float = P_INIT,
    seed: int = 0,
) -> torch.Tensor:
    """Square Attack (L-inf), untargeted, on images in [0, 1].

    Args:
        model: maps images in ``[0, 1]`` (N, C, H, W) to logits; only its outputs are read.
        x: the images.
        y: the true labels (None: the model's predictions).
        eps: the budget in pixel units.
        norm: ``"inf"`` or ``"2"`` (eps is then the L2 radius over (C, H, W)).
        queries: model calls per image at most (AutoAttack's standard: 5,000).
        p_init: the first window's area as a fraction of the image (paper: 0.8 for L-inf).
        seed: seeds the start, the windows and the signs.

    Returns:
        Adversarial images of ``x``'s shape and dtype, within the eps-ball and [0, 1]:
        per image the point of lowest margin found (misclassified where the margin is < 0).
    """
    norm = _norm(str(norm))
    _check(model, x, eps, (0.0, 1.0), False, y, None)
    check_count("queries", queries)
    if not 0 < p_init <= 1:
        raise ConfigError(f"p_init must be in (0, 1], got {p_init!r}.")
    if eps == 0:
        return x.detach().clone()
    generator = torch.Generator(device=x.device).manual_seed(seed)

    def signs(*shape: int) -> torch.Tensor:
        draw = torch.randint(0, 2, shape, generator=generator, device=x.device)
        return draw.float() * 2 - 1

    with _attack_context(model, False):
        x0 = x.detach().float()
        y = _labels(model, x, y)
        if norm == "2":
            return _square_l2(model, x0, y, eps, queries, p_init, generator).to(x.dtype)
        n, c, h, w = x0.shape
        best = (x0 + eps * signs(n, c, 1, w)).clamp(0, 1)
        margin = margins(model, best, y)
        for query in range(queries):
            todo = (margin > 0).nonzero().squeeze(1)
            if len(todo) == 0:
                break
            p = square_fraction(query, queries, p_init)
            side = min(max(round(math.sqrt(p * h * w)), 1), h, w)
            top = int(torch.randint(0, h - side + 1, (1,), generator=generator, device=x.device))
            left = int(torch.randint(0, w - side + 1, (1,), generator=generator, device=x.device))
            candidate = best[todo].clone()
            candidate[:, :, top : top + side, left : left + side] += 2 * eps * signs(c, 1, 1)
            origin = x0[todo]
            candidate = torch.minimum(torch.maximum(candidate, origin - eps), origin + eps)
            candidate = candidate.clamp(0, 1)
            new_margin = margins(model, candidate, y[todo])
            better = new_margin < margin[todo]
            best[todo[better]] = candidate[better]
            margin[todo[better]] = new_margin[better]
        return best.to(x.dtype)


def bump(height: int, width: int) -> torch.Tensor:
    """Nested rectangles of weight ``1 / k^2`` around the centre, unit L2 norm (the
    reference's ``eta_rectangles``)."""
    out = torch.zeros(height, width)
    row, col = height // 2, width // 2
    for k in range(max(height // 2 + 1, width // 2 + 1)):
        out[
            max(row, 0) : min(row + 2 * k + 1, height), max(col, 0) : min(col + 2 * k + 1, width)
        ] += 1.0 / (k + 1) ** 2
        row, col = row - 1, col - 1
    return out / out.norm()


def pseudo_gaussian(side: int, generator: torch.Generator) -> torch.Tensor:
    """A square of two :func:`bump` halves of opposite sign, at random transposed, unit
    L2 norm (the reference's ``eta``)."""
    out = torch.cat([bump(side // 2, side), -bump(side - side // 2, side)])
    out = out / out.norm()
    if float(torch.rand(1, generator=generator, device=generator.device)) > 0.5:
        out = out.T
    return out


def _square_l2(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    queries: int,
    p_init: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """The L2 Square Attack on float images ``x`` (see the module docstring)."""
    n, c, h, w = x.shape
    device = x.device

    def signs(*shape: int) -> torch.Tensor:
        return torch.randint(0, 2, shape, generator=generator, device=device).float() * 2 - 1

    def norms(delta: torch.Tensor) -> torch.Tensor:
        return delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)

    def position(side: int) -> int:
        return int(torch.randint(0, h - side + 1, (1,), generator=generator, device=device))

    side = max(h // 5, 1)
    start = torch.zeros_like(x)
    offset = (h - side * 5) // 2
    for top in range(offset, offset + side * (h // side), side):
        for left in range(offset, offset + side * (w // side), side):
            if top + side <= h and left + side <= w:
                start[:, :, top : top + side, left : left + side] += pseudo_gaussian(
                    side, generator
                ).to(device) * signs(n, c, 1, 1)
    best = (x + eps * start / (norms(start) + 1e-12)).clamp(0, 1)
    margin = margins(model, best, y)
    for query in range(queries):
        todo = (margin > 0).nonzero().squeeze(1)
        if len(todo) == 0:
            break
        origin, delta = x[todo], best[todo] - x[todo]
        p = square_fraction(query, queries, p_init)
        side = max(round(math.sqrt(p * h * w)), 3)
        side = min(side + 1 if side % 2 == 0 else side, h, w)
        top, left, top2, left2 = position(side), position(side), position(side), position(side)
        first = (slice(None), slice(None), slice(top, top + side), slice(left, left + side))
        second = (slice(None), slice(None), slice(top2, top2 + side), slice(left2, left2 + side))
        window_norm = delta[first].pow(2).sum((-2, -1), keepdim=True).sqrt()
        in_windows = torch.zeros_like(delta)
        in_windows[first], in_windows[second] = 1.0, 1.0
        image_norm, windows_norm = norms(delta), norms(delta * in_windows)
        fresh = pseudo_gaussian(side, generator).to(device) * signs(len(todo), c, 1, 1)
        fresh = fresh + delta[first] / (1e-12 + window_norm)
        room = ((eps**2 - image_norm**2).clamp(min=0) / c + windows_norm**2).sqrt()
        fresh = fresh / (1e-12 + fresh.pow(2).sum((-2, -1), keepdim=True).sqrt()) * room
        delta[second] = 0.0
        delta[first] = fresh
        candidate = (origin + eps * delta / (norms(delta) + 1e-12)).clamp(0, 1)
        new_margin = margins(model, candidate, y[todo])
        better = new_margin < margin[todo]
        best[todo[better]] = candidate[better]
        margin[todo[better]] = new_margin[better]
    return best
