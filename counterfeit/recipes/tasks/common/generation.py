"""What the GAN tasks share (``dcgan``, ``infogan``, ``biggan``): the data, the evaluation
settings, and :class:`GANTask`, the loop of training one GAN on one image domain.

The GAN trains through :class:`gan.Trainer` on one image domain (by default the embedded
real MNIST digits) and writes sample grids while training (``OUT/samples/``, MLflow
``samples/``); at the end the weight-averaged generator is evaluated against the domain's
test split — FID / KID / IS with the chosen feature extractor, with their sample counts,
beside the real-vs-real floor (training images scored the same way) — and the grids,
curves and checkpoint are written.
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
    conditional_scores,
    generate_images,
    precision_recall,
    scores_to_dict,
    scores_to_metrics,
)
from counterfeit.gan.models import DCGAN
from counterfeit.gan.plots import curves_figure, save_image_grid
from counterfeit.gan.train import TrainResult
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.schema import StrictModel
from counterfeit.recipes.tasks.base import Task

BASELINE = "dcgan-baseline"


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
    n_per_class: int = Field(
        100, ge=2, description="a conditional GAN's images per class (class accuracy, intra-FID)"
    )

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
    d_norm: Literal["batch", "layer", "none", "spectral"] = "batch"
    latent: Literal["uniform", "normal"] = "uniform"
    optimizer: Literal["adam", "rmsprop"] | None = None
    lr: float | None = Field(None, gt=0)
    betas: tuple[float, float] | None = None
    n_critic: int | None = Field(None, gt=0)
    clip_value: float | None = Field(None, gt=0)
    gp_weight: float | None = Field(None, ge=0)
    ema_decay: float | None = Field(0.999, ge=0, lt=1)


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


class GANTask(Task):
    """The loop the GAN tasks share: one image domain, grids, FID-digits.

    A task names its GAN (:meth:`build_gan`), may change the grids it draws (:meth:`grids`),
    add scores to the evaluations while training (:meth:`extra_scores`) and add to the final
    report (:meth:`extend_report`).
    """

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
        """The recipe's GAN, then the DCGAN baseline when the recipe names one."""
        baseline = getattr(self.recipe, "baseline", None) is not None
        return [self.recipe.task, *([BASELINE] if baseline else [])]

    def build(self, name: str) -> TrainingMethod:
        if not hasattr(self, "scorer"):
            self.scorer = self._scorer() if self.ctx.dist.is_main else None
        return self.build_baseline() if name == BASELINE else self.build_gan()

    def build_baseline(self) -> DCGAN:
        """The recipe's ``baseline``: a DCGAN (conditional when it says so) trained on the same
        real images as the GAN (same steps and batch size)."""
        r, config = self.recipe, self.recipe.baseline
        classes = self.train_set.num_classes if config.conditional else 0
        if config.conditional and classes < 2:
            raise ConfigError(
                f"a conditional baseline needs a labelled domain; '{r.data.domain.name}' has none."
            )
        return DCGAN(
            image_size=r.data.model_size, channels=r.data.channels, num_classes=classes,
            seed=r.seed, **config.model_dump(exclude={"conditional"}),
        )  # fmt: skip

    def scoped_name(self, name: str) -> bool:
        """The GAN's metrics unprefixed, the baseline's under ``dcgan-baseline/``."""
        return name == BASELINE

    def build_gan(self) -> TrainingMethod:
        """The recipe's GAN."""
        raise NotImplementedError

    def grids(self, method: TrainingMethod) -> dict[str, tuple]:
        """The sample grids ``name -> (images_of(method), per row)``: fixed-noise samples and
        interpolations (DCGAN's)."""
        return {
            "samples": (lambda m: m.fixed_samples(), 8),
            "interpolation": (lambda m: m.interpolation(), 10),
        }

    def extra_scores(self, method: TrainingMethod) -> dict[str, float]:
        """Scores beside FID/KID/IS in each evaluation while training (none by default)."""
        return {}

    def extend_report(self, method: TrainingMethod, output: TaskOutput) -> None:
        """Add the task's own results to ``output`` (nothing by default)."""

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
            grids = GANTask.grids(self, method) if name == BASELINE else self.grids(method)
            prefixed = {f"{name}_{k}" if name == BASELINE else k: v for k, v in grids.items()}
            callbacks.append(
                SampleGridCallback(prefixed, ev.samples_every, samples, self.ctx.tracker)
            )
        scorer = self.scorer
        if t.eval_every and scorer is not None:

            def evaluate(m: TrainingMethod) -> dict[str, float]:
                fake = generate_images(sample_fn(m), ev.n_samples, ev.batch_size, r.seed)
                return {s.metric: s.value for s in scorer(fake)} | self.extra_scores(m)

            callbacks.append(EvalCallback(evaluate, t.eval_every, prefix="eval/", at_end=False))
        return callbacks

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        """Scores of the generator beside the real-vs-real floor (and of the DCGAN baseline,
        rows and metrics prefixed ``baseline``); grids and curves."""
        task = self.recipe.task
        output = self.evaluate(task, results[task])
        self.extend_report(self.methods[task], output)
        if BASELINE in results:
            base = self.evaluate(BASELINE, results[BASELINE])
            kind = "conditional DCGAN" if self.recipe.baseline.conditional else "DCGAN"
            output.metrics.update({f"baseline/{k}": v for k, v in base.metrics.items()})
            output.details["baseline"] = {"model": kind, **base.details}
            output.table += [(f"baseline ({kind}): {row[0]}", *row[1:]) for row in base.table[1:]]
        return output

    def evaluate(self, name: str, result: TrainResult) -> TaskOutput:
        """One trained generator's scores, coverage, class fidelity and plots."""
        ctx, recipe, scorer = self.ctx, self.recipe, self.scorer
        assert scorer is not None
        train, method, ev = self.train_set, self.methods[name], recipe.evaluation
        method.eval()
        n = ev.n_samples
        with torch.no_grad():
            fake = generate_images(sample_fn(method), n, ev.batch_size, recipe.seed)
            scores, coverage = self.judge(fake)
            floor = scorer(
                train.take(n, seed=recipe.seed).get_batch(torch.arange(min(n, len(train))))[0]
            )
        metrics = scores_to_metrics(scores)
        metrics.update({f"real_floor/{k}": v for k, v in scores_to_metrics(floor).items()})
        details: dict = {
            "scores": scores_to_dict(scores),
            "real_vs_real_floor": scores_to_dict(floor),
            **ctx.train_record(name, result),
            "generator": "weight average (EMA)" if method.g_ema is not None else "last iterate",
            "history": [{"step": step, "values": values} for step, values in result.evaluations],
        }
        table = [("score", "generator", "real vs real", "images (generated / real)")]
        for s, f in zip(scores, floor):
            table.append((s.label, f"{s.value:.4g}", f"{f.value:.4g}", counts(s)))
        self.plots(name, method, result, fake)
        output = TaskOutput(metrics, details, table)
        output.metrics.update(coverage)
        precision, recall = coverage.values()
        output.table.append(
            ("precision / recall (k = 3)", f"{precision:.4f} / {recall:.4f}", "",
             f"{len(fake)} / {len(scorer.real_features)}")
        )  # fmt: skip
        if getattr(method, "num_classes", 0) and self.real_test.has_labels:
            self.class_fidelity(method, output)
        return output

    def judge(self, fake: torch.Tensor) -> tuple[list[Score], dict[str, float]]:
        """The scores (FID / KID / IS) of generated images and their precision and recall
        (Kynkäänniemi et al. 2019, k = 3: realism and coverage apart) in the evaluation
        extractor's feature space, the features extracted once."""
        assert self.scorer is not None
        scorer = self.scorer
        features, logits = scorer.extractor.extract(fake, self.recipe.evaluation.batch_size)
        suffix = f"-{scorer.extractor.name}" if scorer.extractor.name else ""
        precision, recall = precision_recall(scorer.real_features, features)
        coverage = {f"precision{suffix}": precision, f"recall{suffix}": recall}
        return scorer.from_features(features, logits), coverage

    def class_fidelity(self, method: TrainingMethod, output: TaskOutput) -> None:
        """A class-conditional GAN: the share of each class's images the digits classifier
        reads as that class, and the intra-class FID-digits (each class against its real
        test images)."""
        ev, seed = self.recipe.evaluation, self.recipe.seed
        extractor = build_extractor("digits").to(self.ctx.device)
        real, labels = self.real_test.get_batch(torch.arange(len(self.real_test)))
        scores = conditional_scores(
            lambda classes, g: method.sample(len(classes), classes, generator=g),
            extractor, real, labels, method.num_classes, ev.n_per_class, ev.batch_size, seed,
        )  # fmt: skip
        output.metrics["class_accuracy"] = scores.accuracy
        output.metrics.update(
            {f"class_accuracy/{c}": a for c, a in enumerate(scores.per_class_accuracy)}
        )
        output.metrics["intra-fid-digits"] = scores.intra_fid
        output.metrics.update(
            {f"intra-fid-digits/{c}": v for c, v in enumerate(scores.per_class_fid)}
        )
        output.details["class_accuracy"] = {
            "overall": scores.accuracy,
            "per_class": scores.per_class_accuracy,
        }
        output.details["intra_fid_digits"] = {
            "mean": scores.intra_fid,
            "per_class": scores.per_class_fid,
            "n_fake_per_class": scores.n_fake_per_class,
            "n_real_per_class": scores.n_real_per_class,
        }
        accuracy, fid = scores.per_class_accuracy, scores.per_class_fid
        worst = min(range(len(accuracy)), key=accuracy.__getitem__)
        output.table.append(
            ("class accuracy (digits classifier)", f"{scores.accuracy:.4f}", "",
             f"worst class {worst}: {accuracy[worst]:.2f}")
        )  # fmt: skip
        worst = max(range(len(fid)), key=fid.__getitem__)
        output.table.append(
            ("intra-class FID-digits (mean)", f"{scores.intra_fid:.4g}", "",
             f"{scores.n_fake_per_class} per class; worst class {worst}: {fid[worst]:.4g}")
        )  # fmt: skip

    def plots(
        self, name: str, method: TrainingMethod, result: TrainResult, fake: torch.Tensor
    ) -> None:
        """The grids, 100 random samples, and the curve of each score while training (the
        baseline's files prefixed ``dcgan-baseline_``)."""
        ctx = self.ctx
        prefix = f"{name}_" if name == BASELINE else ""
        grids = GANTask.grids(self, method) if name == BASELINE else self.grids(method)
        with torch.no_grad():
            for grid, (fn, nrow) in grids.items():
                path = save_image_grid(
                    fn(method).float().cpu(), ctx.out / "plots" / f"{prefix}{grid}.png", nrow
                )
                ctx.log_file(path, "plots")
            path = save_image_grid(
                fake[:100], ctx.out / "plots" / f"{prefix}random_samples.png", 10
            )
            ctx.log_file(path, "plots")
        curves: dict[str, list[tuple[int, float]]] = {}
        for step, values in result.evaluations:
            for key, value in values.items():
                curves.setdefault(key.removeprefix("eval/"), []).append((step, value))
        for metric, points in curves.items():
            title = f"{metric} of the generator during training"
            ctx.save_figure(
                curves_figure({metric: points}, title, metric), f"{prefix}curve_{metric}"
            )


def sample_fn(method: TrainingMethod, ema: bool = True):
    """``(n, generator) -> n images`` of ``method`` (its weight average when ``ema``)."""
    return lambda n, generator: method.sample(n, generator=generator, ema=ema)


def counts(score: Score) -> str:
    return f"{score.n_fake} / {score.n_real}" if score.n_real else f"{score.n_fake} / -"
