"""The ``progan`` task (recipes ``mnist-progan``, ``mnist-progan-paper``): Progressive GAN
(Karras et al., ICLR 2018) trained and scored like the other GANs
(:class:`~counterfeit.recipes.tasks.common.generation.GANTask`), with a sample grid at the end
of every growth phase at that phase's size (``OUT/samples/``, MLflow ``samples/``), and the
schedule it ran in the report.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from counterfeit.gan.callbacks import Callback
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.method import TrainingMethod
from counterfeit.gan.models.progan import PhaseGridCallback, ProGAN
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.schema import RecipeBase, StrictModel, TrainConfig
from counterfeit.recipes.tasks.common.generation import (
    BASELINE,
    DCGANModelConfig,
    GANData,
    GANEvaluation,
    GANTask,
)


class ProGANModelConfig(StrictModel):
    """Progressive GAN settings; defaults are the paper's (see gan.models.progan)."""

    latent_dim: int = Field(512, gt=0)
    fmap_base: int = Field(
        8192, gt=0, description="feature maps: min(fmap_base / 2^(level+1), fmap_max)"
    )
    fmap_max: int = Field(512, gt=0)
    fade_images: int = Field(800_000, gt=0, description="real images per fade-in")
    stable_images: int = Field(800_000, gt=0, description="real images per stable phase")
    lr: float = Field(0.001, gt=0)
    betas: tuple[float, float] = (0.0, 0.99)
    gp_weight: float = Field(10.0, ge=0)
    drift: float = Field(0.001, ge=0, description="epsilon-drift weight on E[D(x)^2]")
    group_size: int = Field(4, gt=0, description="minibatch-stddev group")
    ema_decay: float | None = Field(0.999, ge=0, lt=1)


class ProGANRecipe(RecipeBase):
    """Grow a GAN from 4 x 4 to the data's size, draw a grid per phase, score it."""

    task: Literal["progan"]
    data: GANData = GANData(pad=2)
    model: ProGANModelConfig = ProGANModelConfig()
    train: TrainConfig
    evaluation: GANEvaluation = GANEvaluation()
    baseline: DCGANModelConfig | None = Field(
        None, description="a DCGAN trained beside it on the same real images; null: none"
    )


class ProGANTask(GANTask):
    """Progressive GAN with FID-digits and a grid per growth phase."""

    schema = ProGANRecipe

    def build_gan(self) -> ProGAN:
        r = self.recipe
        method = ProGAN(
            image_size=r.data.model_size, channels=r.data.channels, seed=r.seed,
            **r.model.model_dump(),
        )  # fmt: skip
        images = r.train.steps * r.train.batch_size
        if images < method.images_to_full_size:
            raise ConfigError(
                f"train.steps {r.train.steps} x batch_size {r.train.batch_size} = {images} "
                f"images, but growing to {r.data.model_size} px takes "
                f"{method.images_to_full_size} (one {r.model.stable_images}-image stable phase "
                f"at 4 px, then {r.model.fade_images} fade-in + {r.model.stable_images} stable per "
                f"level): raise train.steps to at least "
                f"{-(-method.images_to_full_size // r.train.batch_size)} or shorten the phases."
            )
        return method

    def grids(self, method: TrainingMethod) -> dict[str, tuple]:
        """Fixed-noise samples at the current phase's own size."""
        return {"samples": (lambda m: m.fixed_samples(), 8)}

    def callbacks(self, name: str, method: TrainingMethod, data: Any) -> list[Callback]:
        callbacks = super().callbacks(name, method, data)
        if name == BASELINE:
            return callbacks
        return [*callbacks, PhaseGridCallback(self.ctx.out / "samples", self.ctx.tracker)]

    def extend_report(self, method: TrainingMethod, output: TaskOutput) -> None:
        """Where the growth stood at the end, and the schedule it followed."""
        assert isinstance(method, ProGAN)
        phase = method.phase()
        output.metrics["images_seen"] = float(method.images_seen)
        output.details["growth"] = {
            "final_size": phase.size,
            "final_alpha": phase.alpha,
            "images_seen": int(method.images_seen),
            "images_to_full_size": method.images_to_full_size,
        }
        output.table.append(
            ("growth", f"{phase.size} px, alpha {phase.alpha:.2f}", "",
             f"{int(method.images_seen)} real images seen")
        )  # fmt: skip
