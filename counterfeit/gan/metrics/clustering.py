"""Cluster labels scored against classes, as InfoGAN's categorical code is."""

from __future__ import annotations

import numpy as np
import torch

from counterfeit.gan.errors import DataError


def cluster_accuracy(
    clusters: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray
) -> float:
    """Accuracy of cluster ids against class labels under the best one-to-one matching
    (Hungarian algorithm, scipy's ``linear_sum_assignment``)."""
    from scipy.optimize import linear_sum_assignment

    clusters, labels = np.asarray(clusters).ravel(), np.asarray(labels).ravel()
    if clusters.shape != labels.shape or clusters.size == 0:
        raise DataError(
            f"cluster_accuracy needs as many cluster ids as labels (and some), got "
            f"{clusters.size} and {labels.size}."
        )
    size = int(max(clusters.max(), labels.max())) + 1
    counts = np.zeros((size, size), dtype=np.int64)
    np.add.at(counts, (clusters, labels), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / clusters.size)
