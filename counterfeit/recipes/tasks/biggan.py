"""The ``biggan`` task (recipe ``mnist-biggan``): a class-conditional BigGAN (Brock et al.,
ICLR 2019) trained and scored like the other GANs (:class:`~counterfeit.recipes.tasks.
common.generation.GANTask`), and judged as a conditional one: how often the digits
classifier reads its images as the class asked for (overall and per class), precision and
recall in that classifier's feature space, and a grid at ``evaluation.truncation``.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.method import TrainingMethod
from counterfeit.gan.metrics import (
    build_extractor,
    class_accuracy,
    generate_images,
    precision_recall,
)
from counterfeit.gan.models import BigGAN
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.schema import RecipeBase, StrictModel, TrainConfig
from counterfeit.recipes.tasks.common.generation import (
    GANData,
    GANEvaluation,
    GANTask,
    sample_fn,
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
    """GANEvaluation, and how class fidelity is read."""

    n_per_class: int = Field(100, gt=0, description="images per class for class accuracy")
    truncation: float = Field(0.5, gt=0, description="of the truncated sample grid")


class BigGANRecipe(RecipeBase):
    """Train a class-conditional BigGAN, draw grids per class, score it and its classes."""

    task: Literal["biggan"]
    data: GANData = GANData(pad=2)
    model: BigGANModelConfig = BigGANModelConfig()
    train: TrainConfig
    evaluation: BigGANEvaluation = BigGANEvaluation()


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
        """The share of each class's images read as that class; precision and recall
        (Kynkäänniemi et al. 2019) in the digits classifier's feature space."""
        assert isinstance(method, BigGAN)
        ev = self.recipe.evaluation
        extractor = build_extractor("digits").to(self.ctx.device)
        overall, per_class = class_accuracy(
            lambda labels, g: method.sample(len(labels), labels, generator=g),
            extractor,
            method.num_classes,
            ev.n_per_class,
            ev.batch_size,
            self.recipe.seed,
        )
        with torch.no_grad():
            fake = generate_images(sample_fn(method), ev.n_samples, ev.batch_size, self.recipe.seed)
            real = self.real_test.get_batch(torch.arange(len(self.real_test)))[0]
            features = [
                torch.cat([extractor(b.to(self.ctx.device)).cpu() for b in x.split(ev.batch_size)])
                for x in (real, fake)
            ]
        precision, recall = precision_recall(*features)
        output.metrics.update({"precision-digits": precision, "recall-digits": recall})
        output.table.append(
            ("precision / recall (k = 3)", f"{precision:.4f} / {recall:.4f}", "",
             f"{len(fake)} / {len(real)}")
        )  # fmt: skip
        output.metrics["class_accuracy"] = overall
        output.metrics.update({f"class_accuracy/{c}": a for c, a in enumerate(per_class)})
        output.details["class_accuracy"] = {"overall": overall, "per_class": per_class}
        worst = min(range(len(per_class)), key=per_class.__getitem__)
        output.table.append(
            ("class accuracy (digits classifier)", f"{overall:.4f}", "",
             f"worst class {worst}: {per_class[worst]:.2f}")
        )  # fmt: skip
