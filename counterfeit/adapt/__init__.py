"""Domain adaptation: train on labelled synthetic images, work on real ones.

Public API::

    from counterfeit.adapt import DANN, PixelDA, GradientReversal, grad_reverse, dann_lambda, dann_lr
    from counterfeit.adapt import evaluate_adaptation
    from counterfeit.adapt import VALIDATORS, build_validator  # label-free model selection
    from counterfeit.adapt import CheckpointSelector, SealedTestSet, select

``DANN(mode=...)`` also trains CDAN / CDAN+E (``adapt.cdan``), MCC (``adapt.mcc``) and MDD
(``adapt.mdd``); ``adapt.selection_report`` says how well each validator chooses.
"""

from counterfeit.adapt.dann import DANN, MODES
from counterfeit.adapt.evaluate import (
    AdaptationReport,
    Predictions,
    accuracy,
    domain_separability,
    evaluate_adaptation,
    mean_entropy,
    per_class_accuracy,
    predict,
)
from counterfeit.adapt.grl import GradientReversal, dann_lambda, dann_lr, grad_reverse
from counterfeit.adapt.pixelda import PixelDA, pairwise_mse
from counterfeit.adapt.selection import CheckpointSelector, SealedTestSet, select
from counterfeit.adapt.validators import VALIDATORS, Validator, build_validator, collapse_score

__all__ = [
    "DANN",
    "MODES",
    "VALIDATORS",
    "AdaptationReport",
    "CheckpointSelector",
    "GradientReversal",
    "PixelDA",
    "Predictions",
    "SealedTestSet",
    "Validator",
    "accuracy",
    "build_validator",
    "collapse_score",
    "dann_lambda",
    "dann_lr",
    "domain_separability",
    "evaluate_adaptation",
    "grad_reverse",
    "mean_entropy",
    "pairwise_mse",
    "per_class_accuracy",
    "predict",
    "select",
]
