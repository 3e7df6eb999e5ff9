"""The task registry: each recipe ``task`` maps to its :class:`~.base.Task` class.

A task lives in its own module ``counterfeit/recipes/tasks/NAME.py``: its schema (a
``RecipeBase`` subclass built from the blocks in :mod:`recipes.schema`) and a
:class:`~.base.Task` subclass that runs it. Helpers that several tasks share are
in :mod:`.common`. Register a new task here.
"""

from __future__ import annotations

from counterfeit.recipes.tasks.advgan import AdvGANTask
from counterfeit.recipes.tasks.base import Task
from counterfeit.recipes.tasks.cyclegan import CycleGANTask
from counterfeit.recipes.tasks.dann import DANNTask
from counterfeit.recipes.tasks.gan import DCGANTask, InfoGANTask
from counterfeit.recipes.tasks.patch import PatchTask
from counterfeit.recipes.tasks.pix2pix import Pix2PixTask
from counterfeit.recipes.tasks.pixelda import PixelDATask
from counterfeit.recipes.tasks.pose2video import Pose2VideoTask
from counterfeit.recipes.tasks.robust_train import RobustTrainTask
from counterfeit.recipes.tasks.robustness import RobustnessTask
from counterfeit.recipes.tasks.srgan import SRGANTask

TASKS: dict[str, type[Task]] = {
    "dann": DANNTask,
    "pixelda": PixelDATask,
    "cyclegan": CycleGANTask,
    "pix2pix": Pix2PixTask,
    "pose2video": Pose2VideoTask,
    "dcgan": DCGANTask,
    "infogan": InfoGANTask,
    "robust-train": RobustTrainTask,
    "robustness": RobustnessTask,
    "patch": PatchTask,
    "advgan": AdvGANTask,
    "srgan": SRGANTask,
}
