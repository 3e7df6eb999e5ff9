"""The task registry: each recipe ``task`` names the :class:`~.base.Task` class that runs it.

A task lives in its own module ``counterfeit/recipes/tasks/NAME.py``: its schema (a
``RecipeBase`` subclass built from the blocks in :mod:`recipes.schema`) and a
:class:`~.base.Task` subclass that runs it. Helpers that several tasks share are
in :mod:`.common`. Register a new task in :data:`TASKS`.

The registry holds import paths, and :func:`task_class` imports only the task a
recipe names: a GAN recipe does not pay for the attack modules' imports, and a
recipe error is reported before the other tasks load.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from counterfeit.recipes.tasks.base import Task

TASKS: dict[str, str] = {
    "dann": "counterfeit.recipes.tasks.dann:DANNTask",
    "pixelda": "counterfeit.recipes.tasks.pixelda:PixelDATask",
    "cyclegan": "counterfeit.recipes.tasks.cyclegan:CycleGANTask",
    "pix2pix": "counterfeit.recipes.tasks.pix2pix:Pix2PixTask",
    "pose2video": "counterfeit.recipes.tasks.pose2video:Pose2VideoTask",
    "dcgan": "counterfeit.recipes.tasks.gan:DCGANTask",
    "infogan": "counterfeit.recipes.tasks.gan:InfoGANTask",
    "biggan": "counterfeit.recipes.tasks.biggan:BigGANTask",
    "progan": "counterfeit.recipes.tasks.progan:ProGANTask",
    "robust-train": "counterfeit.recipes.tasks.robust_train:RobustTrainTask",
    "robustness": "counterfeit.recipes.tasks.robustness:RobustnessTask",
    "patch": "counterfeit.recipes.tasks.patch:PatchTask",
    "advgan": "counterfeit.recipes.tasks.advgan:AdvGANTask",
    "srgan": "counterfeit.recipes.tasks.srgan:SRGANTask",
    "anomaly": "counterfeit.recipes.tasks.anomaly:AnomalyTask",
    "ood": "counterfeit.recipes.tasks.ood:OODTask",
    "detect": "counterfeit.recipes.tasks.detect:DetectTask",
    "text2image": "counterfeit.recipes.tasks.text2image:Text2ImageTask",
}


def task_class(name: str) -> type[Task]:
    """The :class:`~.base.Task` subclass registered as ``name`` (imported on first use).

    Raises:
        KeyError: ``name`` is not a registered task.
    """
    module, _, attribute = TASKS[name].partition(":")
    return getattr(import_module(module), attribute)
