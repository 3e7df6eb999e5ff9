"""Minimum-norm attacks: the smallest L2 perturbation that changes the prediction.

Instead of a robust accuracy at a fixed budget they measure how far each image lies from
the decision boundary; :func:`perturbation_sizes` summarises them as the median size
(an image never fooled counts as infinitely far, as in Foolbox and Croce & Hein's FAB
evaluation).

* :func:`deepfool`: Moosavi-Dezfooli, Fawzi & Frossard, "DeepFool: a simple and accurate
  method to fool deep neural networks", CVPR 2016, Algorithm 2 (multi-class, L2): step to
  the nearest linearised boundary among the ``candidates`` classes ranked highest on the
  clean image, until the label changes; the total step is scaled by ``1 + overshoot``
  (their 0.02). Deviation: each iterate is clipped to the image range, which the paper
  does not do.
* :func:`cw`: Carlini & Wagner, "Towards evaluating the robustness of neural networks",
  IEEE S&P 2017, the L2 attack: ``x' = (tanh(w) + 1) / 2``, Adam (lr 0.01) on
  ``||x' - x||^2 + c * max(Z_y - max_{i != y} Z_i, -kappa)``, a binary search over ``c``
  from 1e-3 (their code's ``initial_const``); each image keeps its smallest successful
  perturbation. Deviation: ``steps`` defaults to 1,000 per search step (their code:
  10,000 with early abort).
"""

from __future__ import annotations

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.robust.attacks import _attack_context, _check, _check_labels, _labels, check_count
from counterfeit.robust.models import checked_logits, logit_margin


def deepfool(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    steps: int = 50,
    overshoot: float = 0.02,
    candidates: int = 10,
) -> torch.Tensor:
    """DeepFool (L2): per image, the first point past the nearest linearised boundary.

    Args:
        model: maps images in [0, 1] to logits.
        x: the images; y: their labels (None: the model's predictions).
        steps: the most iterations (the paper's code: 50).
        overshoot: how far past the boundary the total step goes (the paper's 0.02).
        candidates: the classes (ranked on the clean image) whose boundaries are tried.

    Returns:
        Adversarial images; images still correct after ``steps`` keep their last iterate.
    """
    _check(model, x, 0.0, (0.0, 1.0), False, y, None)
    check_count("steps", steps)
    check_count("candidates", candidates)
    with _attack_context(model, False):
        x0 = x.detach().float()
        y = _labels(model, x, y)
        with torch.no_grad():
            logits = checked_logits(model, x0).float()
        _check_labels(y, logits.shape[1])
        ranked = logits.argsort(1, descending=True)[:, : min(candidates, logits.shape[1])]
        others = torch.stack([row[row != label] for row, label in zip(ranked, y)])
        total = torch.zeros_like(x0)
        active = logits.argmax(1) == y
        x_adv = x0.clone()
        for _ in range(steps):
            if not bool(active.any()):
                break
            index = active.nonzero().squeeze(1)
            step = _deepfool_step(model, x_adv[index], y[index], others[index])
            total[index] += step
            x_adv[index] = (x0[index] + (1 + overshoot) * total[index]).clamp(0, 1)
            with torch.no_grad():
                active[index] = checked_logits(model, x_adv[index]).argmax(1) == y[index]
        return x_adv.to(x.dtype)


def _deepfool_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, others: torch.Tensor
) -> torch.Tensor:
    """The minimal L2 step to the nearest linearised boundary (Alg. 2, lines 5-9)."""
    point = x.detach().requires_grad_(True)
    logits = checked_logits(model, point).float()
    own = logits.gather(1, y[:, None]).squeeze(1)
    best_ratio = torch.full((len(x),), float("inf"), device=x.device)
    best_step = torch.zeros_like(x)
    for k in range(others.shape[1]):
        difference = logits.gather(1, others[:, k : k + 1]).squeeze(1) - own
        (w,) = torch.autograd.grad(difference.sum(), point, retain_graph=True)
        norm = w.flatten(1).norm(dim=1) + 1e-8
        ratio = difference.detach().abs() / norm
        closer = ratio < best_ratio
        shape = (-1,) + (1,) * (x.ndim - 1)
        step = ((ratio + 1e-4) / norm).view(shape) * w
        best_step[closer], best_ratio[closer] = step[closer], ratio[closer]
    return best_step.detach()


