"""Evaluating any classifier: clean, under attack (the eps curve), under corruptions."""

from __future__ import annotations

import functools
import inspect
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.robust.attacks import ATTACKS, model_mode
from counterfeit.robust.corruptions import SEVERITIES, corrupt, resolve_corruptions
from counterfeit.robust.report import Examples, RobustnessReport
from torch import nn

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor, float], torch.Tensor]
Data = (
    ImageTensors | tuple[torch.Tensor, torch.Tensor] | Iterable[tuple[torch.Tensor, torch.Tensor]]
)

DEFAULT_CURVE = (0.0, 2 / 255, 4 / 255, 8 / 255, 16 / 255, 0.1, 0.2, 0.3)
_OWN_ARGUMENTS = {"model", "x", "y", "eps"}


class RobustnessWarning(UserWarning):
    """The evaluation may not mean what it seems (train mode, probability outputs)."""


def evaluate(
    model: nn.Module,
    data: Data,
    attacks: Sequence[str] | Mapping[str, Attack] = ("fgsm", "pgd"),
    eps: Sequence[float] = DEFAULT_CURVE,
    corruptions: str | Sequence[str] | None = "all",
    *,
    severities: Sequence[int] = SEVERITIES,
    attack_options: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int = 256,
    max_examples: int | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    show: int = 10,
    name: str | None = None,
) -> RobustnessReport:
    """Clean accuracy, robust accuracy per attack and eps, worst case, corruption accuracy.

    Args:
        model: any classifier taking images in [0, 1] (NCHW) and returning logits;
            wrap one that wants normalized input in :class:`robust.Normalize`.
        data: an :class:`gan.data.ImageTensors` (read in a random order fixed by
            ``seed``), an ``(images, labels)`` pair of tensors, or an iterable of
            ``(images, labels)`` batches (a DataLoader).
        attacks: names from :data:`robust.attacks.ATTACKS` (``fgsm``, ``bim``,
            ``pgd``), or ``{name: fn(model, x, y, eps) -> x_adv}``.
        eps: L-inf budgets in pixel units; 0 gives the clean accuracy.
        corruptions: ``"all"``, None, or names from :data:`robust.corruptions.CORRUPTIONS`.
        severities: corruption severities (1-5).
        attack_options: keyword arguments per named attack, e.g. ``{"pgd": {"steps": 40}}``.
        batch_size: images per batch (when ``data`` is not already batched).
        max_examples: evaluate at most this many images (a random subset of an ImageTensors).
        device: where to run (default: the model's device).
        seed: seeds PGD's random start and the corruptions.
        show: how many example images the report keeps for its plots.
        name: the model's name in the report (default: its class name).

    Attacks use the true labels. The model is evaluated in eval mode; a model
    in train mode or one that outputs probabilities triggers a
    :class:`RobustnessWarning` (both make gradient attacks look weaker than
    they are).
    """
    eps = _check_eps_list(eps)
    names = resolve_corruptions(corruptions)
    severities = _check_severities(severities)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
    device = torch.device(device) if device is not None else _model_device(model)
    generator = torch.Generator(device).manual_seed(seed)
    attack_fns = resolve_attacks(attacks, attack_options, generator)
    noticed: list[str] = []
    clean: list[torch.Tensor] = []
    robust = {a: [[] for _ in eps] for a in attack_fns}
    corrupted = {c: [[] for _ in severities] for c in names}
    seconds = {"clean": 0.0, **{a: 0.0 for a in attack_fns}, "corruptions": 0.0}
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
        for index, (x, y) in enumerate(_batches(data, batch_size, max_examples, seed)):
            x, y = x.to(device), y.to(device)
            started = time.perf_counter()
            with torch.no_grad():
                logits = model(x)
            _check_logits(logits, x, y)
            if index == 0 and _looks_like_probabilities(logits):
                noticed.append(
                    _warn(
                        "the model's outputs look like probabilities (non-negative rows that sum "
                        "to 1): gradient attacks on softmax outputs suffer from vanishing "
                        "gradients and overstate robustness (Carlini & Wagner 2017). Return "
                        "logits instead."
                    )
                )
            correct = logits.argmax(1) == y
            clean.append(correct.cpu())
            seconds["clean"] += time.perf_counter() - started
            if index == 0:
                count = min(show, len(x))
                examples = Examples(
                    x[:count].cpu(), y[:count].cpu(), logits[:count].argmax(1).cpu(), max(eps)
                )
            for attack, fn in attack_fns.items():
                started = time.perf_counter()
                for i, e in enumerate(eps):
                    if e == 0:
                        robust[attack][i].append(correct.cpu())
                        continue
                    x_adv = fn(model, x, y, e)
                    with torch.no_grad():
                        predicted = model(x_adv).argmax(1)
                    robust[attack][i].append((predicted == y).cpu())
                    if index == 0 and e == examples.eps:
                        count = len(examples.images)
                        examples.adversarial[attack] = (
                            x_adv[:count].detach().cpu(),
                            predicted[:count].cpu(),
                        )
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
    per_attack = {a: [torch.cat(rows) for rows in per_eps] for a, per_eps in robust.items()}
    worst = []
    for i in range(len(eps)):
        robust_all = clean_correct.clone()
        for rows in per_attack.values():
            robust_all &= rows[i]
        worst.append(_mean(robust_all))
    return RobustnessReport(
        model=name or type(model).__name__,
        data=getattr(data, "name", type(data).__name__),
        n=len(clean_correct),
        clean_accuracy=_mean(clean_correct),
        eps=eps,
        attacks={a: [_mean(r) for r in rows] for a, rows in per_attack.items()},
        worst_case=worst if per_attack else [],
        severities=severities,
        corruptions={c: [_mean(torch.cat(r)) for r in rows] for c, rows in corrupted.items()},
        settings={
            "attacks": {a: _describe(fn) for a, fn in attack_fns.items()},
            "seed": seed,
            "device": str(device),
            "batch_size": batch_size,
            "seconds": {k: round(v, 2) for k, v in seconds.items()},
        },
        warnings=noticed,
        examples=examples,
    )


