"""The ``dcgan``, ``infogan`` and ``biggan`` tasks: train a GAN, draw grids, score it with
FID-digits.

Both train through :class:`gan.Trainer` on one image domain (by default the
embedded real MNIST digits), write sample grids while training
(``OUT/samples/``, MLflow ``samples/``), evaluate the weight-averaged
generator at the end against the domain's test split — FID / KID / IS with
the chosen feature extractor, with their sample counts, beside the
real-vs-real floor (training images scored the same way) — and write
``OUT/plots/*.png`` and the checkpoint. ``infogan`` also reports how well
its first categorical code clusters the test images by class (Hungarian
matching), when the domain has labels. ``biggan`` (class-conditional) also reports
how often the digits classifier reads its images as the class asked for, overall
and per class, and draws a grid at ``evaluation.truncation``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from counterfeit.gan.callbacks import Callback, EvalCallback, SampleGridCallback
from counterfeit.gan.data.domains import DomainSpec, build_domain
from counterfeit.gan.data.loaders import InfiniteLoader
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.losses import LossName
from counterfeit.gan.method import TrainingMethod
from counterfeit.gan.metrics import (
    GenerativeScores,
    MetricName,
    Score,
    build_extractor,
    class_accuracy,
    cluster_accuracy,
    generate_images,
    scores_to_dict,
    scores_to_metrics,
)
from counterfeit.gan.models import DCGAN, BigGAN, InfoGAN
from counterfeit.gan.plots import curves_figure, save_image_grid
from counterfeit.gan.train import TrainResult
from counterfeit.recipes.context import RunContext, TaskOutput
from counterfeit.recipes.schema import RecipeBase, StrictModel, TrainConfig
from counterfeit.recipes.tasks.base import Task


class GANData(StrictModel):
    """One image domain, loaded at ``image_size`` and zero-padded by ``pad`` pixels per side.

    MNIST digits are 28 px; DCGAN's nets take 32 or 64, so the digit recipes
    pad 2 px of background per side (28 -> 32, the digits untouched) rather
    than resize them.
    """

    domain: DomainSpec = DomainSpec(name="mnist-small")
    root: Path | None = Field(None, description="default data root for file-backed domains")
    image_size: int = Field(28, ge=4, le=1024, description="size the domain is loaded at")
    pad: int = Field(0, ge=0, le=64, description="zero pixels added on each side")
    channels: Literal[1, 3] = 1

    @model_validator(mode="after")
    def _share_root(self) -> GANData:
        if self.domain.root is None and self.root is not None:
            self.domain.root = self.root
        return self

    @property
    def model_size(self) -> int:
        return self.image_size + 2 * self.pad


class GANEvaluation(StrictModel):
    """How the generator is judged and shown."""

    extractor: Literal["digits", "inception"] = Field(
        "digits", description="digits: FID-digits etc.; inception: needs local weights"
    )
    inception_weights: Path | None = None
    metrics: list[MetricName] = Field(default_factory=lambda: ["fid", "kid", "is"], min_length=1)
    n_samples: int = Field(1000, ge=2, description="generated images per score")
    n_real: int | None = Field(None, ge=2, description="real test images (None: all)")
    kid_subset_size: int = Field(500, ge=2)
    samples_every: int | None = Field(500, gt=0, description="steps between sample grids")
    batch_size: int = Field(500, gt=0)

    @model_validator(mode="after")
    def _kid_fits(self) -> GANEvaluation:
        if "kid" in self.metrics and self.kid_subset_size > self.n_samples:
            raise ValueError(
                f"kid_subset_size ({self.kid_subset_size}) must not exceed n_samples "
                f"({self.n_samples})"
            )
        return self


class DCGANModelConfig(StrictModel):
    """DCGAN settings; None takes the loss's paper default (see gan.models.dcgan)."""

    loss: LossName = "non-saturating"
    latent_dim: int = Field(100, gt=0)
    width: int = Field(128, gt=0, description="128: the paper's 1024-channel 4x4 layer at 64 px")
    conditional: bool = False
    d_norm: Literal["batch", "layer", "none"] = "batch"
    latent: Literal["uniform", "normal"] = "uniform"
    optimizer: Literal["adam", "rmsprop"] | None = None
    lr: float | None = Field(None, gt=0)
    betas: tuple[float, float] | None = None
    n_critic: int | None = Field(None, gt=0)
    clip_value: float | None = Field(None, gt=0)
    gp_weight: float | None = Field(None, ge=0)
    ema_decay: float | None = Field(0.999, ge=0, lt=1)


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


