"""Does a class-conditional generator draw the class it is asked for, and draw it well?

:func:`conditional_scores` generates ``n_per_class`` images of every class, reads them once
with a :class:`~counterfeit.gan.metrics.base.FeatureExtractor` (e.g. the digits classifier
of FID-digits) and gives, per class and overall:

- the **class accuracy**: the share the extractor's classifier reads as the class asked for.
  A generator that ignores its label scores near chance (1 / classes); a collapsed class
  shows as a low entry;
- the **intra-class FID** (Miyato & Koyama, ICLR 2018; BigGAN's "intra-FID"): the FID of the
  class's generated images against the real images of that class, so a generator that
  draws every class as the same average digit scores badly even when its overall FID is
  good. With few images per class it is biased upwards: compare values at equal counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from counterfeit.gan.errors import DataError
from counterfeit.gan.metrics.base import FeatureExtractor
from counterfeit.gan.metrics.scores import GenerativeScores


@dataclass
class ConditionalScores:
    """Class accuracy and intra-class FID, overall (the mean over classes) and per class."""

    accuracy: float
    per_class_accuracy: list[float]
    intra_fid: float
    per_class_fid: list[float]
    n_fake_per_class: int
    n_real_per_class: list[int]


@torch.no_grad()
def conditional_scores(
    sample: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    extractor: FeatureExtractor,
    real: torch.Tensor,
    real_labels: torch.Tensor,
    num_classes: int,
    n_per_class: int = 100,
    batch_size: int = 500,
    seed: int = 0,
) -> ConditionalScores:
    """Score ``sample(labels, generator)``'s images (in [0, 1]; a seeded CPU generator, so
    the same noise every call) against ``real`` images in [0, 1] with ``real_labels``."""
    missing = [c for c in range(num_classes) if int((real_labels == c).sum()) < 2]
    if missing:
        raise DataError(
            f"intra-class FID needs at least 2 real images of every class; {missing} have fewer."
        )
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    images = torch.cat(
        [sample(chunk, generator).float().cpu() for chunk in labels.split(batch_size)]
    )
    features, logits = extractor.extract(images, batch_size)
    hits = torch.bincount(labels[logits.argmax(1) == labels], minlength=num_classes).float()
    per_class_accuracy = (hits / n_per_class).tolist()
    per_class_fid = []
    for c in range(num_classes):
        scorer = GenerativeScores(
            extractor, real[real_labels == c], ["fid"], batch_size=batch_size, seed=seed
        )
        mine = labels == c
        per_class_fid.append(scorer.from_features(features[mine], logits[mine])[0].value)
    return ConditionalScores(
        accuracy=float(hits.sum() / len(labels)),
        per_class_accuracy=per_class_accuracy,
        intra_fid=sum(per_class_fid) / num_classes,
        per_class_fid=per_class_fid,
        n_fake_per_class=n_per_class,
        n_real_per_class=[int((real_labels == c).sum()) for c in range(num_classes)],
    )
