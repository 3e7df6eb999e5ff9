"""Square Attack: a score-based attack that needs no gradient (L-inf).

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

Because it only reads the model's scores it is blind to gradient masking: where it
beats the gradient attacks on an image, their number was not the model's robustness.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.robust.attacks import DEFAULT_EPS, Norm, _attack_context, _check, _labels, _norm
from counterfeit.robust.models import checked_logits

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
    """``z_y - max_{j != y} z_j`` per image: negative once it is misclassified."""
    logits = checked_logits(model, x).float()
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf")).amax(1)
    return true - others


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
        eps: the L-inf budget in pixel units.
        norm: ``"inf"`` (the L2 variant is not implemented: a ConfigError says so).
        queries: model calls per image at most (AutoAttack's standard: 5,000).
        p_init: the first window's area as a fraction of the image (paper: 0.8 for L-inf).
        seed: seeds the start, the windows and the signs.

    Returns:
        Adversarial images of ``x``'s shape and dtype, within the eps-ball and [0, 1]:
        per image the point of lowest margin found (misclassified where the margin is < 0).
    """
    if _norm(str(norm)) != "inf":
        raise ConfigError("square: only the L-inf attack is implemented (norm='inf').")
    _check(model, x, eps, (0.0, 1.0), False, y, None)
    if isinstance(queries, bool) or not isinstance(queries, int) or queries < 1:
        raise ConfigError(f"queries must be an integer >= 1, got {queries!r}.")
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
