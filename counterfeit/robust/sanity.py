"""When a robustness number itself is suspect: the checks AutoAttack's authors run.

Croce & Hein (ICML 2020, Sec. 5 and the ``autoattack/checks.py`` of their code) list
the signs that an evaluation measured the attack's failure rather than the model's
robustness: a randomized model (its gradients are noisy: use EOT), outputs that are
probabilities (a softmax in the model flattens the cross-entropy's gradient), zero
gradients on many inputs (masking), a black-box attack that beats the white-box ones,
robust accuracy that rises with the budget (a larger ball contains the smaller one),
and a clean accuracy at chance (nothing to attack). Each check returns a
:class:`Flag` or nothing; :func:`model_flags` runs the ones that need only the model and
a batch.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.runtime import model_mode
from counterfeit.robust.models import checked_logits


@dataclass(frozen=True)
class Flag:
    """One reason to doubt a robustness number: a short ``code`` and what to do."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


def randomized(model: nn.Module, x: torch.Tensor) -> Flag | None:
    """Two forward passes of the same images in eval mode give different outputs."""
    with torch.no_grad(), model_mode(model, False):
        first, second = checked_logits(model, x), checked_logits(model, x)
    if torch.allclose(first, second, rtol=1e-5, atol=1e-6):
        return None
    return Flag(
        "randomized",
        "two forward passes of the same images differ: the model is randomized, so its "
        "gradients are noisy and a deterministic attack overstates its robustness "
        "(attack it with EOT, averaging gradients over many passes: AutoAttack's "
        "version='rand').",
    )


def probabilities(model: nn.Module, x: torch.Tensor) -> Flag | None:
    """The outputs are non-negative and every row sums to one: a softmax inside the model."""
    with torch.no_grad(), model_mode(model, False):
        out = checked_logits(model, x).float()
    if bool((out < 0).any()) or not torch.allclose(out.sum(1), torch.ones(len(out)), atol=1e-4):
        return None
    return Flag(
        "probabilities",
        "the model's outputs are probabilities (rows sum to 1): the attacks expect logits, "
        "and a softmax before the loss flattens its gradient. Remove the final softmax.",
    )


def zero_gradients(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, fraction: float = 0.1
) -> Flag | None:
    """The cross-entropy's input gradient is exactly zero on more than ``fraction`` of images."""
    with torch.enable_grad(), model_mode(model, False):
        point = x.detach().float().requires_grad_(True)
        loss = F.cross_entropy(checked_logits(model, point).float(), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, point)
    zero = float((grad.flatten(1).abs().amax(1) == 0).float().mean())
    if zero <= fraction:
        return None
    return Flag(
        "zero-gradients",
        f"the loss's gradient is zero on {zero:.0%} of the images: gradient attacks cannot "
        "move them (gradient masking, e.g. a quantised or thresholded input). Trust a "
        "score-based attack such as Square here, not FGSM/PGD.",
    )


def at_chance(clean_accuracy: float, classes: int, margin: float = 0.05) -> Flag | None:
    """The clean accuracy is within ``margin`` of guessing (1 / classes)."""
    if clean_accuracy > 1.0 / classes + margin:
        return None
    return Flag(
        "chance",
        f"the clean accuracy ({clean_accuracy:.3f}) is at chance for {classes} classes: there "
        "is nothing to attack, and a robust accuracy near it means nothing. Check the model, "
        "the data and the labels.",
    )


def rises_with_eps(
    budgets: Sequence[float], accuracies: Sequence[float], tolerance: float = 0.0
) -> Flag | None:
    """Robust accuracy higher at a larger budget than at a smaller one."""
    pairs = sorted(zip(budgets, accuracies))
    rises = [(a, b) for (a, acc_a), (b, acc_b) in pairwise(pairs) if acc_b > acc_a + tolerance]
    if not rises:
        return None
    at = ", ".join(f"{a:g} -> {b:g}" for a, b in rises)
    return Flag(
        "rises-with-eps",
        f"robust accuracy rises with the budget ({at}): a larger ball holds every point of a "
        "smaller one, so the attack failed to find them (more steps, restarts, or a "
        "gradient-free attack).",
    )


def black_box_beats_white_box(
    white_box_robust: torch.Tensor, black_box_robust: torch.Tensor
) -> Flag | None:
    """A black-box attack fooled images that every white-box attack left correct."""
    return _black_box_flag(int((white_box_robust & ~black_box_robust).sum()))


def _black_box_flag(beaten: int) -> Flag | None:
    if beaten == 0:
        return None
    return Flag(
        "black-box-wins",
        f"a black-box attack fooled {beaten} image(s) the gradient attacks did not: their "
        "gradients mislead (masking), so the gradient attacks' number overstates robustness.",
    )


def evaluation_flags(
    budgets: Sequence[float],
    robust: Mapping[str, Sequence[torch.Tensor]],
    *,
    white_box: Collection[str] = ("bim", "pgd", "apgd-ce", "apgd-t"),
    black_box: Collection[str] = ("square",),
    black_box_only: int = 0,
) -> list[Flag]:
    """The checks on an evaluation's results: per attack, whether its robust accuracy
    rises with the budget; whether a black-box attack fooled images every white-box one
    left correct, at some budget (``black_box_only`` adds the images an ensemble's
    black-box stage alone fooled, as :class:`robust.AutoAttack` counts them).

    Args:
        budgets: the eps curve.
        robust: attack -> per budget, a boolean per image (correct under the attack).
        white_box: the iterative gradient attacks to compare with (single-step FGSM is
            too weak a reference).
        black_box: the names of the black-box attacks among ``robust``.
        black_box_only: images fooled only by an ensemble's black-box stage.
    """
    flags = []
    for name, rows in robust.items():
        flag = rises_with_eps(budgets, [float(r.float().mean()) for r in rows])
        if flag is not None:
            flags.append(Flag(flag.code, f"{name}: {flag.message}"))
    white = [rows for name, rows in robust.items() if name in white_box]
    beaten = black_box_only
    for name in (n for n in robust if n in black_box and white):
        fooled_only_by_it = torch.zeros_like(robust[name][0])
        for i in range(len(budgets)):
            white_robust = torch.stack([rows[i] for rows in white]).all(0)
            fooled_only_by_it |= white_robust & ~robust[name][i]
        beaten += int(fooled_only_by_it.sum())
    flag = _black_box_flag(beaten)
    return [*flags, flag] if flag is not None else flags


def model_flags(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[Flag]:
    """The checks that need only the model and a labelled batch."""
    with torch.no_grad(), model_mode(model, False):
        logits = checked_logits(model, x)
    clean = float((logits.argmax(1) == y).float().mean())
    checks = (
        randomized(model, x),
        probabilities(model, x),
        zero_gradients(model, x, y),
        at_chance(clean, logits.shape[1]),
    )
    return [flag for flag in checks if flag is not None]
