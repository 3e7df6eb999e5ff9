"""Detectors by name: build one from its settings, or load a saved one.

The names are the recipes' and the command line's (``counterfeit anomaly fit --method``);
the settings are each class's constructor arguments.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from counterfeit.gan.checkpoint import load_checkpoint
from counterfeit.gan.errors import CheckpointError, ConfigError
from counterfeit.robust.anomaly.anogan import AnoGAN
from counterfeit.robust.anomaly.autoencoder import AutoencoderDetector
from counterfeit.robust.anomaly.base import DETECTOR_FORMAT, AnomalyDetector
from counterfeit.robust.anomaly.baselines import KNNDistance, PCAReconstruction
from counterfeit.robust.anomaly.fanogan import FAnoGAN
from counterfeit.robust.anomaly.ganomaly import GANomaly

DETECTORS: dict[str, type[AnomalyDetector]] = {
    cls.name: cls
    for cls in (PCAReconstruction, KNNDistance, AutoencoderDetector, AnoGAN, FAnoGAN, GANomaly)
}


def detector_settings(name: str) -> list[str]:
    """The settings (constructor arguments) detector ``name`` takes."""
    return list(inspect.signature(DETECTORS[name].__init__).parameters)[1:]


def build_detector(
    name: str, seed: int | None = None, device: str | None = None, **settings: Any
) -> AnomalyDetector:
    """An unfitted detector ``name`` (see :data:`DETECTORS`) with ``settings``; ``seed`` and
    ``device`` go to the detectors that train a network (unless ``settings`` name them).

    Raises:
        ConfigError: an unknown name or setting, named with the ones there are.
    """
    if name not in DETECTORS:
        raise ConfigError(f"unknown anomaly detector '{name}'; choose from {', '.join(DETECTORS)}.")
    unknown = sorted(set(settings) - set(detector_settings(name)))
    if unknown:
        raise ConfigError(
            f"{name} has no setting {', '.join(map(repr, unknown))}; it takes "
            f"{', '.join(detector_settings(name))}."
        )
    if "seed" in detector_settings(name):
        defaults = {"seed": seed, "device": device}
        settings = {**{k: v for k, v in defaults.items() if v is not None}, **settings}
    return DETECTORS[name](**settings)


def load_detector(path: str | os.PathLike, device: str | None = None) -> AnomalyDetector:
    """A fitted detector from the file :meth:`AnomalyDetector.save` wrote (``weights_only``),
    on ``device`` (default: the one it was fitted on, for network detectors).

    Raises:
        CheckpointError: the file is missing, unreadable, or not a saved detector.
    """
    record = load_checkpoint(path)
    if record.get("format") != DETECTOR_FORMAT or record.get("detector") not in DETECTORS:
        what = record.get("method_class") or record.get("format") or "something else"
        raise CheckpointError(
            f"{path} is not a saved anomaly detector (it holds {what}); pass the "
            "detector.pt that `counterfeit anomaly fit` wrote."
        )
    config = dict(record["config"])
    if device is not None and "device" in config:
        config["device"] = device
    return build_detector(record["detector"], **config).restore(record, str(path))
