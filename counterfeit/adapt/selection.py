"""Choosing the model to ship without target labels, with the target test labels sealed.

A user adapting to an unlabeled domain picks a checkpoint by a label-free validator
(:mod:`counterfeit.adapt.validators`); a reported number is only honest if it was
picked the same way. The protocol, made structural here:

- The target domain has an unlabeled *adaptation* split (training and validators see
  only this) and a labelled *test* split held in a :class:`SealedTestSet`: its images
  are available unlabeled, its labels only through :meth:`SealedTestSet.open`, once,
  for the report.
- :class:`CheckpointSelector`, a Trainer callback, keeps the classifier's weights every
  ``every`` steps (and at the end) with every validator's score; the selector never
  holds target labels.
- :func:`select` ships the checkpoint the chosen validator ranks first; after training,
  :func:`selection_summary` reports its target accuracy beside the final checkpoint's and,
  for the record only, the best any checkpoint reached (the oracle a user cannot run).

Selecting on target test labels is what most published domain-adaptation numbers do
(TLlib validates on the test set); the oracle column shows what that choice is worth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from counterfeit.adapt.evaluate import predict
from counterfeit.adapt.validators import Validator
from counterfeit.gan.callbacks import Callback, TrainerView
from counterfeit.gan.checkpoint import load_checkpoint, save_atomic
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.method import TrainingMethod
from counterfeit.gan.runtime import model_mode

Nets = Callable[[TrainingMethod], tuple[nn.Module, nn.Module]]  # method -> (features, head)


class SealedTestSet:
    """A labelled test split that nothing before the report can read the labels of.

    ``unlabeled`` gives the images without labels; :meth:`open` gives the labelled set,
    once: a second opening raises, so a report cannot quietly consult it twice.
    """

    def __init__(self, dataset: ImageTensors) -> None:
        self._dataset = dataset
        self._opened = False

    @property
    def unlabeled(self) -> ImageTensors:
        return self._dataset.unlabeled()

    @property
    def has_labels(self) -> bool:
        return self._dataset.has_labels

    def __len__(self) -> int:
        return len(self._dataset)

    def open(self) -> ImageTensors:
        """The labelled test split (once)."""
        if self._opened:
            raise RuntimeError(
                "the sealed target test set was already opened: its labels are read once, "
                "for the report."
            )
        self._opened = True
        return self._dataset


@dataclass
class Candidate:
    """A kept checkpoint: its step, its weights file and every validator's score."""

    step: int
    path: str
    scores: dict[str, float]


