"""Robustness: how robust is this classifier, and how to make it more robust.

Works on any ``nn.Module`` classifier that takes images in [0, 1] (NCHW) and
returns logits: one adapted with :mod:`adapt`, one exported by a recipe
(:func:`gan.export.load_exported`) or the user's own. Public API::

    from counterfeit.robust import fgsm, bim, pgd, apgd, apgd_ce, apgd_t, square, random_targets
    from counterfeit.robust import autoattack, AutoAttack, AutoAttackResult     # the ensemble
    from counterfeit.robust import deepfool, cw, perturbation_sizes            # minimum norm
    from counterfeit.robust import ATTACKS, Normalize  # attacks by name; normalisation inside
    from counterfeit.robust import Attack, GradientAttack, AdvGANAttack, PatchAttack  # the contract
    from counterfeit.robust import evaluate, RobustnessReport, AttackCurve     # the report
    from counterfeit.robust import corrupt, CORRUPTIONS                        # common corruptions
    from counterfeit.robust import AdversarialTraining, CatastrophicOverfittingStop, cyclic_lr
    from counterfeit.robust import load_model, digits_cnn
    from counterfeit.robust import AdversarialPatch, PatchEvaluation, evaluate_patch, AdvGAN

Every attack meets one contract (:class:`Attack`: ``attack(model, x, y, budget)``
with the true labels, ``attack.targets(y)`` for targeted ones), so
:func:`evaluate` measures FGSM, BIM, PGD, a trained AdvGAN and an adversarial
patch side by side in one :class:`RobustnessReport`.
"""

from counterfeit.robust.advgan import AdvGAN, AdvGANAttack, AdvGANDiscriminator, AdvGANGenerator
from counterfeit.robust.apgd import apgd, apgd_ce, apgd_t
from counterfeit.robust.attacks import bim, fgsm, pgd, random_targets
from counterfeit.robust.autoattack import AutoAttack, AutoAttackResult, autoattack
from counterfeit.robust.contract import Attack, GradientAttack, as_attack
from counterfeit.robust.corruptions import CORRUPTIONS, corrupt, corruption_names
from counterfeit.robust.evaluate import RobustnessWarning, evaluate
from counterfeit.robust.loading import load_model
from counterfeit.robust.minimum_norm import cw, deepfool, perturbation_sizes
from counterfeit.robust.models import digits_cnn
from counterfeit.robust.normalize import Normalize
from counterfeit.robust.patch import (
    AdversarialPatch,
    PatchAttack,
    PatchEvaluation,
    Placement,
    evaluate_patch,
    place_patch,
)
from counterfeit.robust.registry import ATTACKS
from counterfeit.robust.report import (
    AttackCurve,
    RobustnessReport,
    compare_markdown,
    eps_curve_figure,
)
from counterfeit.robust.square import square
from counterfeit.robust.training import AdversarialTraining, CatastrophicOverfittingStop, cyclic_lr

__all__ = [
    "ATTACKS",
    "CORRUPTIONS",
    "AdvGAN",
    "AdvGANAttack",
    "AdvGANDiscriminator",
    "AdvGANGenerator",
    "AdversarialPatch",
    "AdversarialTraining",
    "Attack",
    "AttackCurve",
    "AutoAttack",
    "AutoAttackResult",
    "CatastrophicOverfittingStop",
    "GradientAttack",
    "Normalize",
    "PatchAttack",
    "PatchEvaluation",
    "Placement",
    "RobustnessReport",
    "RobustnessWarning",
    "apgd",
    "apgd_ce",
    "apgd_t",
    "as_attack",
    "autoattack",
    "bim",
    "compare_markdown",
    "corrupt",
    "corruption_names",
    "cw",
    "cyclic_lr",
    "deepfool",
    "digits_cnn",
    "eps_curve_figure",
    "evaluate",
    "evaluate_patch",
    "fgsm",
    "load_model",
    "perturbation_sizes",
    "pgd",
    "place_patch",
    "random_targets",
    "square",
]
