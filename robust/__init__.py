"""Robustness: how robust is this classifier, and how to make it more robust.

Works on any ``nn.Module`` classifier that takes images in [0, 1] (NCHW) and
returns logits: one adapted with :mod:`adapt`, one exported by a recipe
(:func:`gan.export.load_exported`) or the user's own. Public API::

    from counterfeit.robust import fgsm, bim, pgd, random_targets, Normalize   # attacks
    from counterfeit.robust import evaluate, RobustnessReport                  # the report
    from counterfeit.robust import corrupt, CORRUPTIONS                        # common corruptions
    from counterfeit.robust import AdversarialTraining, CatastrophicOverfittingStop, cyclic_lr
    from counterfeit.robust import load_model, digits_cnn
    from counterfeit.robust import AdversarialPatch, PatchEvaluation, AdvGAN    # patches, GAN attacks
"""

from counterfeit.robust.advgan import AdvGAN, AdvGANDiscriminator, AdvGANGenerator
from counterfeit.robust.attacks import ATTACKS, bim, fgsm, pgd, random_targets
from counterfeit.robust.corruptions import CORRUPTIONS, corrupt, corruption_names
from counterfeit.robust.evaluate import RobustnessWarning, evaluate
from counterfeit.robust.loading import load_model
from counterfeit.robust.models import digits_cnn
from counterfeit.robust.normalize import Normalize
from counterfeit.robust.patch import AdversarialPatch, PatchEvaluation, Placement, place_patch
from counterfeit.robust.report import RobustnessReport, compare_markdown, eps_curve_figure
from counterfeit.robust.training import AdversarialTraining, CatastrophicOverfittingStop, cyclic_lr

__all__ = [
    "ATTACKS",
    "CORRUPTIONS",
    "AdvGAN",
    "AdvGANDiscriminator",
    "AdvGANGenerator",
    "AdversarialPatch",
    "AdversarialTraining",
    "CatastrophicOverfittingStop",
    "Normalize",
    "PatchEvaluation",
    "Placement",
    "RobustnessReport",
    "RobustnessWarning",
    "bim",
    "compare_markdown",
    "corrupt",
    "corruption_names",
    "cyclic_lr",
    "digits_cnn",
    "eps_curve_figure",
    "evaluate",
    "fgsm",
    "load_model",
    "pgd",
    "place_patch",
    "random_targets",
]
