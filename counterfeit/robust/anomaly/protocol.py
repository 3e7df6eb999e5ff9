"""How anomaly detectors are measured: the one-class and leave-one-class-out protocols, AUROC
and AUPRC, and a deployment threshold set on normal data only.

* **One-class** (Ruff et al., ICML 2018, Sec. 4.1; Schlegl et al., MedIA 2019): each class
  in turn is normal; the detector is fitted on that class's training images only, and the
  test set mixes that class's test images (normal) with every other class (anomalies).
* **Leave-one-class-out** (Akcay et al., ACCV 2018, GANomaly, Sec. 4): each class in turn
  is the anomaly; the detector is fitted on all the other classes.

Anomalies are the positive class of AUROC and AUPRC (scikit-learn). The test labels only
ever reach the metrics: :func:`evaluate_protocol` hands the detector's ``fit`` the normal
training images and nothing else. The threshold for a deployed detector comes from held-out
normal images (a false-alarm rate the user chooses), never from test anomalies.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.robust.anomaly.base import AnomalyDetector

Protocol = Literal["one-class", "leave-one-out"]


def detection_scores(normal_scores: torch.Tensor, anomaly_scores: torch.Tensor) -> dict[str, float]:
    """AUROC and AUPRC of telling anomalies (positive) from normal images by their scores."""
    if len(normal_scores) == 0 or len(anomaly_scores) == 0:
        raise DataError("AUROC needs both normal and anomalous test images.")
    scores = torch.cat([normal_scores, anomaly_scores]).double().numpy()
    is_anomaly = np.r_[np.zeros(len(normal_scores)), np.ones(len(anomaly_scores))]
    return {
        "auroc": float(roc_auc_score(is_anomaly, scores)),
        "auprc": float(average_precision_score(is_anomaly, scores)),
    }


def hold_out(
    normal: torch.Tensor, fraction: float, seed: int = 0, what: str = "normal images"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fit, held_out)``: a random ``fraction`` of ``normal`` (at least one image) held out
    to set the threshold, the rest to fit on; the same ``seed`` gives the same split."""
    if not 0 < fraction < 1:
        raise ConfigError(f"the held-out fraction must be in (0, 1), got {fraction}.")
    order = torch.randperm(len(normal), generator=torch.Generator().manual_seed(seed))
    n_held_out = max(1, round(fraction * len(normal)))
    if len(normal) - n_held_out < 2:
        raise DataError(
            f"{what}: {len(normal)} normal images; need at least {n_held_out + 2} (some are "
            "held out for the threshold)."
        )
    return normal[order[n_held_out:]], normal[order[:n_held_out]]


@dataclass
class ClassResult:
    """One round of a protocol: ``target`` is the normal class (one-class) or the anomalous
    one (leave-one-out)."""

    target: int
    auroc: float
    auprc: float
    threshold: float
    detection_rate: float  # anomalies flagged at the threshold
    false_alarm_rate: float  # normal test images flagged at the threshold
    n_train: int
    n_normal_test: int
    n_anomaly_test: int
    fit_seconds: float  # wall-clock time of ``fit``
    score_ms_per_image: float  # wall-clock time of scoring the test set, per image


@dataclass
class ProtocolReport:
    """Every round of a protocol and their means."""

    protocol: Protocol
    detector: str
    rounds: list[ClassResult] = field(default_factory=list)

    @property
    def mean(self) -> dict[str, float]:
        keys = ("auroc", "auprc", "detection_rate", "false_alarm_rate")
        return {k: float(np.mean([getattr(r, k) for r in self.rounds])) for k in keys}

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "detector": self.detector,
            "mean": self.mean,
            "rounds": [asdict(r) for r in self.rounds],
        }


def _normal_mask(labels: torch.Tensor, target: int, protocol: Protocol) -> torch.Tensor:
    return labels == target if protocol == "one-class" else labels != target


@dataclass
class Round:
    """One fitted round: its result, the fitted (and calibrated) detector, its test scores."""

    result: ClassResult
    detector: AnomalyDetector
    scores: torch.Tensor
    normal_test: torch.Tensor  # bool, per test image


def evaluate_round(
    make_detector: Callable[[], AnomalyDetector],
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    target: int,
    protocol: Protocol = "one-class",
    validation_fraction: float = 0.1,
    false_alarm: float = 0.05,
    seed: int = 0,
) -> Round:
    """One round of ``protocol`` for class ``target`` (see :func:`evaluate_protocol`)."""
    if protocol not in ("one-class", "leave-one-out"):
        raise ConfigError(f"unknown protocol '{protocol}'; choose one-class or leave-one-out.")
    train_images, train_labels = train
    test_images, test_labels = test
    normal = train_images[_normal_mask(train_labels, target, protocol)]
    fit_images, val_images = hold_out(normal, validation_fraction, seed, f"class {target}")
    detector = make_detector()
    torch.manual_seed(seed)
    started = time.perf_counter()
    detector.fit(fit_images)
    fitted = time.perf_counter()
    scores = detector.score(test_images)
    scored = time.perf_counter()
    threshold = detector.calibrate(val_images, false_alarm)
    normal_test = _normal_mask(test_labels, target, protocol)
    metrics = detection_scores(scores[normal_test], scores[~normal_test])
    result = ClassResult(
        target=target,
        threshold=threshold,
        detection_rate=float((scores[~normal_test] > threshold).float().mean()),
        false_alarm_rate=float((scores[normal_test] > threshold).float().mean()),
        n_train=len(fit_images),
        n_normal_test=int(normal_test.sum()),
        n_anomaly_test=int((~normal_test).sum()),
        fit_seconds=round(fitted - started, 2),
        score_ms_per_image=round(1000 * (scored - fitted) / len(test_images), 3),
        **metrics,
    )
    return Round(result, detector, scores, normal_test)


def evaluate_protocol(
    make_detector: Callable[[], AnomalyDetector],
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    protocol: Protocol = "one-class",
    classes: Sequence[int] | None = None,
    validation_fraction: float = 0.1,
    false_alarm: float = 0.05,
    seed: int = 0,
) -> ProtocolReport:
    """Run ``protocol`` over ``classes`` (default: every label in ``test``).

    Each round fits a fresh ``make_detector()`` on the round's normal training images minus
    a ``validation_fraction`` held out to set the threshold at ``false_alarm``, then scores
    the test set. ``train`` and ``test`` are ``(images, labels)``.
    """
    classes = sorted(int(c) for c in test[1].unique()) if classes is None else list(classes)
    if not classes:
        raise ConfigError("no classes to evaluate.")
    report: ProtocolReport | None = None
    for target in classes:  # one fitted detector in memory at a time
        done = evaluate_round(
            make_detector, train, test, target, protocol, validation_fraction, false_alarm, seed
        )
        report = report or ProtocolReport(protocol, done.detector.name)
        report.rounds.append(done.result)
    assert report is not None
    return report
