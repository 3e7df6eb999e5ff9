"""Evaluating an adapted classifier, with and without target labels.

Users adapting to a new domain usually have no target labels, so next to the
target accuracy (reported when labels exist) we report label-free signals:
source validation accuracy, the mean entropy of target predictions, and how
separable source and target features still are (a logistic-regression domain
classifier on held-out features and the proxy A-distance of Ben-David et al.
2007, as in Ganin et al. 2016, Sec. 5.1.4). None of them is ever used to pick a
checkpoint: the evaluated model is the final one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from counterfeit.gan.data.tensors import ImageTensors, sample_indices
from counterfeit.gan.runtime import model_mode


@dataclass
class Predictions:
    """Logits, labels and (optionally) features of a model on one dataset."""

    logits: torch.Tensor
    labels: torch.Tensor
    features: torch.Tensor | None = None

    @property
    def predicted(self) -> torch.Tensor:
        return self.logits.argmax(1)


@torch.no_grad()
def predict(
    model: nn.Module,
    dataset: ImageTensors,
    batch_size: int = 512,
    feature_extractor: nn.Module | None = None,
    head: nn.Module | None = None,
) -> Predictions:
    """Run ``model`` over ``dataset`` in eval mode (restoring the mode afterwards).

    When ``feature_extractor`` and ``head`` are given, logits are
    ``head(feature_extractor(x))`` and the features are kept as well.
    """
    device = next(model.parameters()).device
    logits, features = [], []
    with model_mode(model, False):
        for start in range(0, len(dataset), batch_size):
            idx = torch.arange(start, min(start + batch_size, len(dataset)))
            x, _ = dataset.get_batch(idx)
            x = x.to(device)
            if feature_extractor is not None and head is not None:
                f = feature_extractor(x)
                features.append(f.float().cpu())
                logits.append(head(f).float().cpu())
            else:
                logits.append(model(x).float().cpu())
    return Predictions(
        torch.cat(logits), dataset.labels.clone(), torch.cat(features) if features else None
    )


def accuracy(predictions: Predictions) -> float:
    """Top-1 accuracy over the labelled examples."""
    mask = predictions.labels >= 0
    if not bool(mask.any()):
        return float("nan")
    return float((predictions.predicted[mask] == predictions.labels[mask]).float().mean())


def per_class_accuracy(predictions: Predictions, num_classes: int) -> list[float]:
    """Accuracy within each true class (NaN for classes absent from the data)."""
    out = []
    for c in range(num_classes):
        mask = predictions.labels == c
        out.append(
            float((predictions.predicted[mask] == c).float().mean())
            if bool(mask.any())
            else float("nan")
        )
    return out


def entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each row of ``probabilities`` (the last dimension); 0 log 0 = 0."""
    return -(probabilities * probabilities.clamp_min(1e-12).log()).sum(-1)


def mean_entropy(logits: torch.Tensor) -> float:
    """Mean entropy (nats) of softmax predictions: low = confident. Label-free."""
    log_p = torch.log_softmax(logits.float(), dim=1)
    return float(-(log_p.exp() * log_p).sum(1).mean())


def domain_separability(
    source_features: torch.Tensor, target_features: torch.Tensor, seed: int = 0
) -> dict[str, float]:
    """How well a linear classifier tells source from target features. Label-free.

    Trains a logistic regression on half of the (balanced) features and tests
    on the other half. Returns its test accuracy and the proxy A-distance
    ``2 (1 - 2 err)`` (Ben-David et al. 2007): 0 = indistinguishable, 2 = separable.
    The larger side is balanced by a random sample drawn with ``seed``, never its first
    rows (a test set may be sorted by class).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    n = min(len(source_features), len(target_features))
    source = source_features[sample_indices(len(source_features), n, seed)]
    target = target_features[sample_indices(len(target_features), n, seed)]
    features = torch.cat([source, target]).numpy()
    domains = np.r_[np.zeros(n), np.ones(n)]
    x_train, x_test, d_train, d_test = train_test_split(
        features, domains, test_size=0.5, random_state=seed, stratify=domains
    )
    scaler = StandardScaler().fit(x_train)
    classifier = LogisticRegression(max_iter=2000, C=1.0)
    classifier.fit(scaler.transform(x_train), d_train)
    acc = float(classifier.score(scaler.transform(x_test), d_test))
    error = 1.0 - acc
    return {"domain_accuracy": acc, "proxy_a_distance": 2.0 * (1.0 - 2.0 * min(error, 0.5))}


@dataclass
class AdaptationReport:
    """Everything :func:`evaluate_adaptation` measures for one model."""

    source: Predictions
    target: Predictions
    metrics: dict[str, float]
    target_per_class: list[float]


def evaluate_adaptation(
    feature_extractor: nn.Module,
    head: nn.Module,
    source_test: ImageTensors,
    target_test: ImageTensors,
    num_classes: int,
    batch_size: int = 512,
    seed: int = 0,
) -> AdaptationReport:
    """Source and target accuracy, target entropy and domain separability of one model."""
    model = nn.Sequential(feature_extractor, head)
    source = predict(model, source_test, batch_size, feature_extractor, head)
    target = predict(model, target_test, batch_size, feature_extractor, head)
    metrics = {
        "source_accuracy": accuracy(source),
        "target_entropy": mean_entropy(target.logits),
    }
    if target_test.has_labels:
        metrics["target_accuracy"] = accuracy(target)
    assert source.features is not None and target.features is not None
    metrics.update(domain_separability(source.features, target.features, seed))
    return AdaptationReport(source, target, metrics, per_class_accuracy(target, num_classes))
