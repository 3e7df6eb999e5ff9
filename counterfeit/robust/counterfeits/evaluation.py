"""How well a detector of generated images works, and how far it generalises.

- :func:`choose_threshold`: the P(fake) threshold that maximises accuracy on *validation*
  real and fake images (never on the test images it is then reported on).
- :func:`detection_metrics`: AUROC (threshold-free), and accuracy at that threshold on
  real and fake test images, with each side's accuracy.
- :func:`generalisation_matrix`: detectors trained on one generator each, tested on every
  generator's fakes against the same real test images (Wang et al., CVPR 2020, Table 2).
- :func:`degrade`: the post-processing a counterfeit meets on its way (JPEG, resizing,
  blur), to measure how AUROC falls with it (Wang et al., Fig. 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import albumentations as A
import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.robust.anomaly.protocol import detection_scores
from counterfeit.robust.counterfeits.augment import apply_per_image
from counterfeit.robust.counterfeits.nets import fake_probability

Degradation = Literal["jpeg", "resize", "blur"]


def choose_threshold(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> float:
    """The threshold on P(fake) with the best balanced accuracy on validation scores
    (fake when the score is above it); ties go to the lowest such threshold."""
    candidates = torch.cat([torch.tensor([0.5]), real_scores, fake_scores]).unique()
    best, best_accuracy = 0.5, -1.0
    for t in candidates.tolist():
        accuracy = 0.5 * float((real_scores <= t).float().mean() + (fake_scores > t).float().mean())
        if accuracy > best_accuracy:
            best, best_accuracy = t, accuracy
    return best


def detection_metrics(
    net: nn.Module, real: torch.Tensor, fake: torch.Tensor, threshold: float = 0.5
) -> dict[str, float]:
    """AUROC of P(fake) telling ``fake`` from ``real`` images (both in [0, 1]), and the
    balanced accuracy at ``threshold`` with the real and fake sides' accuracies."""
    return score_metrics(fake_probability(net, real), fake_probability(net, fake), threshold)


def score_metrics(
    real_scores: torch.Tensor, fake_scores: torch.Tensor, threshold: float = 0.5
) -> dict[str, float]:
    """:func:`detection_metrics` from the detector's P(fake) of the real and fake images."""
    real_accuracy = float((real_scores <= threshold).float().mean())
    fake_accuracy = float((fake_scores > threshold).float().mean())
    return {
        "auroc": detection_scores(real_scores, fake_scores)["auroc"],
        "accuracy": 0.5 * (real_accuracy + fake_accuracy),
        "real_accuracy": real_accuracy,
        "fake_accuracy": fake_accuracy,
    }


def generalisation_matrix(
    detectors: Mapping[str, tuple[nn.Module, float]],
    real: torch.Tensor,
    fakes: Mapping[str, torch.Tensor],
) -> dict[str, dict[str, dict[str, float]]]:
    """``trained on -> tested on -> metrics``: each detector (with its validation threshold)
    on every generator's test fakes against the same real test images."""
    matrix = {}
    for trained, (net, threshold) in detectors.items():
        real_scores = fake_probability(net, real)  # once per detector
        matrix[trained] = {
            tested: score_metrics(real_scores, fake_probability(net, fake), threshold)
            for tested, fake in fakes.items()
        }
    return matrix


def degrade(images: torch.Tensor, kind: Degradation, level: float, seed: int = 0) -> torch.Tensor:
    """``images`` in [0, 1] after ``jpeg`` at quality ``level``, ``resize`` down by the factor
    ``level`` (< 1) and back up (bilinear), or Gaussian ``blur`` with sigma ``level``."""
    if kind == "resize":
        if not 0 < level <= 1:
            raise ConfigError(f"resize takes a factor in (0, 1]; got {level}.")
        size = images.shape[-1]
        small = F.interpolate(images, scale_factor=level, mode="bilinear", antialias=True)
        return F.interpolate(small, size=size, mode="bilinear").clamp(0, 1)
    if kind == "jpeg":
        transform = A.ImageCompression(quality_range=(int(level), int(level)), p=1.0)
    elif kind == "blur":
        transform = A.GaussianBlur(blur_limit=0, sigma_limit=(level, level), p=1.0)
    else:
        raise ConfigError(f"unknown degradation '{kind}'; use jpeg, resize or blur.")
    return apply_per_image(images, A.Compose([transform], seed=seed))
