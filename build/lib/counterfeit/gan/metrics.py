"""Generative metrics: FID, KID and Inception Score with a pluggable feature extractor.

The scores are torchmetrics' (``FrechetInceptionDistance``,
``KernelInceptionDistance``, ``InceptionScore``), fed with features that a
:class:`FeatureExtractor` computes once per image set:

* :class:`DigitsFeatures` — a small digit classifier (:class:`DigitsClassifier`)
  that counterfeit trains on the embedded real MNIST digits and caches on disk.
  Its scores are named ``fid-digits``, ``kid-digits`` and ``is-digits``
  ("FID-digits"...): they measure digits in this classifier's 128-d
  penultimate space and are **not** comparable with Inception FIDs from papers.
* :class:`InceptionFeatures` — torchvision's Inception-v3 (pool features,
  2048-d; logits for IS), from a local weights file or the torch hub cache,
  never downloaded. Its scores are ``fid``, ``kid`` and ``is``. (Published FIDs
  use the TF-Inception port of pytorch-fid; torchvision's ImageNet weights
  give close but not identical numbers.)

Every score comes with the number of real and generated images it used
(:class:`Score`). FID (Heusel et al. 2017), KID (Binkowski et al. 2018,
unbiased MMD^2 with a cubic polynomial kernel over random subsets), IS
(Salimans et al. 2016). ``cluster_accuracy`` scores unsupervised cluster
labels against classes (Hungarian matching), as InfoGAN's categorical code.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from counterfeit.gan.checkpoint import load_checkpoint, load_module_state, save_atomic
from counterfeit.gan.errors import CheckpointError, ConfigError, DataError
from torch import nn

MetricName = Literal["fid", "kid", "is"]
CACHE_ENV = "COUNTERFEIT_CACHE"
DIGITS_FORMAT = "counterfeit-fid-digits/2"
DIGITS_SIZE = 32
TORCHVISION_INCEPTION = "inception_v3_google-0cc3c7bd.pth"


def cache_dir() -> Path:
    """Where counterfeit caches trained helpers: ``$COUNTERFEIT_CACHE`` or ``~/.cache/counterfeit``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "counterfeit").expanduser()


