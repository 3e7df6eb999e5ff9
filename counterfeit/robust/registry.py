"""The attacks known by name: what ``evaluate(attacks=[...])``, recipes and ``--attacks`` take.

A name maps to an attack function (``fn(model, x, y, eps, **options) -> x_adv``, put under
the contract by :class:`robust.GradientAttack`) or to an :class:`robust.Attack` class built
with the options (:class:`robust.AutoAttack`, which keeps its stage table). The L-inf-only
attacks are the ones without a ``norm`` argument.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from counterfeit.robust.apgd import apgd_ce, apgd_t
from counterfeit.robust.attacks import bim, fgsm, pgd
from counterfeit.robust.autoattack import AutoAttack
from counterfeit.robust.contract import Attack
from counterfeit.robust.square import square

ATTACKS: dict[str, Callable | type[Attack]] = {
    "fgsm": fgsm,
    "bim": bim,
    "pgd": pgd,
    "apgd-ce": apgd_ce,
    "apgd-t": apgd_t,
    "square": square,
    "autoattack": AutoAttack,
}


def takes_norm(name: str) -> bool:
    """Whether the attack ``name`` has an L2 form (a ``norm`` argument)."""
    return "norm" in inspect.signature(ATTACKS[name]).parameters
