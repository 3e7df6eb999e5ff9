"""Auto-PGD: PGD with a step size that tunes itself, CE and DLR losses, L-inf and L2.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", ICML 2020, Algorithm 1 (APGD) and Sec. 4 (the DLR
loss and its targeted form, APGD-T). The reference is the authors'
``autoattack/autopgd_base.py``; this module follows it where the paper leaves a
detail open:

* start: ``x + eps * t / ||t||`` with ``t ~ U(-1, 1)`` (L-inf, so the start lies on
  the ball's surface along its largest coordinate) or ``t ~ N(0, I)`` (L2), clipped
  to the image range; step size ``2 * eps`` per image;
* the step: ``z = P(x_k + eta * s(grad))`` (``s`` the sign for L-inf, the unit L2
  direction for L2), then ``x_{k+1} = P(x_k + 0.75 (z - x_k) + 0.25 (x_k - x_{k-1}))``
  (no momentum on the first step);
* checkpoints at ``w_j = ceil(p_j * N)`` with ``p_0 = 0``, ``p_1 = 0.22``,
  ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`` (see :func:`checkpoints`); at
  each, an image's step size halves, and it restarts from its best point, when
  (1) its loss rose on at most ``rho = 0.75`` of the steps since the last checkpoint,
  or (2) its step size was not halved at the last checkpoint and its best loss has
  not risen since (see :func:`halve_step`).

One deviation from the reference, toward the paper: condition (1) counts the
increases between consecutive losses of the window, the first compared with the loss
at the window's start; the reference compares the very first step's loss with an
unfilled zero (which counts as an increase for CE, never for the negative DLR).

An image counts as broken as soon as an iterate is misclassified; :func:`apgd`
returns, per image, the first such iterate or else the iterate of highest loss.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.robust.attacks import (
    DEFAULT_EPS,
    Norm,
    _attack_context,
    _check,
    _check_labels,
    _clip,
    _labels,
    _norm,
    _project,
    _steepest_ascent,
    check_count,
)
from counterfeit.robust.models import checked_logits

Loss = Literal["ce", "dlr"]
RHO = 0.75
MOMENTUM = 0.75


def checkpoints(steps: int) -> list[int]:
    """The iterations after which APGD checks its step size: ``ceil(p_j * steps)``, j >= 1.

    ``p_0 = 0``, ``p_1 = 0.22``, ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``
    (Croce & Hein 2020, Sec. 3.2), taken in whole iterations the way the authors' code
    counts them: a first window of ``max(int(0.22 N), 1)``, each next one
    ``max(int(0.03 N), 1)`` shorter, down to ``max(int(0.06 N), 1)``. For 100 steps:
    22, 41, 57, 70, 80, 87, 93, 99.
    """
    window = max(int(0.22 * steps), 1)
    shrink, shortest = max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    marks, at = [], window
    while at <= steps:
        marks.append(at)
        window = max(window - shrink, shortest)
        at += window
    return marks


def halve_step(
    increases: torch.Tensor,
    window: int,
    halved_last: torch.Tensor,
    best_at_last: torch.Tensor,
    best_now: torch.Tensor,
    rho: float = RHO,
) -> torch.Tensor:
    """Which images halve their step size at a checkpoint (Algorithm 1's two conditions).

    Args:
        increases: per image, how many of the window's ``window`` steps raised the loss.
        window: the steps since the last checkpoint.
        halved_last: per image, whether it halved at the last checkpoint.
        best_at_last, best_now: per image, the best loss then and now.
        rho: condition (1)'s fraction.

    Returns:
        A bool tensor: condition (1) ``increases <= rho * window``, or condition (2)
        ``not halved_last and best_now <= best_at_last``.
    """
    oscillating = increases <= rho * window
    stalled = ~halved_last & (best_at_last >= best_now)
    return oscillating | stalled


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Difference of Logits Ratio, per image (Croce & Hein 2020, Eq. 6), to maximise.

    ``-(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3)`` with ``z`` sorted decreasingly: shift-
    and scale-invariant in the logits, so a model cannot mask it by rescaling them.
    """
    ordered, _ = logits.sort(dim=1)
    true = logits.gather(1, y[:, None]).squeeze(1)
    top_is_true = logits.argmax(1) == y
    best_other = torch.where(top_is_true, ordered[:, -2], ordered[:, -1])
    return -(true - best_other) / (ordered[:, -1] - ordered[:, -3] + 1e-12)


def targeted_dlr_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Targeted DLR, per image (Croce & Hein 2020, Eq. 7), to maximise:
    ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)``."""
    ordered, _ = logits.sort(dim=1)
    true = logits.gather(1, y[:, None]).squeeze(1)
    aimed = logits.gather(1, target[:, None]).squeeze(1)
    scale = ordered[:, -1] - 0.5 * (ordered[:, -3] + ordered[:, -4]) + 1e-12
    return -(true - aimed) / scale


def apgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = DEFAULT_EPS,
    *,
    norm: Norm | float = "inf",
    loss: Loss = "ce",
    targeted: bool = False,
    n_target_classes: int = 9,
    steps: int = 100,
    restarts: int = 1,
    rho: float = RHO,
    eot_iter: int = 1,
    seed: int = 0,
    clip: tuple[float, float] | None = (0.0, 1.0),
) -> torch.Tensor:
    """APGD (Croce & Hein 2020): untargeted with the CE or DLR loss, or APGD-T.

    Untargeted, ``restarts`` runs from random starts; each runs on the images no run
    has broken yet. With ``targeted`` it is AutoAttack's APGD-T: for each of the
    ``n_target_classes`` classes ranked second, third, ... by the model on the clean
    image, ``restarts`` runs of the targeted DLR loss toward that class; an image is
    broken when it is misclassified (whatever the class). Images the model already
    misclassifies are returned unchanged.

    Args:
        model: maps images in ``[0, 1]`` (N, C, H, W) to logits.
        x: the images, inside ``clip``.
        y: the true labels (None: the model's predictions).
        eps: the budget in pixel units: L-inf, or the L2 norm over (C, H, W).
        norm: ``"inf"`` or ``"2"`` (also ``"Linf"``, ``"L2"``).
        loss: ``"ce"`` or ``"dlr"`` (untargeted; APGD-T always uses the targeted DLR).
        targeted: run APGD-T instead.
        n_target_classes: APGD-T's target classes (AutoAttack's standard: 9).
        steps: iterations per run (AutoAttack's standard: 100).
        restarts: random starts (per target class for APGD-T).
        rho: the oscillation threshold of the step-size rule.
        eot_iter: forward-backward passes averaged per step (expectation over
            transformation, Athalye et al. 2018) for a randomized model; AutoAttack's
            ``rand`` version uses 20.
        seed: seeds the random starts.
        clip: the image range.

    Returns:
        Adversarial images of ``x``'s shape and dtype, within the eps-ball and ``clip``.
    """
    norm = _norm(str(norm))
    lo, hi = _check(model, x, eps, clip, False, y, None)
    if loss not in ("ce", "dlr"):
        raise ConfigError(f"loss must be 'ce' or 'dlr', got {loss!r}.")
    for name, value in (("steps", steps), ("restarts", restarts), ("eot_iter", eot_iter)):
        check_count(name, value)
    if eps == 0:
        return x.detach().clone()
    generator = torch.Generator(device=x.device).manual_seed(seed)
    with _attack_context(model, False):
        x0 = x.detach().float()
        y = _labels(model, x, y)
        with torch.no_grad():
            clean_logits = checked_logits(model, x0).float()
        _check_labels(y, clean_logits.shape[1])
        needed = 4 if targeted else (3 if loss == "dlr" else 2)
        if clean_logits.shape[1] < needed:
            what = "APGD-T" if targeted else f"the {loss.upper()} loss"
            raise ConfigError(
                f"{what} needs at least {needed} classes, the model has {clean_logits.shape[1]}."
            )
        best = x0.clone()
        robust = clean_logits.argmax(1) == y
        if targeted:
            ranked = clean_logits.argsort(dim=1, descending=True)
            n_targets = min(int(n_target_classes), clean_logits.shape[1] - 1)
            targets = [ranked[:, rank] for rank in range(1, n_targets + 1)]
        else:
            targets = [None]
        for target in targets:
            for _ in range(restarts):
                todo = robust.nonzero().squeeze(1)
                if len(todo) == 0:
                    break
                aim = None if target is None else target[todo]
                adv, broken = _run(
                    model,
                    x0[todo],
                    y[todo],
                    aim,
                    eps,
                    norm,
                    loss,
                    steps,
                    rho,
                    lo,
                    hi,
                    generator,
                    eot_iter,
                )
                best[todo] = adv
                robust[todo[broken]] = False
        return best.to(x.dtype)


def apgd_ce(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = DEFAULT_EPS,
    *,
    norm: Norm | float = "inf",
    steps: int = 100,
    restarts: int = 1,
    seed: int = 0,
) -> torch.Tensor:
    """APGD-CE, AutoAttack's first stage: untargeted :func:`apgd` on the cross-entropy."""
    return apgd(model, x, y, eps, norm=norm, loss="ce", steps=steps, restarts=restarts, seed=seed)


def apgd_t(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = DEFAULT_EPS,
    *,
    norm: Norm | float = "inf",
    n_target_classes: int = 9,
    steps: int = 100,
    restarts: int = 1,
    seed: int = 0,
) -> torch.Tensor:
    """APGD-T, AutoAttack's second stage: :func:`apgd` with the targeted DLR loss toward
    each of the ``n_target_classes`` runner-up classes. ``y`` holds the true labels: the
    attack picks its targets itself, and succeeds when the image is misclassified."""
    return apgd(
        model,
        x,
        y,
        eps,
        norm=norm,
        targeted=True,
        n_target_classes=n_target_classes,
        steps=steps,
        restarts=restarts,
        seed=seed,
    )


def _run(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor | None,
    eps: float,
    norm: Norm,
    loss: Loss,
    steps: int,
    rho: float,
    lo: float | None,
    hi: float | None,
    generator: torch.Generator,
    eot_iter: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One APGD run from a random start: (per image the first misclassified iterate or
    else the best-loss one, which images were misclassified)."""

    def project(point: torch.Tensor) -> torch.Tensor:
        return _clip(x + _project(point - x, eps, norm), lo, hi)

    def evaluate(point: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Loss, input gradient (each averaged over ``eot_iter`` passes), misclassified."""
        point = point.detach().requires_grad_(True)
        total_value, total_grad = 0.0, 0.0
        for _ in range(eot_iter):
            logits = checked_logits(model, point).float()
            if target is not None:
                per_image = targeted_dlr_loss(logits, y, target)
            elif loss == "dlr":
                per_image = dlr_loss(logits, y)
            else:
                per_image = F.cross_entropy(logits, y, reduction="none")
            (grad,) = torch.autograd.grad(per_image.sum(), point)
            total_value, total_grad = total_value + per_image.detach(), total_grad + grad
        return total_value / eot_iter, total_grad / eot_iter, logits.detach().argmax(1) != y

    shape = (-1,) + (1,) * (x.ndim - 1)
    if norm == "inf":
        start = 2 * torch.rand(x.shape, generator=generator, device=x.device) - 1
    else:
        start = torch.randn(x.shape, generator=generator, device=x.device)
    scale = start.flatten(1).abs().amax(1) if norm == "inf" else start.flatten(1).norm(dim=1)
    x_adv = _clip(x + eps * start / (scale.view(shape) + 1e-12), lo, hi)
    value, grad, fooled = evaluate(x_adv)
    found = x_adv.clone()
    broken = fooled.clone()
    x_best, grad_best, value_best = x_adv.clone(), grad.clone(), value.clone()
    step = torch.full((len(x),), 2.0 * eps, device=x.device).view(shape)
    marks = set(checkpoints(steps))
    window_start, previous = 0, value.clone()
    increases = torch.zeros(len(x), device=x.device)
    halved_last = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    best_at_last = value_best.clone()
    x_previous = x_adv.clone()
    for i in range(steps):
        with torch.no_grad():
            z = project(x_adv + step * _steepest_ascent(grad, norm))
            weight = MOMENTUM if i > 0 else 1.0
            moved = project(x_adv + weight * (z - x_adv) + (1 - weight) * (x_adv - x_previous))
            x_previous, x_adv = x_adv, moved
        value, grad, fooled = evaluate(x_adv)
        with torch.no_grad():
            newly = fooled & ~broken
            found[newly] = x_adv[newly]
            broken |= fooled
            increases += (value > previous).float()
            previous = value
            better = value > value_best
            x_best[better], grad_best[better], value_best[better] = (
                x_adv[better],
                grad[better],
                value[better],
            )
            if i + 1 in marks:
                halve = halve_step(
                    increases, i + 1 - window_start, halved_last, best_at_last, value_best, rho
                )
                step[halve] /= 2.0
                x_adv[halve], grad[halve] = x_best[halve], grad_best[halve]
                halved_last, best_at_last = halve, value_best.clone()
                increases.zero_()
                window_start = i + 1
    result = torch.where(broken.view(shape), found, x_best)
    return result, broken
