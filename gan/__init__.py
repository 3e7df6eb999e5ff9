"""counterfeit's shared core: training loop, checkpoints, tracking, data, networks.

Public API::

    from counterfeit.gan import Trainer, TrainerConfig, TrainingMethod, StepContext, EvalCallback, CollapseStop
    from counterfeit.gan import Tracker
    from counterfeit.gan.data import build_domain, DomainSpec, ImageTensors, InfiniteLoader, ZipLoader
    from counterfeit.gan import DCGAN, InfoGAN, EMA, get_loss, LOSSES     # GANs, weight averaging, losses
    from counterfeit.gan.metrics import DigitsFeatures, GenerativeScores  # FID / KID / IS
    from counterfeit.gan.callbacks import SampleGridCallback              # sample grids while training
"""

import os

# An offline toolkit: albumentations would otherwise look for a newer version on PyPI at
# import (a network call, and a warning on every machine without internet).
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from counterfeit.gan.callbacks import Callback, CollapseStop, EvalCallback
from counterfeit.gan.ema import EMA
from counterfeit.gan.errors import (
    CheckpointError,
    ConfigError,
    CounterfeitError,
    DataError,
    NonFiniteLossError,
    TrainingInterrupted,
)
from counterfeit.gan.losses import LOSSES, GANLoss, get_loss
from counterfeit.gan.method import StepContext, TrainingMethod
from counterfeit.gan.models import DCGAN, InfoGAN
from counterfeit.gan.runtime import resolve_device, seed_everything
from counterfeit.gan.tracking import Tracker
from counterfeit.gan.train import Trainer, TrainerConfig, TrainResult

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
