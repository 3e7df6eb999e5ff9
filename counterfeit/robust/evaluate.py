"""Evaluating any classifier: clean, under attack (the eps curve), under corruptions.

Every attack meets one contract (:mod:`robust.contract`), so gradient attacks,
a trained AdvGAN and an adversarial patch are measured side by side, on the same
images, in one report: robust accuracy for all of them and targeted success for
the targeted ones.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.runtime import model_mode
from counterfeit.robust.attacks import _norm, check_count
from counterfeit.robust.autoattack import AutoAttack
from counterfeit.robust.batches import Data, labelled_batches
from counterfeit.robust.contract import Attack, AttackFn, GradientAttack, as_attack, unknown_options
from counterfeit.robust.corruptions import SEVERITIES, corrupt, resolve_corruptions
from counterfeit.robust.minimum_norm import (
    MINIMUM_NORM_ATTACKS,
    perturbation_norms,
    summarise_norms,
)
from counterfeit.robust.models import checked_logits, model_device
from counterfeit.robust.registry import ATTACKS, takes_norm
from counterfeit.robust.report import AttackCurve, Examples, RobustnessReport
from counterfeit.robust.sanity import Flag, evaluation_flags, model_flags

DEFAULT_CURVE = (0.0, 2 / 255, 4 / 255, 8 / 255, 16 / 255, 0.1, 0.2, 0.3)
# L2 budgets over (C, H, W): 0.5 is RobustBench's CIFAR-10 radius, 2 the usual MNIST one.
DEFAULT_L2_CURVE = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)


class RobustnessWarning(UserWarning):
    """The evaluation may not mean what it seems (train mode, probability outputs)."""


def evaluate(
    model: nn.Module,
    data: Data,
    attacks: Sequence[str] | Mapping[str, Attack | AttackFn] = ("fgsm", "pgd"),
    eps: Sequence[float] = DEFAULT_CURVE,
    corruptions: str | Sequence[str] | None = "all",
    *,
    norm: str = "inf",
    minimum_norm: Sequence[str] = (),
    severities: Sequence[int] = SEVERITIES,
    attack_options: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int = 256,
    max_examples: int | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    show: int = 10,
    name: str | None = None,
    data_name: str | None = None,
) -> RobustnessReport:
    """Clean accuracy, robust accuracy per attack and eps, worst case, corruption accuracy.

    Args:
        model: any classifier taking images in [0, 1] (NCHW) and returning logits;
            wrap one that wants normalized input in :class:`robust.Normalize`.
        data: an :class:`gan.data.ImageTensors` (read in a random order fixed by
            ``seed``), an ``(images, labels)`` pair of tensors, or an iterable of
            ``(images, labels)`` batches (a DataLoader).
        attacks: names from :data:`robust.registry.ATTACKS` (``fgsm``, ``bim``, ``pgd``,
            ``apgd-ce``, ``apgd-t``, ``square``, ``autoattack``), or ``{name: attack}`` with attacks that meet the contract of
            :class:`robust.Attack` (:class:`robust.GradientAttack`,
            :class:`robust.AdvGANAttack`, :class:`robust.PatchAttack`) or plain
            ``fn(model, x, y, eps) -> x_adv`` functions.
        eps: budgets in pixel units (L-inf, or L2 over (C, H, W) with ``norm="2"``); 0
            gives the clean accuracy. Attacks with budgets of their own (a patch's areas)
            are measured at those instead.
        corruptions: ``"all"``, None, or names from :data:`robust.corruptions.CORRUPTIONS`.
        norm: ``"inf"`` or ``"2"`` (also ``"Linf"``, ``"L2"``): the ball every named attack
            searches; an L-inf-only attack (FGSM) with ``"2"`` is refused.
        minimum_norm: minimum-norm attacks (``deepfool``, ``cw``) to run once each, without
            a budget: the report gives their success rate and median L2 / L-inf
            perturbation (:mod:`robust.minimum_norm`).
        severities: corruption severities (1-5).
        attack_options: keyword arguments per named attack, e.g. ``{"pgd": {"steps": 40}}``
            (and per minimum-norm attack, e.g. ``{"cw": {"steps": 100}}``).
        batch_size: images per batch (when ``data`` is not already batched).
        max_examples: evaluate at most this many images (a random subset of an ImageTensors).
        device: where to run (default: the model's device).
        seed: seeds PGD's random start, each attack's :meth:`~robust.Attack.reset`
            and the corruptions.
        show: how many example images the report keeps for its plots.
        name: the model's name in the report (default: its class name).
        data_name: the data's name in the report (default: an ImageTensors' own name,
            "the given images" for a pair of tensors, else the iterable's class name).

    Attacks get the true labels (a targeted attack picks its own targets). The
    model is evaluated in eval mode; a model in train mode or one that outputs
    probabilities triggers a :class:`RobustnessWarning` (both make gradient
    attacks look weaker than they are), as does every sanity flag of
    :mod:`robust.sanity` (randomized model, zero gradients, chance accuracy, robust
    accuracy rising with eps, a black-box attack beating the white-box ones); the flags
    are also listed in the report.
    """
    norm = _norm(norm)
    eps = _check_eps_list(eps, norm)
    names = resolve_corruptions(corruptions)
    severities = _check_severities(severities)
    check_count("batch_size", batch_size)
    device = torch.device(device) if device is not None else model_device(model)
    generator = torch.Generator(device).manual_seed(seed)
    options = dict(attack_options or {})
    minimum = resolve_minimum_norm(minimum_norm, options)
    attack_fns = resolve_attacks(attacks, options, generator, norm=norm, seed=seed)
    budgets = {a: _budgets(a, fn, eps) for a, fn in attack_fns.items()}
    for fn in attack_fns.values():
        fn.reset(seed)
    noticed: list[str] = []
    flags: list[Flag] = []
    clean: list[torch.Tensor] = []
    robust = {a: [[] for _ in b] for a, b in budgets.items()}
    hits = {a: [[] for _ in b] for a, b in budgets.items()}
    clean_hits: dict[str, list[torch.Tensor]] = {a: [] for a in attack_fns}
    eligible: dict[str, list[torch.Tensor]] = {a: [] for a in attack_fns}
    corrupted = {c: [[] for _ in severities] for c in names}
    norms: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {a: [] for a in minimum}
    seconds = {"clean": 0.0, **{a: 0.0 for a in [*attack_fns, *minimum]}, "corruptions": 0.0}
    examples: Examples | None = None
    was_training = bool(getattr(model, "training", False))
    with model_mode(model, False) as switchable:
        if was_training and switchable:
            noticed.append(
                _warn(
                    "the model was in train mode: evaluating in eval mode instead (dropout "
                    "off, BatchNorm running statistics). Call model.eval() to silence this."
                )
            )
        for index, (x, y) in enumerate(labelled_batches(data, batch_size, max_examples, seed)):
            x, y = x.to(device), y.to(device)
            started = time.perf_counter()
            with torch.no_grad():
                logits = checked_logits(model, x)
            _check_labels(logits, y)
            if index == 0:
                _raise_flags(model_flags(model, x, y), flags, noticed)
            clean_predicted = logits.argmax(1)
            correct = clean_predicted == y
            clean.append(correct.cpu())
            seconds["clean"] += time.perf_counter() - started
            if index == 0:
                count = min(show, len(x))
                examples = Examples(
                    x[:count].cpu(), y[:count].cpu(), clean_predicted[:count].cpu(), max(eps)
                )
            for attack, fn in attack_fns.items():
                started = time.perf_counter()
                targets = fn.targets(y)
                if targets is not None:
                    counted = targets != y
                    eligible[attack].append(counted.cpu())
                    clean_hits[attack].append(((clean_predicted == targets) & counted).cpu())
                for i, budget in enumerate(budgets[attack]):
                    if budget == 0 and fn.budget == "eps":
                        predicted = clean_predicted
                    else:
                        x_adv = fn(model, x, y, budget)
                        with torch.no_grad():
                            predicted = model(x_adv).argmax(1)
                        if index == 0 and fn.budgets is None and budget == examples.eps:
                            count = len(examples.images)
                            examples.adversarial[attack] = (
                                x_adv[:count].detach().cpu(),
                                predicted[:count].cpu(),
                            )
                    robust[attack][i].append((predicted == y).cpu())
                    if targets is not None:
                        hits[attack][i].append(((predicted == targets) & counted).cpu())
                seconds[attack] += time.perf_counter() - started
            for attack, fn in minimum.items():
                started = time.perf_counter()
                norms[attack].append(perturbation_norms(model, x, y, fn(model, x, y)))
                seconds[attack] += time.perf_counter() - started
            started = time.perf_counter()
            for c in names:
                for i, severity in enumerate(severities):
                    xc = corrupt(x, c, severity, seed=seed * 1_000_003 + index)
                    with torch.no_grad():
                        corrupted[c][i].append((model(xc).argmax(1) == y).cpu())
                    if index == 0:
                        shown = examples.corrupted.setdefault(c, [])
                        shown.append(xc[:1].cpu())
            seconds["corruptions"] += time.perf_counter() - started
    if not clean:
        raise DataError("no images to evaluate: the data is empty.")
    if examples is not None:
        examples.corrupted = {c: torch.cat(v) for c, v in examples.corrupted.items()}
    clean_correct = torch.cat(clean)
    on_curve = [a for a, fn in attack_fns.items() if fn.budgets is None]
    per_attack = {a: [torch.cat(rows) for rows in robust[a]] for a in on_curve}
    worst = []
    for i in range(len(eps)):
        robust_all = clean_correct.clone()
        for rows in per_attack.values():
            robust_all &= rows[i]
        worst.append(_mean(robust_all))
    square_only = sum(
        sum(fn.black_box_only.values()) for fn in attack_fns.values() if isinstance(fn, AutoAttack)
    )
    _raise_flags(evaluation_flags(eps, per_attack, black_box_only=square_only), flags, noticed)
    targeted = {a for a in attack_fns if eligible[a]}
    curves = {
        a: AttackCurve(
            budget=fn.budget,
            budgets=list(budgets[a]),
            accuracy=[_mean(torch.cat(rows)) for rows in robust[a]],
            targeted_success=[_rate(rows, eligible[a]) for rows in hits[a]]
            if a in targeted
            else None,
            clean_success=_rate(clean_hits[a], eligible[a]) if a in targeted else None,
        )
        for a, fn in attack_fns.items()
        if fn.budgets is not None
    }
    return RobustnessReport(
        model=name or type(model).__name__,
        data=data_name
        or getattr(data, "name", None)
        or ("the given images" if isinstance(data, tuple) else type(data).__name__),
        n=len(clean_correct),
        clean_accuracy=_mean(clean_correct),
        eps=eps,
        norm=norm,
        attacks={a: [_mean(r) for r in rows] for a, rows in per_attack.items()},
        worst_case=worst if per_attack else [],
        severities=severities,
        corruptions={c: [_mean(torch.cat(r)) for r in rows] for c, rows in corrupted.items()},
        targeted_success={
            a: [_rate(rows, eligible[a]) for rows in hits[a]] for a in on_curve if a in targeted
        },
        curves=curves,
        minimum_norm={
            a: summarise_norms(*(torch.cat(parts) for parts in zip(*rows)))
            for a, rows in norms.items()
        },
        settings={
            "attacks": {a: fn.describe() for a, fn in attack_fns.items()},
            "seed": seed,
            "device": str(device),
            "batch_size": batch_size,
            "seconds": {k: round(v, 2) for k, v in seconds.items()},
        },
        warnings=noticed,
        flags=[flag.code for flag in flags],
        stages={
            a: {f"{b:.6g}": table for b, table in fn.stage_table().items()}
            for a, fn in attack_fns.items()
            if isinstance(fn, AutoAttack)
        },
        examples=examples,
    )


# -- helpers -------------------------------------------------------------------


def resolve_attacks(
    attacks: Sequence[str] | Mapping[str, Attack | AttackFn],
    options: Mapping[str, Mapping[str, Any]] | None = None,
    generator: torch.Generator | None = None,
    *,
    norm: str = "inf",
    seed: int | None = None,
) -> dict[str, Attack]:
    """``{name: attack}`` meeting the contract, for attack names (with their options) or objects.

    Named attacks become :class:`robust.GradientAttack` (an attack class of the registry,
    such as :class:`robust.AutoAttack`, is built) with their options, ``norm`` for those
    that take one, ``generator`` for a random start and ``seed``; a mapping's values are kept when they meet the
    contract and wrapped when they are plain ``fn(model, x, y, eps)`` functions.

    Raises:
        ConfigError: an unknown attack, an option the attack does not take, or an
            L-inf-only attack asked for an L2 ball.
    """
    options = options or {}
    norm = _norm(norm)
    if isinstance(attacks, str):
        attacks = [attacks]
    if isinstance(attacks, Mapping):
        if options:
            raise ConfigError(
                "attack_options apply to named attacks; bind options into your callables."
            )
        return {label: as_attack(fn, label) for label, fn in attacks.items()}
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise ConfigError(f"unknown attack(s) {', '.join(unknown)}; known: {', '.join(ATTACKS)}.")
    stray = [a for a in options if a not in attacks]
    if stray:
        raise ConfigError(f"attack_options for {', '.join(stray)}, which is not evaluated.")
    resolved = {}
    for label in attacks:
        fn = ATTACKS[label]
        given = dict(options.get(label, {}))
        bad, accepted = unknown_options(fn, given)
        if bad:
            raise ConfigError(
                f"attack_options.{label}: unknown option(s) {', '.join(bad)}; "
                f"{label} accepts {', '.join(sorted(accepted))}."
            )
        if "norm" in accepted:
            given.setdefault("norm", norm)
        elif norm != "inf":
            l2 = ", ".join(a for a in ATTACKS if takes_norm(a))
            raise ConfigError(f"{label} is an L-inf attack; the attacks with an L2 form: {l2}.")
        if "generator" in accepted and generator is not None:
            given.setdefault("generator", generator)
        if "seed" in accepted and seed is not None:
            given.setdefault("seed", seed)
        resolved[label] = fn(**given) if isinstance(fn, type) else GradientAttack(fn, **given)
    return resolved


def resolve_minimum_norm(
    names: Sequence[str], options: dict[str, Any]
) -> dict[str, Callable[..., torch.Tensor]]:
    """``{name: fn(model, x, y)}`` for minimum-norm attack names; their options are taken
    out of ``options`` (what is left is for the budget attacks).

    Raises:
        ConfigError: an unknown name, or an option the attack does not take.
    """
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in MINIMUM_NORM_ATTACKS]
    if unknown:
        raise ConfigError(
            f"unknown minimum-norm attack(s) {', '.join(unknown)}; known: "
            f"{', '.join(MINIMUM_NORM_ATTACKS)}."
        )
    resolved = {}
    for name in names:
        given = dict(options.pop(name, {}))
        fn = MINIMUM_NORM_ATTACKS[name]
        bad, accepted = unknown_options(fn, given)
        if bad:
            raise ConfigError(
                f"attack_options.{name}: unknown option(s) {', '.join(bad)}; "
                f"{name} accepts {', '.join(sorted(accepted))}."
            )
        resolved[name] = functools.partial(fn, **given)
    return resolved


def _budgets(label: str, attack: Attack, eps: list[float]) -> list[float]:
    """The budgets ``attack`` is measured at: the eps curve, or its own."""
    if attack.budgets is None:
        if attack.budget != "eps":
            raise ConfigError(
                f"attack '{label}' has budgets of kind '{attack.budget}' but lists none "
                "(set its budgets)."
            )
        return eps
    if not attack.budgets:
        raise ConfigError(f"attack '{label}' lists no budgets to measure.")
    return list(attack.budgets)


def _check_eps_list(eps: Sequence[float], norm: str = "inf") -> list[float]:
    """The budgets sorted and unique: L-inf in [0, 1], L2 finite and >= 0."""
    if isinstance(eps, (int, float)):
        eps = [eps]
    values = []
    top = 1 if norm == "inf" else math.inf
    for e in eps:
        number = not isinstance(e, bool) and isinstance(e, (int, float)) and math.isfinite(e)
        if not number or not 0 <= e <= top:
            what = "in [0, 1] (L-inf, pixel units)" if norm == "inf" else ">= 0 (L2, finite)"
            raise ConfigError(f"eps values must be numbers {what}, got {e!r}.")
        values.append(float(e))
    if not values:
        raise ConfigError("eps is empty: give at least one budget (0 for clean accuracy).")
    return sorted(set(values))


def _check_severities(severities: Sequence[int]) -> list[int]:
    values = list(severities)
    bad = [s for s in values if isinstance(s, bool) or s not in SEVERITIES]
    if bad or not values:
        raise ConfigError(f"severities must be integers in 1-5, got {values}.")
    return sorted(set(values))


def _check_labels(logits: torch.Tensor, y: torch.Tensor) -> None:
    if y.dtype.is_floating_point or y.ndim != 1 or len(y) != len(logits):
        raise DataError(f"labels must be integers, one per image; got {y.dtype} {tuple(y.shape)}.")
    if bool((y < 0).any()) or bool((y >= logits.shape[1]).any()):
        raise DataError(
            f"labels must lie in [0, {logits.shape[1] - 1}] (the model has {logits.shape[1]} "
            f"outputs); got values in [{int(y.min())}, {int(y.max())}]."
        )


def _warn(message: str, depth: int = 0) -> str:
    """Warn at :func:`evaluate`'s caller (``depth`` helpers below ``evaluate``)."""
    warnings.warn(message, RobustnessWarning, stacklevel=3 + depth)
    return message


def _raise_flags(found: list[Flag], flags: list[Flag], noticed: list[str]) -> None:
    """Add ``found`` to the report's ``flags`` and warn each one (also kept in ``noticed``)."""
    for flag in found:  # a loop, not a comprehension: a comprehension is a frame before 3.12
        flags.append(flag)
        noticed.append(_warn(str(flag), depth=1))


def _mean(flags: torch.Tensor) -> float:
    return float(flags.float().mean())


def _rate(hits: list[torch.Tensor], counted: list[torch.Tensor]) -> float:
    """Hits over counted images (NaN when none is counted)."""
    total = int(torch.cat(counted).sum())
    return int(torch.cat(hits).sum()) / total if total else float("nan")
