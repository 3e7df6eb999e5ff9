"""counterfeit's shared core: training loop, checkpoints, tracking, data, networks.

Public API::

    from gan import Trainer, TrainerConfig, TrainingMethod, StepContext, EvalCallback
    from gan import Tracker
    from gan.data import build_domain, DomainSpec, ImageTensors, InfiniteLoader, ZipLoader
"""

from gan.errors import (
    CheckpointError,
    ConfigError,
    CounterfeitError,
    DataError,
    NonFiniteLossError,
    TrainingInterrupted,
)
from gan.runtime import resolve_device, seed_everything
from gan.tracking import Tracker
from gan.train import (
    Callback,
    EvalCallback,
    StepContext,
    Trainer,
    TrainerConfig,
    TrainingMethod,
    TrainResult,
)

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "CheckpointError",
    "ConfigError",
    "CounterfeitError",
    "DataError",
    "EvalCallback",
    "NonFiniteLossError",
    "StepContext",
    "Tracker",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "TrainingInterrupted",
    "TrainingMethod",
    "resolve_device",
    "seed_everything",
]
