"""Validators: scores of an adapted classifier that need no target label (higher is better).

A user adapting to an unlabeled domain must still pick a checkpoint and settings; these
are the scores the literature proposes for it. Each takes the model's
:class:`~counterfeit.adapt.evaluate.Predictions` on labelled *source validation* data and
on *unlabeled* target data, and refuses target predictions that carry labels: a
validator cannot read what it must not see. :meth:`Validator.score` runs a model to get
them, stripping the target labels itself.

==================  ====================================================================
``source-accuracy`` accuracy on held-out source data (Ganin et al. 2016's choice).
``entropy``         minus the mean entropy of target predictions (confident is better;
                    Morerio et al. 2018).
``im``              information maximisation: the entropy of the mean target prediction
                    minus the mean entropy (diverse and confident; Shi & Sha 2012,
                    Liang et al. 2020).
``bnm``             the nuclear norm of the batch of target softmax predictions over
                    the number of rows (Cui et al., CVPR 2020, as a score).
``snd``             soft neighbourhood density (Saito et al., ICCV 2021): the mean entropy
                    of each target point's softmax-weighted similarity (temperature 0.05)
                    to the others, on L2-normalised softmax outputs.
``dev``             deep embedded validation (You et al., ICML 2019): minus the
                    control-variate, importance-weighted source-validation risk, the
                    weights from a domain classifier on features.
``separability``    minus the proxy A-distance of source and target features (Ben-David
                    et al. 2007): features the domains share are better.
==================  ====================================================================

``VALIDATORS[name]()`` builds one by name; :func:`collapse_score` turns one into the
``fn(method)`` the Trainer's :class:`~counterfeit.gan.callbacks.CollapseStop` takes.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.adapt.evaluate import (
    Predictions,
    accuracy,
    domain_separability,
    entropy,
    mean_entropy,
    predict,
)
from counterfeit.gan.data.tensors import UNLABELED, ImageTensors
from counterfeit.gan.errors import ConfigError, DataError


class Validator(ABC):
    """A label-free model-selection score; higher is better.

    Subclasses implement :meth:`compute` from the source-validation and target
    predictions; ``needs_features`` says whether they read ``Predictions.features``.
    """

    name: str = ""
    needs_features: bool = False

    def __call__(self, source: Predictions, target: Predictions) -> float:
        """The score of a model whose predictions on source validation and (unlabeled)
        target data these are.

        Raises:
            DataError: ``target`` carries labels, or features are needed and missing.
        """
        if bool((target.labels != UNLABELED).any()):
            raise DataError(
                f"the {self.name} validator takes unlabeled target data: predict on "
                "dataset.unlabeled(), or call Validator.score, which does so."
            )
        if self.needs_features and (source.features is None or target.features is None):
            raise DataError(
                f"the {self.name} validator reads features: predict with "
                "feature_extractor= and head=."
            )
        return float(self.compute(source, target))

    @abstractmethod
    def compute(self, source: Predictions, target: Predictions) -> float:
        """The score (higher is better) from validated predictions."""

    def score(
        self,
        feature_extractor: nn.Module,
        head: nn.Module,
        source_val: ImageTensors,
        target: ImageTensors,
        batch_size: int = 512,
    ) -> float:
        """Run ``head(feature_extractor(x))`` on source validation and target data (its
        labels stripped before the model sees it) and score the predictions."""
        model = nn.Sequential(feature_extractor, head)
        source_predictions = predict(model, source_val, batch_size, feature_extractor, head)
        target_predictions = predict(model, target.unlabeled(), batch_size, feature_extractor, head)
        return self(source_predictions, target_predictions)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SourceAccuracy(Validator):
    """Accuracy on held-out source data."""

    name = "source-accuracy"

    def compute(self, source: Predictions, target: Predictions) -> float:
        return accuracy(source)


class Entropy(Validator):
    """Minus the mean entropy (nats) of the target predictions."""

    name = "entropy"

    def compute(self, source: Predictions, target: Predictions) -> float:
        return -mean_entropy(target.logits)


class InformationMaximisation(Validator):
    """``H(mean_i p_i) - mean_i H(p_i)`` over target softmax outputs ``p_i``: high when
    each prediction is confident and the classes are used evenly."""

    name = "im"

    def compute(self, source: Predictions, target: Predictions) -> float:
        diversity = entropy(F.softmax(target.logits.float(), dim=1).mean(0))
        return float(diversity) - mean_entropy(target.logits)


class BatchNuclearNorm(Validator):
    """``||P||_* / n`` for the n x K matrix P of target softmax outputs (Cui et al. 2020):
    large when predictions are confident and spread over many classes."""

    name = "bnm"

    def compute(self, source: Predictions, target: Predictions) -> float:
        p = F.softmax(target.logits.float(), dim=1)
        return float(torch.linalg.matrix_norm(p, ord="nuc") / len(p))


class SoftNeighbourhoodDensity(Validator):
    """Saito et al. 2021's SND: for each target point, the softmax over its cosine
    similarities to every other point (temperature ``temperature``) and that
    distribution's entropy, averaged; computed on the softmax outputs, as the paper
    recommends, in row blocks of ``block`` to bound memory."""

    name = "snd"

    def __init__(self, temperature: float = 0.05, block: int = 1024) -> None:
        if temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}.")
        self.temperature, self.block = temperature, block

    def compute(self, source: Predictions, target: Predictions) -> float:
        points = F.normalize(F.softmax(target.logits.float(), dim=1), dim=1)
        n = len(points)
        if n < 2:
            raise DataError("SND needs at least 2 target points.")
        entropies = []
        for start in range(0, n, self.block):
            rows = points[start : start + self.block]
            similarity = rows @ points.T / self.temperature
            own = torch.arange(len(rows))
            similarity[own, own + start] = -math.inf  # a point is not its own neighbour
            entropies.append(entropy(F.softmax(similarity, dim=1)))
        return float(torch.cat(entropies).mean())

    def __repr__(self) -> str:
        return f"SoftNeighbourhoodDensity(temperature={self.temperature})"


class DeepEmbeddedValidation(Validator):
    """You et al. 2019's DEV: the source-validation loss weighted by the density ratio
    ``p_target(f) / p_source(f)`` of the features, with its control variate
    (``risk = mean(w l) + eta mean(w) - eta``, ``eta = -Cov(w l, w) / Var(w)``); the
    score is ``-risk``.

    The ratio comes from a logistic-regression domain classifier (scikit-learn, inverse
    regularisation chosen from ``cs`` on a held-out fifth, as the authors' code chooses
    its weight decay). Deviation: the paper fits it on source *training* features; with
    only source validation data here, the classifier is fitted on one half of it (with
    the target features) and the risk is taken on the other half.
    """

    name = "dev"
    needs_features = True

    def __init__(self, cs: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0), seed: int = 0) -> None:
        self.cs, self.seed = cs, seed

    def compute(self, source: Predictions, target: Predictions) -> float:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler

        assert source.features is not None and target.features is not None
        n = len(source.labels)
        if n < 4 or len(target.logits) < 2:
            raise DataError("DEV needs at least 4 source validation and 2 target points.")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        fit_half, risk_half = order[: n // 2], order[n // 2 :]
        features = torch.cat([source.features[fit_half], target.features]).numpy()
        domains = np.r_[np.zeros(len(fit_half)), np.ones(len(target.features))]
        x_fit, x_check, d_fit, d_check = train_test_split(
            features, domains, test_size=0.2, random_state=self.seed, stratify=domains
        )
        scaler = StandardScaler().fit(x_fit)
        fitted = [
            LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(x_fit), d_fit)
            for c in self.cs
        ]
        best = max(fitted, key=lambda m: m.score(scaler.transform(x_check), d_check))
        p_target = best.predict_proba(scaler.transform(source.features[risk_half].numpy()))[:, 1]
        prior = (domains == 0).sum() / (domains == 1).sum()
        weights = np.clip(p_target, 1e-6, 1 - 1e-6) / np.clip(1 - p_target, 1e-6, 1) * prior
        losses = F.cross_entropy(
            source.logits[risk_half].float(), source.labels[risk_half], reduction="none"
        ).numpy()
        return -dev_risk(weights, losses)

    def __repr__(self) -> str:
        return f"DeepEmbeddedValidation(cs={self.cs}, seed={self.seed})"


def dev_risk(weights: np.ndarray, losses: np.ndarray) -> float:
    """You et al. 2019, Alg. 1: ``mean(w l) + eta mean(w) - eta`` with the control-variate
    coefficient ``eta = -Cov(w l, w) / Var(w)``."""
    weighted = weights * losses
    variance = np.var(weights, ddof=1)
    eta = -np.cov(weighted, weights)[0, 1] / variance if variance > 0 else 0.0
    return float(weighted.mean() + eta * weights.mean() - eta)


class Separability(Validator):
    """Minus the proxy A-distance of a logistic-regression domain classifier on source
    and target features (:func:`~counterfeit.adapt.evaluate.domain_separability`)."""

    name = "separability"
    needs_features = True

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def compute(self, source: Predictions, target: Predictions) -> float:
        assert source.features is not None and target.features is not None
        return -domain_separability(source.features, target.features, self.seed)["proxy_a_distance"]


VALIDATORS: dict[str, type[Validator]] = {
    v.name: v
    for v in (
        SourceAccuracy,
        Entropy,
        InformationMaximisation,
        BatchNuclearNorm,
        SoftNeighbourhoodDensity,
        DeepEmbeddedValidation,
        Separability,
    )
}


def build_validator(name: str) -> Validator:
    """The validator registered as ``name`` (a :class:`ConfigError` naming the known ones)."""
    if name not in VALIDATORS:
        raise ConfigError(f"unknown validator '{name}'; known: {', '.join(VALIDATORS)}.")
    return VALIDATORS[name]()


def collapse_score(
    validator: Validator, source_val: ImageTensors, target: ImageTensors
) -> Callable[[nn.Module], float]:
    """``fn(method) -> validator score`` of a method with ``features`` and
    ``label_predictor`` (DANN's parts), for :class:`~counterfeit.gan.callbacks.CollapseStop`."""

    def score(method: nn.Module) -> float:
        return validator.score(method.features, method.label_predictor, source_val, target)

    return score
