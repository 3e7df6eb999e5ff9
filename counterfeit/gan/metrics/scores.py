"""FID, KID and Inception Score of generated images on a feature extractor's features.

The scores are torchmetrics' (``FrechetInceptionDistance``,
``KernelInceptionDistance``, ``InceptionScore``), fed with features that a
:class:`~gan.metrics.base.FeatureExtractor` computes once per image set. FID
(Heusel et al. 2017), KID (Binkowski et al. 2018, unbiased MMD^2 with a cubic
polynomial kernel over random subsets), IS (Salimans et al. 2016). Every score
comes with the number of real and generated images it used (:class:`Score`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.metrics.base import FeatureExtractor

MetricName = Literal["fid", "kid", "is"]


@dataclass(frozen=True)
class Score:
    """One score with what it was computed from."""

    metric: str  # e.g. "fid-digits"
    value: float
    std: float | None  # over KID subsets / IS splits
    n_real: int  # 0 for the Inception Score, which needs no real images
    n_fake: int
    features: str

    @property
    def label(self) -> str:
        """Display name: ``FID-digits``, ``KID``, ..."""
        base, _, suffix = self.metric.partition("-")
        return base.upper() + (f"-{suffix}" if suffix else "")

    def __str__(self) -> str:
        spread = f" +- {self.std:.4g}" if self.std is not None else ""
        real = f" vs {self.n_real} real" if self.n_real else ""
        return f"{self.label} {self.value:.4g}{spread} ({self.n_fake} generated{real})"


class _Precomputed(nn.Identity):
    """Lets torchmetrics' metrics take features we computed (``num_features`` is all they ask)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features


class GenerativeScores:
    """FID, KID and IS of generated images against one fixed set of real images.

    The real images' features (and logits, kept as ``real_logits``) are computed once;
    each call scores a new generated set (e.g. at every evaluation during training).

    Args:
        extractor: the :class:`FeatureExtractor` (e.g. :class:`DigitsFeatures`).
        real: real images in [0, 1], (N, C, H, W).
        metrics: any of ``fid``, ``kid``, ``is``.
        kid_subset_size, kid_subsets: KID's random subsets (Binkowski et al.: 1000, 100).
        is_splits: IS's splits (Salimans et al.: 10).
        batch_size: images per feature-extraction batch.
        seed: seed of KID's subsets and IS's split order (the global random state is untouched).
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        real: torch.Tensor,
        metrics: Sequence[MetricName] = ("fid", "kid", "is"),
        kid_subset_size: int = 1000,
        kid_subsets: int = 100,
        is_splits: int = 10,
        batch_size: int = 500,
        seed: int = 0,
    ) -> None:
        unknown = set(metrics) - {"fid", "kid", "is"}
        if unknown or not metrics:
            raise ConfigError(f"unknown metrics {sorted(unknown) or '[]'}; use fid, kid, is.")
        if len(real) < 2:
            raise DataError(f"FID/KID need at least 2 real images, got {len(real)}.")
        if "kid" in metrics and kid_subset_size > len(real):
            raise ConfigError(
                f"KID subset size {kid_subset_size} exceeds the {len(real)} real images; "
                "lower kid_subset_size or add real images."
            )
        self.extractor = extractor.eval()
        self.metrics = tuple(metrics)
        self.kid_subset_size = kid_subset_size
        self.kid_subsets = kid_subsets
        self.is_splits = is_splits
        self.batch_size = batch_size
        self.seed = seed
        self.real_features, self.real_logits = extractor.extract(real, batch_size)

    def __call__(self, fake: torch.Tensor) -> list[Score]:
        """Score generated images ``fake`` in [0, 1] (N, C, H, W)."""
        features, logits = self.extractor.extract(fake, self.batch_size)
        return self.from_features(features, logits)

    def from_features(self, features: torch.Tensor, logits: torch.Tensor) -> list[Score]:
        """Score generated images given their features and logits (from ``extractor.extract``)."""
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.inception import InceptionScore
        from torchmetrics.image.kid import KernelInceptionDistance

        n_real, n_fake = len(self.real_features), len(features)
        if "kid" in self.metrics and self.kid_subset_size > n_fake:
            raise ConfigError(
                f"KID subset size {self.kid_subset_size} exceeds the {n_fake} generated images; "
                "generate more or lower kid_subset_size."
            )
        if n_fake < 2:
            raise DataError(f"scores need at least 2 generated images, got {n_fake}.")
        suffix = f"-{self.extractor.name}" if self.extractor.name else ""
        about = self.extractor.description
        scores = []
        identity = _Precomputed(features.shape[1])
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            torch.manual_seed(self.seed)
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            if "fid" in self.metrics:
                fid = FrechetInceptionDistance(feature=identity).double()
                fid.update(self.real_features, real=True)
                fid.update(features, real=False)
                value = float(fid.compute())
                scores.append(Score(f"fid{suffix}", value, None, n_real, n_fake, about))
            if "kid" in self.metrics:
                kid = KernelInceptionDistance(
                    feature=identity, subsets=self.kid_subsets, subset_size=self.kid_subset_size
                )
                kid.update(self.real_features.float(), real=True)  # float32: 2x faster
                kid.update(features.float(), real=False)
                mean, std = kid.compute()
                scores.append(Score(f"kid{suffix}", float(mean), float(std), n_real, n_fake, about))
            if "is" in self.metrics:
                inception_score = InceptionScore(feature=nn.Identity(), splits=self.is_splits)
                inception_score.update(logits)
                mean, std = inception_score.compute()
                scores.append(Score(f"is{suffix}", float(mean), float(std), 0, n_fake, about))
        return scores


def scores_to_metrics(scores: Sequence[Score]) -> dict[str, float]:
    """Flat ``{metric: value, metric_std: ..., metric/n_real: ..., metric/n_fake: ...}``."""
    out: dict[str, float] = {}
    for s in scores:
        out[s.metric] = s.value
        if s.std is not None:
            out[f"{s.metric}_std"] = s.std
        if s.n_real:
            out[f"{s.metric}/n_real"] = s.n_real
        out[f"{s.metric}/n_fake"] = s.n_fake
    return out


def scores_to_dict(scores: Sequence[Score]) -> dict[str, dict]:
    """``{metric: {value, std, n_real, n_fake, features}}`` for JSON summaries."""
    return {s.metric: asdict(s) for s in scores}


def generate_images(
    sample: Callable[[int, torch.Generator], torch.Tensor],
    n: int,
    batch_size: int = 500,
    seed: int = 0,
) -> torch.Tensor:
    """``n`` images from ``sample(count, generator)`` in batches, with a seeded CPU generator
    (the same noise every call, so scores at different steps are comparable)."""
    generator = torch.Generator().manual_seed(seed)
    chunks = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            chunks.append(sample(min(batch_size, n - start), generator).float().cpu())
    return torch.cat(chunks)