class BigGANRecipe(RecipeBase):
    """Train a class-conditional BigGAN, draw grids per class, score it and its classes."""

    task: Literal["biggan"]
    data: GANData = GANData(pad=2)
    model: BigGANModelConfig = BigGANModelConfig()
    train: TrainConfig
    evaluation: BigGANEvaluation = BigGANEvaluation()


def pad_images(dataset: ImageTensors, pad: int) -> ImageTensors:
    """``dataset`` with ``pad`` zero pixels added on every side (labels kept)."""
    if pad == 0:
        return dataset
    return ImageTensors(F.pad(dataset.images, (pad,) * 4), dataset.labels, dataset.name)


def load_data(data: GANData) -> tuple[ImageTensors, ImageTensors]:
    """The domain's train and test splits at the model's size."""
    train, test = (
        pad_images(build_domain(data.domain, split, data.image_size, data.channels), data.pad)
        for split in ("train", "test")
    )
    return train, test


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


def grids(method: TrainingMethod) -> dict[str, tuple]:
    """The sample grids a method shows: fixed-noise samples and interpolations (DCGAN),
    fixed-noise samples and one traversal per code (InfoGAN), fixed-noise samples with the
    classes in turn and the same at truncation 0.5 (BigGAN)."""
    if isinstance(method, BigGAN):
        k = method.num_classes
        return {
            "samples": (lambda m: m.fixed_samples(), k),
            "truncated": (
                lambda m: m.sample(len(m.fixed_labels), m.fixed_labels, 0.5, _fixed_noise()),
                k,
            ),
        }
    if isinstance(method, InfoGAN):
        out = {
            "samples": (lambda m: m.generate(m.fixed_noise, m.fixed_codes, m.fixed_continuous), 10)
        }
        for i, k in enumerate(method.categorical):
            out[f"traversal_categorical{i}"] = (
                lambda m, i=i: m.traversal("categorical", i),
                k,
            )
        for j in range(method.continuous):
            out[f"traversal_continuous{j}"] = (lambda m, j=j: m.traversal("continuous", j), 10)
        return out
    return {
        "samples": (lambda m: m.fixed_samples(), 8),
        "interpolation": (lambda m: m.interpolation(), 10),
    }