class CheckpointSelector(Callback):
    """Every ``every`` steps and at the end: score the classifier with each validator on
    source validation and unlabeled target data, and keep its weights.

    Args:
        validators: name -> validator; all are recorded (for the selection report).
        every: steps between checkpoints (>= 1).
        source_val: labelled source validation data.
        target: target adaptation data; its labels are stripped here, whatever it holds.
        directory: where each checkpoint's weights go (``step_NNNNNNN.pt``, atomic).
        nets: ``method -> (feature extractor, head)`` as evaluated.
        batch_size: evaluation batch size.

    Its list of candidates is part of the Trainer's checkpoint, so a resumed run keeps
    the checkpoints scored before the interruption. (The Trainer writes its last
    checkpoint before ``on_end``: a finished run that is later extended keeps its
    periodic checkpoints but not the one taken at its old final step.)
    """

    def __init__(
        self,
        validators: Mapping[str, Validator],
        every: int,
        source_val: ImageTensors,
        target: ImageTensors,
        directory: str | Path,
        nets: Nets,
        batch_size: int = 512,
    ) -> None:
        if every < 1:
            raise ConfigError(f"selection.every must be >= 1, got {every}.")
        if not validators:
            raise ConfigError("a checkpoint selector needs at least one validator.")
        self.validators = dict(validators)
        self.every = every
        self.source_val = source_val
        self.target = target.unlabeled()
        self.directory = Path(directory)
        self.nets = nets
        self.batch_size = batch_size
        self.candidates: list[Candidate] = []

    def state_dict(self) -> dict[str, Any]:
        return {"candidates": [asdict(c) for c in self.candidates]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.candidates = [Candidate(**c) for c in state["candidates"]]

    def scores(self, method: TrainingMethod) -> dict[str, float]:
        """Every validator's score of ``method`` (one pass over each dataset)."""
        features, head = self.nets(method)
        model = nn.Sequential(features, head)
        with model_mode(method, False), torch.no_grad():
            source = predict(model, self.source_val, self.batch_size, features, head)
            target = predict(model, self.target, self.batch_size, features, head)
        return {name: float(v(source, target)) for name, v in self.validators.items()}

    def keep(self, method: TrainingMethod, step: int) -> dict[str, float]:
        """Score ``method`` at ``step`` and save its weights (replacing a resumed duplicate)."""
        scores = self.scores(method)
        path = save_atomic({"step": step, "model": method.state_dict()}, self._path(step))
        self.candidates = [c for c in self.candidates if c.step != step]
        self.candidates.append(Candidate(step, str(path), scores))
        return {f"select/{name}": value for name, value in scores.items()}

    def on_step(self, trainer: TrainerView, step: int) -> dict[str, float] | None:
        return self.keep(trainer.method, step)

    def on_end(self, trainer: TrainerView) -> dict[str, float] | None:
        if self.candidates and self.candidates[-1].step == trainer.step:
            return None
        return self.keep(trainer.method, trainer.step)

    def _path(self, step: int) -> Path:
        return self.directory / f"step_{step:07d}.pt"


def select(candidates: list[Candidate], validator: str) -> Candidate:
    """The candidate ``validator`` scores highest (on a tie, the later step; NaN ranks last)."""
    if not candidates:
        raise ConfigError("no checkpoint was kept to select from.")
    if validator not in candidates[0].scores:
        raise ConfigError(
            f"validator '{validator}' was not recorded; recorded: "
            f"{', '.join(candidates[0].scores)}."
        )

    def rank(c: Candidate) -> tuple[float, int]:
        value = c.scores[validator]
        return (-np.inf if np.isnan(value) else value, c.step)

    return max(candidates, key=rank)


def load_candidate(method: TrainingMethod, candidate: Candidate) -> None:
    """Put ``candidate``'s weights into ``method`` (``weights_only`` loading)."""
    method.load_state_dict(load_checkpoint(candidate.path)["model"])


def selection_summary(
    candidates: list[Candidate], target_accuracy: Mapping[int, float], validator: str
) -> dict[str, Any]:
    """The selected checkpoint's target accuracy, the final checkpoint's and the oracle's.

    ``target_accuracy`` maps each candidate's step to its accuracy on the (opened) target
    test set; the oracle (the best of them) is for the record only.
    """
    chosen = select(candidates, validator)
    final = max(candidates, key=lambda c: c.step)
    oracle = max(candidates, key=lambda c: (target_accuracy[c.step], -c.step))
    return {
        "validator": validator,
        "selected_step": chosen.step,
        "selected_target_accuracy": target_accuracy[chosen.step],
        "final_step": final.step,
        "final_target_accuracy": target_accuracy[final.step],
        "oracle_step": oracle.step,
        "oracle_target_accuracy": target_accuracy[oracle.step],
        "checkpoints": [
            {"step": c.step, "scores": c.scores, "target_accuracy": target_accuracy[c.step]}
            for c in sorted(candidates, key=lambda c: c.step)
        ],
    }


def rank_correlations(
    checkpoints: list[dict[str, Any]],
) -> dict[str, float]:
    """Each validator's Spearman rank correlation with target accuracy over ``checkpoints``
    (``{"scores": {...}, "target_accuracy": a}`` records; NaN where undefined)."""
    if len(checkpoints) < 3:
        return {}
    from scipy.stats import spearmanr  # here: scipy.stats costs a second at ``import counterfeit``

    accuracies = [c["target_accuracy"] for c in checkpoints]
    correlations = {}
    for name in checkpoints[0]["scores"]:
        scores = [c["scores"][name] for c in checkpoints]
        if len(set(scores)) < 2 or len(set(accuracies)) < 2:
            correlations[name] = float("nan")
        else:
            correlations[name] = float(spearmanr(scores, accuracies).statistic)
    return correlations
