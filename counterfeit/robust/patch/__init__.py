"""Adversarial patches (Brown et al. 2017): one universal sticker that makes a classifier
see a chosen class.

* :mod:`.geometry`: placements, the patch's footprint, pasting it (:func:`place_patch`);
* :mod:`.attack`: :class:`AdversarialPatch`, the patch and its training loop;
* :mod:`.evaluation`: :class:`PatchAttack` (the patch under the attack contract),
  :func:`evaluate_patch` and :class:`PatchEvaluation`;
* :mod:`.io`: the patch as an 8-bit PNG or an exact tensor file.
"""

from counterfeit.robust.patch.attack import AdversarialPatch
from counterfeit.robust.patch.evaluation import PatchAttack, PatchEvaluation, evaluate_patch
from counterfeit.robust.patch.geometry import Placement, place_patch
from counterfeit.robust.patch.io import load_patch_png, save_patch_png

__all__ = [
    "AdversarialPatch",
    "PatchAttack",
    "PatchEvaluation",
    "Placement",
    "evaluate_patch",
    "load_patch_png",
    "place_patch",
    "save_patch_png",
]
