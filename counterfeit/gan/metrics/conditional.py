"""Does a class-conditional generator draw the class it is asked for?

:func:`class_accuracy` generates ``n_per_class`` images of every class and reads them with a
classifier (a :class:`~counterfeit.gan.metrics.base.FeatureExtractor`'s ``head``, e.g. the
digits classifier of FID-digits): the share read as the class asked for, overall and per
class. A generator that ignores its label scores near chance (1 / classes); a collapsed
class shows as a low entry.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from counterfeit.gan.metrics.base import FeatureExtractor


@torch.no_grad()
def class_accuracy(
    sample: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    extractor: FeatureExtractor,
    num_classes: int,
    n_per_class: int = 100,
    batch_size: int = 500,
    seed: int = 0,
) -> tuple[float, list[float]]:
    """``(overall, per class)`` accuracy of ``extractor`` on ``sample(labels, generator)``'s
    images of each class (a seeded CPU generator: the same noise every call)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    device = next(extractor.parameters()).device
    hits = torch.zeros(num_classes)
    for chunk in labels.split(batch_size):
        images = sample(chunk, generator).float().to(device)
        predicted = extractor.head(extractor(images)).argmax(1).cpu()
        hits += torch.bincount(chunk[predicted == chunk], minlength=num_classes).float()
    per_class = (hits / n_per_class).tolist()
    return float(hits.sum() / len(labels)), per_class
