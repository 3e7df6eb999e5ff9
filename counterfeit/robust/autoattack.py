"""AutoAttack's ensemble: each attack runs only on the images every earlier one left
correctly classified, and an image counts as robust only if it survives them all.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", ICML 2020, Sec. 5. The ``standard`` version is the
authors' APGD-CE (100 steps, no restart), APGD-T (9 target classes, 100 steps) and
Square (5,000 queries), for L-inf and L2 alike; their FAB-T stage is not implemented
here, so this ensemble is
AutoAttack without FAB-T (in the authors' tables FAB-T rarely changes the final number,
but that is their claim, not a measurement of ours). The ``rand`` version, for randomized
defences, is theirs: APGD-CE and APGD-DLR, each gradient averaged over 20 passes (EOT);
``custom`` runs the stages you list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.runtime import model_mode
from counterfeit.robust.apgd import apgd
from counterfeit.robust.attacks import Norm, _check, _norm
from counterfeit.robust.contract import Attack
from counterfeit.robust.models import checked_logits
from counterfeit.robust.square import square

STAGES = ("apgd-ce", "apgd-dlr", "apgd-t", "square")
STANDARD = ("apgd-ce", "apgd-t", "square")
RAND = ("apgd-ce", "apgd-dlr")
RAND_EOT_ITER = 20


@dataclass
class AutoAttackResult:
    """What the ensemble did.

    Attributes:
        adversarial: per image, the first stage's image that fooled the model, else ``x``.
        robust: per image, True if no stage fooled the model (False where it was wrong
            on the clean image).
        clean_accuracy: the model's accuracy on ``x``.
        stages: ``(stage, robust accuracy after it)`` in the order they ran.
        fooled_by: per image, the stage that fooled it (``"clean"`` where the clean
            image was already misclassified, ``None`` where none did).
    """

    adversarial: torch.Tensor
    robust: torch.Tensor
    clean_accuracy: float
    stages: list[tuple[str, float]] = field(default_factory=list)
    fooled_by: list[str | None] = field(default_factory=list)

    @property
    def robust_accuracy(self) -> float:
        return float(self.robust.float().mean())


def autoattack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    norm: Norm | float = "inf",
    version: Literal["standard", "rand", "custom"] = "standard",
    attacks: Sequence[str] | None = None,
    steps: int = 100,
    queries: int = 5000,
    seed: int = 0,
    progress: Callable[[str, float], None] | None = None,
) -> AutoAttackResult:
    """Run AutoAttack's stages in turn, each on the images still robust.

    Args:
        model: maps images in ``[0, 1]`` to logits.
        x: the images; y: their true labels.
        eps: the budget in pixel units (L-inf, or L2 over (C, H, W)).
        norm: ``"inf"`` or ``"2"``.
        version: ``standard`` (APGD-CE, APGD-T, Square), ``rand`` (APGD-CE and APGD-DLR
            with 20 EOT passes per step, for randomized models) or ``custom`` (``attacks``).
        attacks: the stages of ``custom``, from ``STAGES``.
        steps: APGD's iterations per run (the authors': 100).
        queries: Square's queries per image (the authors': 5,000).
        seed: every stage's seed.
        progress: called with (stage, robust accuracy) after each stage.

    Returns:
        An :class:`AutoAttackResult`.
    """
    norm = _norm(str(norm))
    _check(model, x, eps, (0.0, 1.0), False, y, None)
    if y is None:
        raise ConfigError("autoattack needs the true labels y.")
    stages = _stages(version, attacks, norm)
    y = y.to(x.device)
    with torch.no_grad(), model_mode(model, False):
        robust = checked_logits(model, x.detach()).argmax(1) == y
    result = AutoAttackResult(
        adversarial=x.detach().clone(),
        robust=robust.clone(),
        clean_accuracy=float(robust.float().mean()),
        fooled_by=[None if r else "clean" for r in robust.tolist()],
    )
    for stage in stages:
        todo = result.robust.nonzero().squeeze(1)
        if len(todo):
            eot_iter = RAND_EOT_ITER if version == "rand" else 1
            x_adv = _run_stage(
                stage, model, x[todo], y[todo], eps, norm, steps, queries, seed, eot_iter
            )
            with torch.no_grad(), model_mode(model, False):
                fooled = checked_logits(model, x_adv).argmax(1) != y[todo]
            result.adversarial[todo[fooled]] = x_adv[fooled]
            result.robust[todo[fooled]] = False
            for index in todo[fooled].tolist():
                result.fooled_by[index] = stage
        result.stages.append((stage, result.robust_accuracy))
        if progress is not None:
            progress(stage, result.robust_accuracy)
    return result


class AutoAttack(Attack):
    """:func:`autoattack` under the attack contract, for :func:`robust.evaluate`
    (``attacks=["autoattack"]``, ``--attacks autoattack``).

    Besides the adversarial images it keeps, per budget and summed over the batches of
    an evaluation, how many images were still robust after each stage
    (:meth:`stage_table`) and how many only the black-box Square stage fooled
    (:attr:`black_box_only`: a sign of gradient masking). The arguments are those of
    :func:`autoattack`.
    """

    def __init__(
        self,
        *,
        norm: Norm | float = "inf",
        version: Literal["standard", "rand", "custom"] = "standard",
        attacks: Sequence[str] | None = None,
        steps: int = 100,
        queries: int = 5000,
        seed: int = 0,
    ) -> None:
        self.norm = _norm(str(norm))
        self.stage_names = _stages(version, attacks, self.norm)
        self.options = {
            "norm": self.norm,
            "version": version,
            "attacks": attacks,
            "steps": steps,
            "queries": queries,
        }
        self.reset(seed)

    def reset(self, seed: int) -> None:
        self.seed = seed
        self._robust: dict[float, dict[str, int]] = {}
        self._seen: dict[float, int] = {}
        self.black_box_only: dict[float, int] = {}

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, budget: float
    ) -> torch.Tensor:
        result = autoattack(model, x, y, budget, seed=self.seed, **self.options)
        counts = self._robust.setdefault(budget, {"clean": 0})
        counts["clean"] += round(result.clean_accuracy * len(x))
        for stage, accuracy in result.stages:
            counts[stage] = counts.get(stage, 0) + round(accuracy * len(x))
        self._seen[budget] = self._seen.get(budget, 0) + len(x)
        square_only = sum(stage == "square" for stage in result.fooled_by)
        self.black_box_only[budget] = self.black_box_only.get(budget, 0) + square_only
        return result.adversarial

    def stage_table(self) -> dict[float, list[tuple[str, float]]]:
        """Per budget: ``(stage, robust accuracy after it)``, from ``clean`` to the last."""
        return {
            budget: [(stage, count / self._seen[budget]) for stage, count in counts.items()]
            for budget, counts in self._robust.items()
        }

    def describe(self) -> str:
        return (
            f"autoattack(version={self.options['version']}, stages={'+'.join(self.stage_names)}, "
            f"norm=L{self.norm}, steps={self.options['steps']}, "
            f"queries={self.options['queries']})"
        )


def _stages(version: str, attacks: Sequence[str] | None, norm: Norm) -> tuple[str, ...]:
    """The stages a version runs (a :class:`ConfigError` for a bad version or stage)."""
    if version in ("standard", "rand"):
        if attacks is not None:
            raise ConfigError(f"attacks= is for version='custom'; '{version}' runs its own stages.")
        stages = STANDARD if version == "standard" else RAND
    elif version == "custom":
        stages = tuple(attacks or ())
        unknown = [a for a in stages if a not in STAGES]
        if not stages or unknown:
            raise ConfigError(
                f"custom AutoAttack needs attacks from {', '.join(STAGES)}; got {list(stages)}."
            )
    else:
        raise ConfigError(f"version must be 'standard', 'rand' or 'custom', got {version!r}.")
    return stages


def _run_stage(
    stage: str,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    norm: Norm,
    steps: int,
    queries: int,
    seed: int,
    eot_iter: int = 1,
) -> torch.Tensor:
    """One stage's adversarial images (the authors' settings but for steps and queries)."""
    if stage == "square":
        return square(model, x, y, eps, norm=norm, queries=queries, seed=seed)
    if stage == "apgd-t":
        return apgd(
            model, x, y, eps, norm=norm, targeted=True, n_target_classes=9, steps=steps, seed=seed
        )
    loss = "dlr" if stage == "apgd-dlr" else "ce"
    return apgd(model, x, y, eps, norm=norm, loss=loss, steps=steps, eot_iter=eot_iter, seed=seed)