# -- helpers -------------------------------------------------------------------


def resolve_attacks(
    attacks: Sequence[str] | Mapping[str, Attack],
    options: Mapping[str, Mapping[str, Any]] | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, Attack]:
    """``{name: fn(model, x, y, eps)}`` for attack names (with their options) or callables.

    Raises:
        ConfigError: an unknown attack, or an option the attack does not take.
    """
    options = options or {}
    if isinstance(attacks, str):
        attacks = [attacks]
    if isinstance(attacks, Mapping):
        if options:
            raise ConfigError(
                "attack_options apply to named attacks; bind options into your callables."
            )
        for label, fn in attacks.items():
            if not callable(fn):
                raise ConfigError(f"attack '{label}' is not callable: {fn!r}.")
        return dict(attacks)
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise ConfigError(f"unknown attack(s) {', '.join(unknown)}; known: {', '.join(ATTACKS)}.")
    stray = [a for a in options if a not in attacks]
    if stray:
        raise ConfigError(f"attack_options for {', '.join(stray)}, which is not evaluated.")
    resolved = {}
    for label in attacks:
        fn = ATTACKS[label]
        accepted = set(inspect.signature(fn).parameters) - _OWN_ARGUMENTS
        given = dict(options.get(label, {}))
        bad = sorted(set(given) - accepted)
        if bad:
            raise ConfigError(
                f"attack_options.{label}: unknown option(s) {', '.join(bad)}; "
                f"{label} accepts {', '.join(sorted(accepted))}."
            )
        if "generator" in accepted and generator is not None:
            given.setdefault("generator", generator)
        resolved[label] = functools.partial(fn, **given)
    return resolved


def _describe(fn: Callable) -> str:
    if isinstance(fn, functools.partial):
        shown = {k: v for k, v in fn.keywords.items() if k != "generator"}
        args = ", ".join(f"{k}={v}" for k, v in shown.items())
        return f"{fn.func.__name__}({args or 'defaults'})"
    return getattr(fn, "__name__", type(fn).__name__)


def _check_eps_list(eps: Sequence[float]) -> list[float]:
    if isinstance(eps, (int, float)):
        eps = [eps]
    values = []
    for e in eps:
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not 0 <= e <= 1:
            raise ConfigError(f"eps values must be numbers in [0, 1] (pixel units), got {e!r}.")
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


def _model_device(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _batches(
    data: Data, batch_size: int, limit: int | None, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(images, labels) batches from any of the accepted data forms, at most ``limit`` images."""
    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise ConfigError(f"max_examples must be >= 1, got {limit!r}.")
    if isinstance(data, ImageTensors):
        if not data.has_labels or bool((data.labels < 0).any()):
            raise DataError(
                f"{data.name} has unlabeled images: robustness evaluation needs labels."
            )
        # A fixed random order: max_examples draws a random subset (datasets are often sorted
        # by class) and the example plots show a mix of classes.
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
        for indices in order[:limit].split(batch_size):
            yield data.get_batch(indices)
        return
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        images, labels = data
        if not isinstance(labels, torch.Tensor) or labels.shape[:1] != images.shape[:1]:
            raise DataError("data must be (images, labels) with one label per image.")
        total = len(images) if limit is None else min(limit, len(images))
        for start in range(0, total, batch_size):
            stop = min(start + batch_size, total)
            yield images[start:stop], labels[start:stop]
        return
    seen = 0
    for batch in data:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise DataError(f"each batch must be (images, labels); got {type(batch).__name__}.")
        x, y = batch[0], batch[1]
        if limit is not None:
            x, y = x[: limit - seen], y[: limit - seen]
        seen += len(x)
        yield x, y
        if limit is not None and seen >= limit:
            return


def _check_logits(logits: Any, x: torch.Tensor, y: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != len(x):
        got = (
            f"shape {tuple(logits.shape)}"
            if isinstance(logits, torch.Tensor)
            else type(logits).__name__
        )
        raise DataError(
            f"the model must return logits of shape (N, num_classes); for {len(x)} images "
            f"it returned {got}."
        )
    if y.dtype.is_floating_point or y.ndim != 1 or len(y) != len(x):
        raise DataError(f"labels must be integers, one per image; got {y.dtype} {tuple(y.shape)}.")
    if bool((y < 0).any()) or bool((y >= logits.shape[1]).any()):
        raise DataError(
            f"labels must lie in [0, {logits.shape[1] - 1}] (the model has {logits.shape[1]} "
            f"outputs); got values in [{int(y.min())}, {int(y.max())}]."
        )


def _looks_like_probabilities(logits: torch.Tensor) -> bool:
    out = logits.detach().float()
    ones = torch.ones(len(out), device=out.device)
    return bool((out >= 0).all()) and torch.allclose(out.sum(1), ones, atol=1e-3)


def _warn(message: str) -> str:
    warnings.warn(message, RobustnessWarning, stacklevel=3)
    return message


def _mean(flags: torch.Tensor) -> float:
    return float(flags.float().mean())