class FeatureExtractor(nn.Module):
    """Maps images in [0, 1] (N, C, H, W) to features (N, num_features); ``head`` maps
    features to class logits (for the Inception Score). Always in eval mode.

    Attributes:
        name: suffix of the score names (``"digits"`` gives ``fid-digits``; ``""`` gives ``fid``).
        num_features: feature width.
        description: what the features are, for reports.
    """

    name: str = ""
    num_features: int = 0
    description: str = ""

    def train(self, mode: bool = True) -> FeatureExtractor:
        return super().train(False)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def extract(
        self, images: torch.Tensor, batch_size: int = 500
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, logits) of ``images`` in float64 on the CPU, computed in batches."""
        _check_images(images)
        self.eval()
        device = next(self.parameters()).device
        features, logits = [], []
        for chunk in images.split(batch_size):
            f = self(chunk.to(device).float())
            features.append(f.double().cpu())
            logits.append(self.head(f).double().cpu())
        return torch.cat(features), torch.cat(logits)


# -- the digits classifier ----------------------------------------------------------


class DigitsClassifier(nn.Module):
    """A small CNN for 1x32x32 digits: three 3x3 stride-2 conv-BN-ReLU layers (16, 32, 64
    channels: 32 -> 4 px), fc128-ReLU (the features), fc10. Small enough to train on CPU
    in seconds; ~0.97 accuracy on held-out MNIST digits."""

    def __init__(self) -> None:
        super().__init__()
        from counterfeit.gan.nets.blocks import conv_block

        self.hidden = nn.Sequential(
            conv_block(1, 16, 3, 2, 1, "batch", "relu"),
            conv_block(16, 32, 3, 2, 1, "batch", "relu"),
            conv_block(32, 64, 3, 2, 1, "batch", "relu"),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 128),
            nn.ReLU(inplace=True),
        )
        self.output = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(x))


def to_digit_input(images: torch.Tensor) -> torch.Tensor:
    """Grey 1x32x32 digits from images in [0, 1]: RGB -> luma (ITU-R 601), 28 px -> zero-pad
    2 px per side (exact for MNIST-style digits), any other size -> antialiased resize."""
    _check_images(images)
    if images.shape[1] == 3:
        weights = images.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        images = (images * weights).sum(1, keepdim=True)
    elif images.shape[1] != 1:
        raise DataError(f"digit images need 1 or 3 channels, got {images.shape[1]}.")
    size = images.shape[-1]
    if images.shape[-2] == size == 28:
        return F.pad(images, (2, 2, 2, 2))
    if images.shape[-2:] != (DIGITS_SIZE, DIGITS_SIZE):
        images = F.interpolate(
            images, size=(DIGITS_SIZE, DIGITS_SIZE), mode="bilinear", antialias=True
        )
    return images


def train_digits_classifier(
    epochs: int = 5, batch_size: int = 64, seed: int = 0
) -> tuple[DigitsClassifier, float]:
    """Train :class:`DigitsClassifier` on the embedded real MNIST digits (mnist-small, 4,000
    train images, padded to 32 px) with Adam and a one-cycle schedule peaking at 2e-3;
    returns it (eval mode) and its accuracy on the 1,000 held-out mnist-small test digits.
    Takes 10-20 s of one CPU core; does not disturb the global random state."""
    from counterfeit.gan.data.embedded import mnist_small
    from counterfeit.gan.data.loaders import InfiniteLoader

    train, test = mnist_small("train"), mnist_small("test")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DigitsClassifier()
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
        loader = InfiniteLoader(train, batch_size, seed=seed)
        steps = epochs * len(loader)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 2e-3, total_steps=steps)
        model.train()
        for _ in range(steps):
            x, y = next(loader)
            loss = F.cross_entropy(model(to_digit_input(x)), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        x, y = test.get_batch(torch.arange(len(test)))
        accuracy = float((model(to_digit_input(x)).argmax(1) == y).float().mean())
    return model, accuracy


def load_digits_classifier(
    directory: str | Path | None = None, verbose: bool = True
) -> tuple[DigitsClassifier, float]:
    """The cached digits classifier (and its test accuracy); trained and cached on first use.

    Args:
        directory: cache folder; default :func:`cache_dir` (``$COUNTERFEIT_CACHE``).
        verbose: say so when training (a few seconds).
    """
    path = Path(directory or cache_dir()) / "fid-digits-v2.pt"
    if path.is_file():
        state = load_checkpoint(path)
        if state.get("format") != DIGITS_FORMAT:
            raise CheckpointError(
                f"{path} is not a counterfeit FID-digits classifier; delete it to retrain."
            )
        model = DigitsClassifier()
        load_module_state(model, state["model"], str(path))
        return model.eval(), float(state["test_accuracy"])
    if verbose:
        print(f"training the FID-digits classifier on embedded MNIST (once; cached at {path})")
    model, accuracy = train_digits_classifier()
    save_atomic(
        {"format": DIGITS_FORMAT, "model": model.state_dict(), "test_accuracy": accuracy}, path
    )
    return model, accuracy


class DigitsFeatures(FeatureExtractor):
    """The digits classifier's 128-d penultimate features (``fid-digits`` etc.).

    Args:
        classifier: a trained :class:`DigitsClassifier`; default the cached one
            (:func:`load_digits_classifier`, trained on first use).
        accuracy: its test accuracy, for the description.
    """

    name = "digits"

    def __init__(self, classifier: DigitsClassifier | None = None, accuracy: float | None = None):
        super().__init__()
        if classifier is None:
            classifier, accuracy = load_digits_classifier()
        self.classifier = classifier
        self.num_features = self.classifier.output.in_features
        self.eval()
        acc = f", {accuracy:.3f} test accuracy" if accuracy is not None else ""
        self.description = (
            f"digits classifier (small CNN trained on embedded MNIST{acc}), "
            f"{self.num_features}-d penultimate features"
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(to_digit_input(images))

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier.output(features)


# -- Inception-v3 --------------------------------------------------------------------


def find_inception_weights(path: str | Path | None = None) -> Path:
    """A local Inception-v3 state_dict: ``path``, else torchvision's file in the torch hub
    cache (``torch.hub.get_dir()/checkpoints/inception_v3_google-0cc3c7bd.pth``).

    Raises:
        ConfigError: nothing found; nothing is ever downloaded.
    """
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise ConfigError(f"Inception-v3 weights not found at {path}.")
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_INCEPTION
    if cached.is_file():
        return cached
    raise ConfigError(
        f"no Inception-v3 weights: none given and none at {cached}. counterfeit never "
        "downloads them; copy torchvision's Inception_V3_Weights.IMAGENET1K_V1 file there, "
        "pass its path, or use the digits extractor (FID-digits) for digits."
    )


class InceptionFeatures(FeatureExtractor):
    """torchvision Inception-v3: 2048-d pool features, 1000-way logits (``fid``, ``kid``, ``is``).

    Images are resized to 299 px (bilinear, antialiased), grey repeated to RGB,
    and normalised with ImageNet statistics inside the module.

    Args:
        weights: a local state_dict file; default the torch hub cache (see
            :func:`find_inception_weights`).
    """

    name = ""
    num_features = 2048

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        path = find_inception_weights(weights)
        net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
        state = load_checkpoint(path)
        load_module_state(net, state.get("state_dict", state), str(path))
        self.fc = net.fc
        net.fc = nn.Identity()
        self.net = net
        self.eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.description = f"torchvision Inception-v3 ({path.name}), 2048-d pool features"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        x = F.interpolate(images, size=(299, 299), mode="bilinear", antialias=True)
        return self.net((x - self.mean) / self.std)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)


def build_extractor(
    kind: Literal["digits", "inception"], weights: str | Path | None = None
) -> FeatureExtractor:
    """A feature extractor by name: ``digits`` (cached classifier) or ``inception``."""
    if kind == "digits":
        if weights is not None:
            raise ConfigError("the digits extractor takes no weights file; it trains its own.")
        return DigitsFeatures()
    if kind == "inception":
        return InceptionFeatures(weights)
    raise ConfigError(f"unknown feature extractor '{kind}'; use digits or inception.")


# -- scores --------------------------------------------------------------------------


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

    The real images' features are computed once; each call scores a new
    generated set (e.g. at every evaluation during training).

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
        self.real_features, _ = extractor.extract(real, batch_size)

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


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataError(f"expected images (N, C, H, W) in [0, 1], got {shape}.")