def cw(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    steps: int = 1000,
    search_steps: int = 9,
    initial_const: float = 1e-3,
    kappa: float = 0.0,
    lr: float = 0.01,
) -> torch.Tensor:
    """Carlini & Wagner's L2 attack (see the module docstring).

    Args:
        model: maps images in [0, 1] to logits.
        x: the images; y: their labels (None: the model's predictions).
        steps: Adam steps per value of ``c``.
        search_steps: the binary search's steps over ``c`` (theirs: 9).
        initial_const: the first ``c`` (theirs: 1e-3).
        kappa: the confidence margin (theirs: 0).
        lr: Adam's learning rate (theirs: 0.01).

    Returns:
        Per image the smallest successful adversarial image found, else the image itself.
    """
    _check(model, x, 0.0, (0.0, 1.0), False, y, None)
    check_count("steps", steps)
    check_count("search_steps", search_steps)
    if initial_const <= 0 or lr <= 0 or kappa < 0:
        raise ConfigError("cw needs initial_const > 0, lr > 0 and kappa >= 0.")
    with _attack_context(model, False):
        x0 = x.detach().float()
        y = _labels(model, x, y)
        n = len(x0)
        lower = torch.zeros(n, device=x0.device)
        upper = torch.full((n,), float("inf"), device=x0.device)
        const = torch.full((n,), float(initial_const), device=x0.device)
        best = x0.clone()
        best_size = torch.full((n,), float("inf"), device=x0.device)
        w_start = torch.atanh((x0 * 2 - 1).clamp(-1 + 1e-6, 1 - 1e-6))
        for _ in range(search_steps):
            w = w_start.clone().requires_grad_(True)
            optimizer = torch.optim.Adam([w], lr=lr)
            succeeded = torch.zeros(n, dtype=torch.bool, device=x0.device)
            for _ in range(steps):
                x_adv = (torch.tanh(w) + 1) / 2
                logits = checked_logits(model, x_adv).float()
                size = (x_adv - x0).flatten(1).pow(2).sum(1)
                margin = logit_margin(logits, y).clamp(min=-kappa)
                loss = (size + const * margin).sum()
                (w.grad,) = torch.autograd.grad(loss, w)  # no parameter's .grad is written
                optimizer.step()
                with torch.no_grad():
                    fooled = logits.argmax(1) != y
                    better = fooled & (size < best_size)
                    best[better], best_size[better] = x_adv.detach()[better], size[better]
                    succeeded |= fooled
            with torch.no_grad():  # the binary search on c, per image
                upper = torch.where(succeeded, torch.minimum(upper, const), upper)
                lower = torch.where(succeeded, lower, torch.maximum(lower, const))
                const = torch.where(upper < float("inf"), (lower + upper) / 2, const * 10)
        return best.view(x.shape).to(x.dtype)


MINIMUM_NORM_ATTACKS = {"deepfool": deepfool, "cw": cw}


def perturbation_norms(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image the model classifies correctly: the L2 and L-inf size of ``x_adv - x``,
    infinite where ``x_adv`` does not fool the model (on the CPU)."""
    with torch.no_grad():
        clean = checked_logits(model, x).argmax(1) == y
        fooled = (checked_logits(model, x_adv).argmax(1) != y)[clean].cpu()
    delta = (x_adv.float() - x.float()).flatten(1)[clean].cpu()
    inf = torch.tensor(float("inf"))
    return (
        torch.where(fooled, delta.norm(dim=1), inf),
        torch.where(fooled, delta.abs().amax(1), inf),
    )


def summarise_norms(l2: torch.Tensor, linf: torch.Tensor) -> dict[str, float]:
    """``success`` (the fraction fooled), ``median_l2`` and ``median_linf`` (infinite
    for an image not fooled; NaN when no image was counted)."""
    if len(l2) == 0:
        return {"success": float("nan"), "median_l2": float("nan"), "median_linf": float("nan")}
    return {
        "success": float(l2.isfinite().float().mean()),
        "median_l2": float(l2.median()),
        "median_linf": float(linf.median()),
    }


def perturbation_sizes(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor
) -> dict[str, float]:
    """:func:`summarise_norms` of :func:`perturbation_norms`: how often ``x_adv`` fools the
    model among the images it classifies correctly, and the median perturbation sizes."""
    return summarise_norms(*perturbation_norms(model, x, y, x_adv))
