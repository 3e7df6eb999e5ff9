"""The attack contract: what :func:`robust.evaluate` measures, from FGSM to a patch.

After torchattacks' ``Attack`` base class (Kim 2020, "Torchattacks: A PyTorch
Repository for Adversarial Attacks", arXiv 2010.01950): an attack is an object
called with the *true* labels, and a targeted attack maps them to its targets
itself (torchattacks' ``set_mode_targeted_by_function``), so one evaluation can
count robust accuracy for every attack and targeted success for the targeted
ones. Unlike torchattacks, the model and the budget are arguments of each call,
so one object serves any model and every point of an eps curve::

    x_adv = attack(model, x, y, budget)   # y: the true labels
    attack.targets(y)                     # the class each image is pushed toward, or None
    attack.budget                         # what a budget measures: "eps" (L-inf, pixel units)
                                          # or, e.g., "area" (a patch's fraction of the image)
    attack.budgets                        # None: the eps curve evaluate is given; else its own
    attack.reset(seed)                    # called by evaluate first: reseed random draws

:class:`GradientAttack` puts FGSM, BIM and PGD (:mod:`robust.attacks`) under the
contract; :class:`robust.AdvGANAttack` a trained AdvGAN; :class:`robust.PatchAttack`
an adversarial patch; :func:`as_attack` any ``fn(model, x, y, eps) -> x_adv``.
"""

from __future__ import annotations

import abc
import functools
import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError

AttackFn = Callable[..., torch.Tensor]
_OWN_ARGUMENTS = {"model", "x", "y", "eps"}


class Attack(abc.ABC):
    """Base class of every attack :func:`robust.evaluate` measures (see the module docstring).

    Subclasses implement :meth:`__call__`. A targeted attack overrides :meth:`targets`;
    one whose budget is not an L-inf eps sets :attr:`budget` and :attr:`budgets`; one
    that draws random numbers reseeds them in :meth:`reset`.

    Attributes:
        budget: what a budget measures: ``"eps"`` (the radius of an L-inf ball in pixel
            units) or another name, such as a patch's ``"area"``.
        budgets: the budgets to measure the attack at, or None for the eps curve that
            :func:`robust.evaluate` is given (``"eps"`` attacks only).
    """

    budget: str = "eps"
    budgets: tuple[float, ...] | None = None

    @abc.abstractmethod
    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, budget: float
    ) -> torch.Tensor:
        """Adversarial images for ``x`` (N, C, H, W) in [0, 1] with true labels ``y``."""

    def targets(self, y: torch.Tensor) -> torch.Tensor | None:
        """The class each image is pushed toward (a targeted attack), or None (untargeted)."""
        return None

    def reset(self, seed: int) -> None:  # noqa: B027 (an optional hook)
        """Start an evaluation: reseed what the attack draws at random (nothing by default)."""

    def describe(self) -> str:
        """A short description for the report's settings."""
        return type(self).__name__


class GradientAttack(Attack):
    """A gradient attack of :mod:`robust.attacks` (FGSM, BIM, PGD) under the contract.

    Example: ``GradientAttack(pgd, steps=40)``; ``GradientAttack(pgd, target=3)``
    pushes every image toward class 3 (``pgd(..., targeted=True)`` with that target).

    Args:
        fn: ``fn(model, x, y, eps, **options) -> x_adv``, e.g. :func:`robust.pgd`.
        target: a class to push every image toward, or None (untargeted: away from
            the true label). Images already of that class are attacked too, and left
            out of the targeted success rate.
        **options: keyword arguments for ``fn`` (``steps=40``, ``generator=...``).
    """

    def __init__(self, fn: AttackFn, *, target: int | None = None, **options: Any) -> None:
        if not callable(fn):
            raise ConfigError(f"the attack function is not callable: {fn!r}.")
        bad, accepted = unknown_options(fn, options)
        name = getattr(fn, "__name__", type(fn).__name__)
        if bad:
            raise ConfigError(
                f"unknown option(s) {', '.join(bad)} for {name}; it accepts "
                f"{', '.join(sorted(accepted))}."
            )
        if target is not None:
            if isinstance(target, bool) or not isinstance(target, int) or target < 0:
                raise ConfigError(f"target must be a class index >= 0 or None, got {target!r}.")
            if "targeted" not in accepted:
                raise ConfigError(f"{name} has no targeted mode (no 'targeted' argument).")
            if "targeted" in options:
                raise ConfigError("give target=CLASS alone: it sets targeted=True itself.")
        self.fn, self.target, self.options = fn, target, options

    def targets(self, y: torch.Tensor) -> torch.Tensor | None:
        return None if self.target is None else torch.full_like(y, self.target)

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, budget: float
    ) -> torch.Tensor:
        if self.target is None:
            return self.fn(model, x, y, budget, **self.options)
        return self.fn(model, x, self.targets(y), budget, targeted=True, **self.options)

    def describe(self) -> str:
        shown = {k: v for k, v in self.options.items() if k != "generator"}
        if self.target is not None:
            shown["target"] = self.target
        args = ", ".join(f"{k}={v}" for k, v in shown.items())
        return f"{self.fn.__name__}({args or 'defaults'})"


class _FunctionAttack(Attack):
    """A plain ``fn(model, x, y, eps) -> x_adv``: untargeted, measured on the eps curve."""

    def __init__(self, fn: AttackFn) -> None:
        self.fn = fn

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, budget: float
    ) -> torch.Tensor:
        return self.fn(model, x, y, budget)

    def describe(self) -> str:
        fn = self.fn
        if isinstance(fn, functools.partial):
            shown = {k: v for k, v in fn.keywords.items() if k != "generator"}
            args = ", ".join(f"{k}={v}" for k, v in shown.items())
            return f"{fn.func.__name__}({args or 'defaults'})"
        return getattr(fn, "__name__", type(fn).__name__)


def as_attack(attack: Attack | AttackFn, label: str = "attack") -> Attack:
    """``attack`` itself when it meets the contract, else ``fn(model, x, y, eps)`` wrapped.

    Raises:
        ConfigError: ``attack`` is not callable (``label`` names it).
    """
    if isinstance(attack, Attack):
        return attack
    if not callable(attack):
        raise ConfigError(f"attack '{label}' is not callable: {attack!r}.")
    return _FunctionAttack(attack)


def unknown_options(fn: AttackFn, options: dict[str, Any]) -> tuple[list[str], set[str]]:
    """(the options ``fn`` does not take, sorted; the options it takes)."""
    accepted = set(inspect.signature(fn).parameters) - _OWN_ARGUMENTS
    return sorted(set(options) - accepted), accepted
