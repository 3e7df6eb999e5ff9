"""Domain adaptation: train on labelled synthetic images, work on real ones.

Public API::

    from counterfeit.adapt import DANN, PixelDA, GradientReversal, grad_reverse, dann_lambda, dann_lr
    from counterfeit.adapt import evaluate_adaptation
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

__all__ = [
    "DANN",
    "MODES",
    "AdaptationReport",
    "GradientReversal",
    "PixelDA",
    "Predictions",
    "accuracy",
    "dann_lambda",
    "dann_lr",
    "domain_separability",
    "evaluate_adaptation",
    "grad_reverse",
    "mean_entropy",
    "pairwise_mse",
    "per_class_accuracy",
    "predict",
]
