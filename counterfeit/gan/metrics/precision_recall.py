"""Improved precision and recall of generative models (Kynkäänniemi, Karras, Laine, Lehtinen
& Aila, "Improved Precision and Recall Metric for Assessing Generative Models", NeurIPS
2019, Sec. 2).

Each set of features spans a manifold estimated as the union of balls around its points,
each ball reaching the point's k-th nearest neighbour in the same set (k = 3 in the paper):

* precision: the share of generated samples inside the real manifold (are they realistic?);
* recall: the share of real samples inside the generated manifold (is all of the data
  covered?). Mode collapse shows as high precision with low recall.

The paper uses VGG-16 features of 50k images; here any feature extractor (FID-digits'
classifier, say) and the counts given, reported beside the values.
"""

from __future__ import annotations

import torch

from counterfeit.gan.errors import DataError


def _radii(features: torch.Tensor, k: int, batch_size: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point of the same set."""
    radii = []
    for chunk in features.split(batch_size):
        distances = torch.cdist(chunk, features)
        radii.append(distances.kthvalue(k + 1, dim=1).values)  # k + 1: the point itself is 0
    return torch.cat(radii)


def _inside(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, batch_size: int):
    """Whether each point lies within some centre's ball."""
    hits = [
        (torch.cdist(chunk, centres) <= radii[None]).any(dim=1)
        for chunk in points.split(batch_size)
    ]
    return torch.cat(hits)


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3, batch_size: int = 1000
) -> tuple[float, float]:
    """``(precision, recall)`` of generated features ``fake`` (N, D) against ``real`` (M, D)."""
    if min(len(real), len(fake)) <= k:
        raise DataError(
            f"precision/recall with k={k} needs more than {k} real and generated samples, got "
            f"{len(real)} and {len(fake)}."
        )
    real, fake = real.double(), fake.double()
    precision = _inside(fake, real, _radii(real, k, batch_size), batch_size).double().mean()
    recall = _inside(real, fake, _radii(fake, k, batch_size), batch_size).double().mean()
    return float(precision), float(recall)