class GANTask(Task):
    """The loop ``dcgan`` and ``infogan`` share: one image domain, grids, FID-digits."""

    scoped = False

    def prepare(self) -> None:
        r = self.recipe
        d = r.data
        self.train_set, test = load_data(d)
        self.real_test = test.take(r.evaluation.n_real, seed=r.seed)
        padding = f" (loaded at {d.image_size} px, {d.pad} px padding)" if d.pad else ""
        self.ctx.print(
            f"{d.domain.name}: {len(self.train_set)} train / {len(self.real_test)} test images, "
            f"{d.channels}x{d.model_size}x{d.model_size}{padding}"
        )

    def method_names(self) -> list[str]:
        return [self.recipe.task]

    def build(self, name: str) -> TrainingMethod:
        method = self.build_gan()
        self.scorer = self._scorer() if self.ctx.dist.is_main else None
        return method

    def build_gan(self) -> TrainingMethod:
        """The recipe's GAN."""
        raise NotImplementedError

    def _scorer(self) -> GenerativeScores:
        """FID / KID / IS against the real test images (rank 0 scores)."""
        r, ev = self.recipe, self.recipe.evaluation
        extractor = build_extractor(ev.extractor, ev.inception_weights).to(self.ctx.device)
        return GenerativeScores(
            extractor,
            self.real_test.get_batch(torch.arange(len(self.real_test)))[0],
            ev.metrics,
            kid_subset_size=ev.kid_subset_size,
            batch_size=ev.batch_size,
            seed=r.seed,
        )

    def data(self, name: str, method: TrainingMethod) -> InfiniteLoader:
        return self.loader(self.train_set, self.recipe.train.batch_size, self.recipe.seed)

    def callbacks(self, name: str, method: TrainingMethod, data: Any) -> list[Callback]:
        r, t, ev = self.recipe, self.recipe.train, self.recipe.evaluation
        callbacks: list[Callback] = []
        if ev.samples_every is not None:
            samples = self.ctx.out / "samples"
            callbacks.append(
                SampleGridCallback(grids(method), ev.samples_every, samples, self.ctx.tracker)
            )
        scorer = self.scorer
        if t.eval_every and scorer is not None:
            clusters = _cluster_data(method, self.real_test)

            def evaluate(m: TrainingMethod) -> dict[str, float]:
                fake = generate_images(_sample_fn(m), ev.n_samples, ev.batch_size, r.seed)
                values = {s.metric: s.value for s in scorer(fake)}
                if clusters is not None:
                    values.update(_cluster_accuracies(m, *clusters))
                return values

            callbacks.append(EvalCallback(evaluate, t.eval_every, prefix="eval/", at_end=False))
        return callbacks

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        """Scores of the generator beside the real-vs-real floor; grids and curves."""
        ctx, recipe, scorer = self.ctx, self.recipe, self.scorer
        train, real_test = self.train_set, self.real_test
        method = self.methods[recipe.task]
        result = results[recipe.task]
        ev = recipe.evaluation
        method.eval()
        n = ev.n_samples
        with torch.no_grad():
            fake = generate_images(_sample_fn(method), n, ev.batch_size, recipe.seed)
            scores = scorer(fake)
            floor = scorer(
                train.take(n, seed=recipe.seed).get_batch(torch.arange(min(n, len(train))))[0]
            )
        metrics = scores_to_metrics(scores)
        metrics.update({f"real_floor/{k}": v for k, v in scores_to_metrics(floor).items()})
        details: dict = {
            "scores": scores_to_dict(scores),
            "real_vs_real_floor": scores_to_dict(floor),
            **ctx.train_record(recipe.task, result),
            "generator": "weight average (EMA)" if method.g_ema is not None else "last iterate",
            "history": [{"step": step, "values": values} for step, values in result.evaluations],
        }
        table = [("score", "generator", "real vs real", "images (generated / real)")]
        for s, f in zip(scores, floor):
            table.append((s.label, f"{s.value:.4g}", f"{f.value:.4g}", _counts(s)))
        clusters = _cluster_data(method, real_test)
        if clusters is not None:
            accuracies = _cluster_accuracies(method, *clusters)
            metrics.update(accuracies)
            details["cluster_accuracy"] = {
                "value": accuracies["cluster_accuracy"],
                "labelled_by": "D/Q weight average" if method.q_ema is not None else "last iterate",
                "n_images": len(real_test),
            }
            for key, value in accuracies.items():
                label = key.replace("_", " ").replace(
                    "cluster accuracy", "cluster accuracy (code 0)"
                )
                table.append((label, f"{value:.4f}", "", f"- / {len(real_test)}"))
        _plots(ctx, method, result, fake)
        return TaskOutput(metrics, details, table)


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

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        """The GAN report, and the share of each class's images read as that class."""
        output = super().report(results)
        method, ev = self.methods[self.recipe.task], self.recipe.evaluation
        extractor = build_extractor("digits").to(self.ctx.device)
        overall, per_class = class_accuracy(
            lambda labels, g: method.sample(len(labels), labels, generator=g),
            extractor,
            method.num_classes,
            ev.n_per_class,
            ev.batch_size,
            self.recipe.seed,
        )
        output.metrics["class_accuracy"] = overall
        output.metrics.update({f"class_accuracy/{c}": a for c, a in enumerate(per_class)})
        output.details["class_accuracy"] = {"overall": overall, "per_class": per_class}
        worst = min(range(len(per_class)), key=per_class.__getitem__)
        output.table.append(
            ("class accuracy (digits classifier)", f"{overall:.4f}", "",
             f"worst class {worst}: {per_class[worst]:.2f}")
        )  # fmt: skip
        return output


def _fixed_noise() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _sample_fn(method: TrainingMethod, ema: bool = True):
    return lambda n, generator: method.sample(n, generator=generator, ema=ema)


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


def _counts(score: Score) -> str:
    return f"{score.n_fake} / {score.n_real}" if score.n_real else f"{score.n_fake} / -"


def _plots(
    ctx: RunContext, method: TrainingMethod, result: TrainResult, fake: torch.Tensor
) -> None:
    with torch.no_grad():
        for name, (fn, nrow) in grids(method).items():
            path = save_image_grid(
                fn(method).float().cpu(), ctx.out / "plots" / f"{name}.png", nrow
            )
            ctx.log_file(path, "plots")
        path = save_image_grid(fake[:100], ctx.out / "plots" / "random_samples.png", 10)
        ctx.log_file(path, "plots")
    curves: dict[str, list[tuple[int, float]]] = {}
    for step, values in result.evaluations:
        for key, value in values.items():
            curves.setdefault(key.removeprefix("eval/"), []).append((step, value))
    for metric, points in curves.items():
        title = f"{metric} of the generator during training"
        ctx.save_figure(curves_figure({metric: points}, title, metric), f"curve_{metric}")
