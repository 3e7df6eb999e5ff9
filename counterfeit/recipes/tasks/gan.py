"""The ``dcgan`` and ``infogan`` tasks: train a GAN, draw grids, score it with FID-digits
(the loop is :class:`~counterfeit.recipes.tasks.common.generation.GANTask`).

``infogan`` also reports how well its first categorical code clusters the test images by
class (Hungarian matching), when the domain has labels.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.method import TrainingMethod
from counterfeit.gan.metrics import cluster_accuracy
from counterfeit.gan.models import DCGAN, InfoGAN
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.schema import RecipeBase, StrictModel, TrainConfig
from counterfeit.recipes.tasks.common.generation import (
    DCGANModelConfig,
    GANData,
    GANEvaluation,
    GANTask,
)


class InfoGANModelConfig(StrictModel):
    """InfoGAN settings; defaults are the paper's MNIST ones (see gan.models.infogan)."""

    noise_dim: int = Field(62, ge=0)
    categorical: list[int] = Field(default_factory=lambda: [10])
    continuous: int = Field(2, ge=0)
    info_weight: float = Field(1.0, ge=0)
    continuous_weight: float = Field(1.0, ge=0)
    lr_g: float = Field(1e-3, gt=0)
    lr_d: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    learn_std: bool = False
    g_batch: Literal["fresh", "reuse"] = Field(
        "reuse",
        description="the G step's latent batch: the D step's, or a fresh draw (the authors')",
    )
    leak: float = Field(0.1, gt=0, lt=1, description="D's lReLU slope: the paper's 0.1")
    ema_decay: float | None = Field(0.999, ge=0, lt=1)
    q_ema_decay: float | None = Field(
        None, ge=0, lt=1, description="weight average of D and Q for labelling; None: last iterate"
    )


class DCGANRecipe(RecipeBase):
    """Train a DCGAN (any loss of gan.losses), draw grids, score it."""

    task: Literal["dcgan"]
    data: GANData = GANData(pad=2)
    model: DCGANModelConfig = DCGANModelConfig()
    train: TrainConfig
    evaluation: GANEvaluation = GANEvaluation()


class InfoGANRecipe(RecipeBase):
    """Train an InfoGAN, draw latent traversals, score it and its code's clustering."""

    task: Literal["infogan"]
    data: GANData = GANData()
    model: InfoGANModelConfig = InfoGANModelConfig()
    train: TrainConfig
    evaluation: GANEvaluation = GANEvaluation()


def build_dcgan(recipe: DCGANRecipe, num_classes: int) -> DCGAN:
    """The recipe's DCGAN; ``model.conditional`` conditions it on the domain's classes."""
    m = recipe.model
    if m.conditional and num_classes < 2:
        raise ConfigError(
            f"model.conditional needs a labelled domain; '{recipe.data.domain.name}' has none."
        )
    return DCGAN(
        image_size=recipe.data.model_size,
        channels=recipe.data.channels,
        num_classes=num_classes if m.conditional else 0,
        seed=recipe.seed,
        **m.model_dump(exclude={"conditional"}),
    )


def build_infogan(recipe: InfoGANRecipe) -> InfoGAN:
    """The recipe's InfoGAN."""
    return InfoGAN(
        image_size=recipe.data.model_size,
        channels=recipe.data.channels,
        seed=recipe.seed,
        **recipe.model.model_dump(),
    )


class DCGANTask(GANTask):
    """A DCGAN (any adversarial loss) with FID-digits."""

    schema = DCGANRecipe

    def build_gan(self) -> DCGAN:
        return build_dcgan(self.recipe, self.train_set.num_classes)


class InfoGANTask(GANTask):
    """An InfoGAN with latent traversals and clustering."""

    schema = InfoGANRecipe

    def build_gan(self) -> InfoGAN:
        return build_infogan(self.recipe)

    def grids(self, method: TrainingMethod) -> dict[str, tuple]:
        """Fixed-noise samples and one traversal per code."""
        assert isinstance(method, InfoGAN)
        out = {
            "samples": (lambda m: m.generate(m.fixed_noise, m.fixed_codes, m.fixed_continuous), 10)
        }
        for i, k in enumerate(method.categorical):
            out[f"traversal_categorical{i}"] = (lambda m, i=i: m.traversal("categorical", i), k)
        for j in range(method.continuous):
            out[f"traversal_continuous{j}"] = (lambda m, j=j: m.traversal("continuous", j), 10)
        return out

    def extra_scores(self, method: TrainingMethod) -> dict[str, float]:
        """The categorical code's cluster accuracy on the labelled test images."""
        clusters = _cluster_data(method, self.real_test)
        return _cluster_accuracies(method, *clusters) if clusters is not None else {}

    def extend_report(self, method: TrainingMethod, output: TaskOutput) -> None:
        """The cluster accuracy of code 0 (Hungarian-matched), when the domain is labelled."""
        clusters = _cluster_data(method, self.real_test)
        if clusters is None:
            return
        accuracies = _cluster_accuracies(method, *clusters)
        output.metrics.update(accuracies)
        n = len(self.real_test)
        output.details["cluster_accuracy"] = {
            "value": accuracies["cluster_accuracy"],
            "labelled_by": "D/Q weight average" if method.q_ema is not None else "last iterate",
            "n_images": n,
        }
        for key, value in accuracies.items():
            label = key.replace("_", " ").replace("cluster accuracy", "cluster accuracy (code 0)")
            output.table.append((label, f"{value:.4f}", "", f"- / {n}"))


def _cluster_accuracies(
    method: InfoGAN, images: torch.Tensor, labels: torch.Tensor
) -> dict[str, float]:
    """Code 0 as a cluster label (Hungarian-matched): ``cluster_accuracy`` from the labelling
    nets (the D/Q weight average when kept), plus ``last_iterate_cluster_accuracy`` then."""
    values = {"cluster_accuracy": cluster_accuracy(method.predict_categorical(images), labels)}
    if method.q_ema is not None:
        values["last_iterate_cluster_accuracy"] = cluster_accuracy(
            method.predict_categorical(images, average=False), labels
        )
    return values


def _cluster_data(
    method: TrainingMethod, real_test: ImageTensors
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Labelled test images for InfoGAN's code-as-cluster accuracy, or None when it does not apply."""
    if isinstance(method, InfoGAN) and method.categorical and real_test.has_labels:
        return real_test.get_batch(torch.arange(len(real_test)))
    return None
