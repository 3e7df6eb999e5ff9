"""counterfeit's shared core: training loop, checkpoints, tracking, data, networks.

Public API::

    from counterfeit.gan import Trainer, TrainerConfig, TrainingMethod, StepContext, EvalCallback, CollapseStop
    from counterfeit.gan import Tracker
    from counterfeit.gan.data import build_domain, DomainSpec, ImageTensors, InfiniteLoader, ZipLoader
    from counterfeit.gan import DCGAN, InfoGAN, EMA, get_loss, LOSSES     # GANs, weight averaging, losses
    from counterfeit.gan.metrics import DigitsFeatures, GenerativeScores  # FID / KID / IS
    from counterfeit.gan.callbacks import SampleGridCallback              # sample grids while training
"""

import importlib
import os

# An offline toolkit: albumentations would otherwise look for a newer version on PyPI at
# import (a network call, and a warning on every machine without internet).
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

# Public name -> the module that defines it, imported on first use: `import counterfeit.gan`
# (and so every `counterfeit.gan.X` import, such as the CLI's errors) stays light.
_EXPORTS = {
    "Callback": "callbacks",
    "CollapseStop": "callbacks",
    "EvalCallback": "callbacks",
    "EMA": "ema",
    "CheckpointError": "errors",
    "ConfigError": "errors",
    "CounterfeitError": "errors",
    "DataError": "errors",
    "NonFiniteLossError": "errors",
    "OutputError": "errors",
    "ShapeError": "errors",
    "TrainingInterrupted": "errors",
    "LOSSES": "losses",
    "GANLoss": "losses",
    "get_loss": "losses",
    "StepContext": "method",
    "TrainingMethod": "method",
    "DCGAN": "models",
    "InfoGAN": "models",
    "resolve_device": "runtime",
    "seed_everything": "runtime",
    "Tracker": "tracking",
    "Trainer": "train",
    "TrainerConfig": "train",
    "TrainResult": "train",
}


def __getattr__(name: str):
    """Import the module of a public name on first use."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "DCGAN",
    "EMA",
    "LOSSES",
    "Callback",
    "CheckpointError",
    "CollapseStop",
    "ConfigError",
    "CounterfeitError",
    "DataError",
    "EvalCallback",
    "GANLoss",
    "InfoGAN",
    "NonFiniteLossError",
    "OutputError",
    "ShapeError",
    "StepContext",
    "Tracker",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "TrainingInterrupted",
    "TrainingMethod",
    "get_loss",
    "resolve_device",
    "seed_everything",
]
