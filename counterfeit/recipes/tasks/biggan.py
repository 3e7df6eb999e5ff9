"""The ``biggan`` task (recipe ``mnist-biggan``): a class-conditional BigGAN (Brock et al.,
ICLR 2019) trained and scored like the other GANs (:class:`~counterfeit.recipes.tasks.
common.generation.GANTask`: FID-digits, precision and recall, and as a conditional GAN the
class accuracy and intra-class FID), with a grid at ``evaluation.truncation`` and the
truncation curve: FID / IS / precision / recall at each threshold of
``evaluation.truncation_curve``.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.method import TrainingMethod
from counterfeit.gan.metrics import generate_images
from counterfeit.gan.models import BigGAN
from counterfeit.gan.plots import truncation_figure
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.schema import RecipeBase, StrictModel, TrainConfig
from counterfeit.recipes.tasks.common.generation import (
    DCGANModelConfig,
    GANData,
    GANEvaluation,
    GANTask,
)


class BigGANModelConfig(StrictModel):
    """BigGAN settings; defaults are the paper's (see gan.models.biggan)."""

    latent_dim: int = Field(128, gt=0, description="a multiple of the G blocks + 1")
    width: int = Field(64, gt=0, description="the channel multiplier ch")
    shared_dim: int = Field(128, gt=0)
    attention: int | None = Field(16, description="the self-attention resolution; null: none")
    g_lr: float = Field(5e-5, gt=0)
    d_lr: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.0, 0.999)
    d_steps: int = Field(2, gt=0)
    ortho_beta: float = Field(1e-4, ge=0)
    ema_decay: float | None = Field(0.9999, ge=0, lt=1)


class BigGANEvaluation(GANEvaluation):
    """GANEvaluation, and the truncation trick's grid and curve."""

    truncation: float = Field(0.5, gt=0, description="of the truncated sample grid")
    truncation_curve: list[float] = Field(
        default_factory=lambda: [0.25, 0.5, 0.75, 1.0, 1.5, 2.0],
        description="thresholds scored for the truncation curve; []: none",
    )


class BigGANRecipe(RecipeBase):
    """Train a class-conditional BigGAN, draw grids per class, score it and its classes."""

    task: Literal["biggan"]
    data: GANData = GANData(pad=2)
    model: BigGANModelConfig = BigGANModelConfig()
    train: TrainConfig
    evaluation: BigGANEvaluation = BigGANEvaluation()
    baseline: DCGANModelConfig | None = Field(
        None, description="a DCGAN trained beside it on the same real images; null: none"
    )


class BigGANTask(GANTask):
    """A class-conditional BigGAN with FID-digits and class accuracy."""

    schema = BigGANRecipe

    def build_gan(self) -> BigGAN:
        r, classes = self.recipe, self.train_set.num_classes
        if classes < 2:
            raise ConfigError(f"BigGAN needs a labelled domain; '{r.data.domain.name}' has none.")
        return BigGAN(
            image_size=r.data.model_size,
            channels=r.data.channels,
            num_classes=classes,
            seed=r.seed,
            **r.model.model_dump(),
        )

    def grids(self, method: TrainingMethod) -> dict[str, tuple]:
        """Fixed-noise samples with the classes in turn, and the same at the truncation."""
        assert isinstance(method, BigGAN)
        k, truncation = method.num_classes, self.recipe.evaluation.truncation
        return {
            "samples": (lambda m: m.fixed_samples(), k),
            "truncated": (
                lambda m: m.sample(
                    len(m.fixed_labels),
                    m.fixed_labels,
                    truncation,
                    torch.Generator().manual_seed(0),
                ),
                k,
            ),
        }

    def extend_report(self, method: TrainingMethod, output: TaskOutput) -> None:
        """The truncation curve (Brock et al. 2019, Fig. 4): each threshold's scores and
        precision / recall, beside the untruncated ones, as a table and a figure."""
        assert isinstance(method, BigGAN)
        ev = self.recipe.evaluation
        if not ev.truncation_curve:
            return
        curve: dict[str, dict[str, float]] = {}
        for psi in [*sorted(ev.truncation_curve), None]:
            with torch.no_grad():
                fake = generate_images(
                    lambda n, g, t=psi: method.sample(n, truncation=t, generator=g),
                    ev.n_samples, ev.batch_size, self.recipe.seed,
                )  # fmt: skip
                scores, coverage = self.judge(fake)
            values = {s.metric: s.value for s in scores} | coverage
            key = "none" if psi is None else f"{psi:g}"
            curve[key] = values
            output.metrics.update({f"truncation/{key}/{k}": v for k, v in values.items()})
        output.details["truncation_curve"] = curve
        self.ctx.save_figure(truncation_figure(curve), "truncation_curve")
