"""The task registry: each recipe ``task`` maps to a schema and a runner.

A task lives in its own module ``recipes/tasks/NAME.py`` with a ``run(ctx:
RunContext) -> TaskOutput`` function; its schema (a ``RecipeBase`` subclass)
lives beside it or in :mod:`recipes.schema`. Register it here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from counterfeit.recipes.schema import DANNRecipe, PixelDARecipe, RecipeBase
from counterfeit.recipes.tasks import dann, patch, pixelda, robustness
from counterfeit.recipes.tasks.cyclegan import CycleGANRecipe
from counterfeit.recipes.tasks.cyclegan import run as run_cyclegan
from counterfeit.recipes.tasks.gan import DCGANRecipe, InfoGANRecipe, run_dcgan, run_infogan
from counterfeit.recipes.tasks.patch_schema import AdvGANRecipe, PatchRecipe
from counterfeit.recipes.tasks.pix2pix import Pix2PixRecipe
from counterfeit.recipes.tasks.pix2pix import run as run_pix2pix
from counterfeit.recipes.tasks.pose2video import Pose2VideoRecipe
from counterfeit.recipes.tasks.pose2video import run as run_pose2video
from counterfeit.recipes.tasks.robust_schema import RobustnessRecipe, RobustTrainRecipe
from counterfeit.recipes.tasks.srgan import SRGANRecipe
from counterfeit.recipes.tasks.srgan import run as run_srgan


@dataclass(frozen=True)
class Task:
    schema: type[RecipeBase]
    run: Callable  # (RunContext) -> TaskOutput
    description: str


TASKS: dict[str, Task] = {
    "dann": Task(DANNRecipe, dann.run, "DANN and its source-only / train-on-target baselines"),
    "pixelda": Task(PixelDARecipe, pixelda.run, "PixelDA with adaptation grids and baselines"),
    "cyclegan": Task(
        CycleGANRecipe,
        run_cyclegan,
        "unpaired CycleGAN translation (optional CyCADA semantic loss), label preservation",
    ),
    "pix2pix": Task(
        Pix2PixRecipe,
        run_pix2pix,
        "paired pix2pix translation (Isola et al. 2017) beside an L1-only U-Net, L1 / SSIM",
    ),
    "pose2video": Task(
        Pose2VideoRecipe,
        run_pose2video,
        "pose-to-video motion transfer (Chan et al. 2018): temporal G, multi-scale D, GIFs",
    ),
    "dcgan": Task(DCGANRecipe, run_dcgan, "a DCGAN (any adversarial loss) with FID-digits"),
    "infogan": Task(InfoGANRecipe, run_infogan, "an InfoGAN with latent traversals and clustering"),
    "robust-train": Task(
        RobustTrainRecipe,
        robustness.run_training,
        "train classifiers (standard, FGSM, FGSM-RS adversarial training) and evaluate robustness",
    ),
    "robustness": Task(
        RobustnessRecipe,
        robustness.run_evaluation,
        "evaluate a saved classifier under attacks and common corruptions",
    ),
    "patch": Task(
        PatchRecipe,
        patch.run_patch,
        "train a universal adversarial patch toward a class (Brown et al. 2017) and measure it",
    ),
    "advgan": Task(
        AdvGANRecipe,
        patch.run_advgan,
        "train an AdvGAN attack (Xiao et al. 2018) and compare it with FGSM/PGD",
    ),
    "srgan": Task(
        SRGANRecipe,
        run_srgan,
        "SRResNet-MSE then SRGAN x4 super-resolution (Ledig et al. 2017), PSNR/SSIM vs bicubic",
    ),
}
