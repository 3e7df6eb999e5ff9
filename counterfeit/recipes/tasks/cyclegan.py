"""The ``cyclegan`` task: unpaired translation of labelled synthetic images into a real domain.

Trains :class:`gan.models.CycleGAN` (Zhu et al. 2017; optionally with CyCADA's
semantic-consistency loss, Hoffman et al. 2018) through :class:`gan.Trainer` on
domain A = ``data.source`` and domain B = ``data.target``, each sampled
independently (unpaired; labels are never shown to the GAN). Grids of fixed
test images ``input | translated | reconstructed`` for both directions are
written while training (``OUT/samples/cycle_stepNNNNNN.png``, MLflow
``samples/``).

The measure that matters is label preservation: a classifier (Ganin et al.
2016's MNIST net) is trained on the target domain's *labelled train split*
only (on augmented batches by default, so that it reads digits rather than
memorising its few thousand examples), then reads (1) real target test images,
(2) untranslated source test images and (3) the same source test images
translated A -> B; their labels are the source labels, so (3) says how often
the translation kept the digit.
Beside it, FID-digits (:mod:`gan.metrics`) of translated vs real target test
images, and of untranslated vs real as the starting point. With the semantic
loss, f_S is the same architecture trained on the source's train split first.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from counterfeit.adapt.evaluate import accuracy, predict
from counterfeit.gan.callbacks import Callback, SampleGridCallback
from counterfeit.gan.data.augment import Augment
from counterfeit.gan.data.loaders import InfiniteLoader, ZipLoader
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.metrics import DigitsFeatures, GenerativeScores
from counterfeit.gan.models.cyclegan import PRESETS, CycleGAN
from counterfeit.gan.nets.backbones import digits_classifier
from counterfeit.gan.plots import confusion_matrix_figure, save_image_grid
from counterfeit.gan.train import TrainResult
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.schema import AdaptationData, RecipeBase, StrictModel, TrainConfig
from counterfeit.recipes.tasks.base import Task
from counterfeit.recipes.tasks.common.adaptation import (
    describe,
    load_domains,
    num_classes_of,
    translate_dataset,
)


class CycleGANModelConfig(StrictModel):
    """CycleGAN settings; defaults are the paper's (see gan.models.cyclegan)."""

    preset: Literal["paper", "small"] = "paper"
    generator_width: int | None = Field(None, gt=0, description="ngf (paper 64)")
    generator_blocks: int | None = Field(None, ge=0, description="None: 6 up to 128 px, 9 above")
    discriminator_width: int | None = Field(None, gt=0, description="ndf (paper 64)")
    discriminator_layers: int | None = Field(
        None, gt=0, description="PatchGAN depth; None: by size (3 = 70x70 from 128 px)"
    )
    cycle_weight: float = Field(10.0, ge=0)
    identity_weight: float | None = Field(
        None, ge=0, description="x cycle_weight; None: 0.5 when channels match"
    )
    pool_size: int = Field(50, ge=0)
    lr: float = Field(2e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    decay_start: int | float = Field(
        0.5, ge=0, description="lr decay start: a step count (int) or a fraction of the run"
    )
    semantic_weight: float = Field(
        0.0, ge=0, description="CyCADA semantic-consistency loss weight (0: off, the paper)"
    )
    semantic_backbone: str = "ganin-mnist"


class ClassifierConfig(StrictModel):
    """How the evaluation classifier (and f_S of the semantic loss) are trained: Adam on
    augmented batches. The default judge (3,000 steps, ``strong`` augmentation) reads the
    embedded real test digits at about 0.96; the earlier one (1,500 steps, no augmentation)
    at 0.93, and its own errors were most of what it reported as lost labels
    (docs/results.md, synth2real-cyclegan)."""

    steps: int = Field(3000, gt=0)
    batch_size: int = Field(64, gt=0)
    lr: float = Field(1e-3, gt=0)
    augment: Literal["none", "light", "strong"] = Field(
        "strong", description="gan.data.Augment preset for the training batches, or none"
    )


class CycleGANEvaluation(StrictModel):
    batch_size: int = Field(500, gt=0)
    classifier: ClassifierConfig = ClassifierConfig()
    fid: bool = Field(True, description="FID-digits of translated vs real target test images")


class CycleGANRecipe(RecipeBase):
    """Train a CycleGAN source <-> target, log cycle grids, measure label preservation."""

    task: Literal["cyclegan"]
    data: AdaptationData
    model: CycleGANModelConfig = CycleGANModelConfig()
    train: TrainConfig
    samples_every: int | None = Field(250, gt=0, description="steps between cycle grids")
    grid_images: int = Field(10, ge=1, le=64, description="images per row of the grids")
    evaluation: CycleGANEvaluation = CycleGANEvaluation()

    @model_validator(mode="after")
    def _preset_batch(self) -> CycleGANRecipe:
        """An unset train.batch_size takes the preset's (1 for the paper, 4 for small)."""
        if "batch_size" not in self.train.model_fields_set:
            self.train.batch_size = PRESETS[self.model.preset]["batch_size"]
        return self


def train_classifier(
    dataset: ImageTensors,
    num_classes: int,
    config: ClassifierConfig,
    seed: int,
    device: torch.device | str = "cpu",
) -> torch.nn.Module:
    """A :func:`gan.nets.backbones.digits_classifier` trained on ``dataset``'s labels with
    Adam (plain loop, seeded; the global random state is left untouched), its batches
    augmented by ``config.augment``. Eval mode."""
    if not dataset.has_labels:
        raise ConfigError(f"{dataset.name} has no labels; the classifier needs them.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = digits_classifier(dataset.shape, num_classes).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        transform = None if config.augment == "none" else Augment(config.augment)
        loader = InfiniteLoader(dataset, config.batch_size, seed=seed, transform=transform)
        model.train()
        for _ in range(config.steps):
            x, y = next(loader)
            loss = F.cross_entropy(model(x.to(device)), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


def fixed_examples(dataset: ImageTensors, n: int) -> torch.Tensor:
    """The first image of each class in turn (``n`` images), or the first ``n`` unlabelled."""
    if not dataset.has_labels:
        return dataset.get_batch(torch.arange(min(n, len(dataset))))[0]
    picks: list[int] = []
    by_class = [
        (dataset.labels == c).nonzero().flatten().tolist() for c in range(dataset.num_classes)
    ]
    i = 0
    while len(picks) < min(n, len(dataset)):
        c = i % dataset.num_classes
        if i // dataset.num_classes < len(by_class[c]):
            picks.append(by_class[c][i // dataset.num_classes])
        i += 1
    return dataset.get_batch(torch.tensor(picks))[0]


class CycleGANTask(Task):
    """Unpaired CycleGAN translation (optional CyCADA semantic loss), label preservation."""

    schema = CycleGANRecipe
    recipe: CycleGANRecipe

    def prepare(self) -> None:
        r = self.recipe
        self.domains = load_domains(r.data)
        if (
            not self.domains["target_train"].has_labels
            or not self.domains["target_test"].has_labels
        ):
            raise ConfigError(
                f"the cyclegan task measures label preservation with a classifier trained on "
                f"the target's labelled train split; '{r.data.target.name}' has no labels."
            )
        self.ctx.print(describe(self.domains, r.data))
        self.num_classes = num_classes_of(self.domains)
        self.semantic = None
        if r.model.semantic_weight and not self.ctx.resumes("cyclegan"):
            self.ctx.print("training f_S (semantic loss) on the source's train split")
            self.semantic = train_classifier(
                self.domains["source_train"],
                self.num_classes,
                r.evaluation.classifier,
                r.seed,
                self.ctx.device,
            )

    def method_names(self) -> list[str]:
        return ["cyclegan"]

    def build(self, name: str) -> CycleGAN:
        r, d = self.recipe, self.domains
        model = CycleGAN(
            d["source_train"].shape,
            d["target_train"].shape,
            num_classes=self.num_classes,
            semantic_classifier=self.semantic,
            **r.model.model_dump(),
        )
        self.ctx.print(
            f"CycleGAN ({model.preset}): G {model.hparams['generator_width']} filters x "
            f"{model.hparams['generator_blocks']} residual blocks, PatchGAN "
            f"{model.receptive_field}x{model.receptive_field} "
            f"({model.hparams['discriminator_layers']} layers), batch {r.train.batch_size}"
        )
        self.fixed_a = fixed_examples(d["source_test"], r.grid_images)
        self.fixed_b = fixed_examples(d["target_test"], r.grid_images)[: len(self.fixed_a)]
        return model

    def grid(self, m: CycleGAN) -> torch.Tensor:
        """``input | translated | reconstructed`` of the fixed test images, both directions."""
        device = next(m.parameters()).device
        return m.cycle_grid(self.fixed_a.to(device), self.fixed_b.to(device)).cpu()

    def data(self, name: str, method: CycleGAN) -> ZipLoader:
        r, d = self.recipe, self.domains
        batch = r.train.batch_size
        return ZipLoader(
            self.loader(d["source_train"].unlabeled(), batch, r.seed),
            self.loader(d["target_train"].unlabeled(), batch, r.seed + 1),
        )

    def callbacks(self, name: str, method: CycleGAN, data: Any) -> list[Callback]:
        if not self.recipe.samples_every:
            return []
        grids = {"cycle": (self.grid, len(self.fixed_a))}
        out = self.ctx.out / "samples"
        return [SampleGridCallback(grids, self.recipe.samples_every, out, self.ctx.tracker)]

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        """Label preservation (real-domain and source-domain judges), FID-digits, the grid."""
        ctx, recipe, domains, num_classes = self.ctx, self.recipe, self.domains, self.num_classes
        model: CycleGAN = self.methods["cyclegan"]  # type: ignore[assignment]
        result = results["cyclegan"]
        ev = recipe.evaluation
        bs = ev.batch_size
        model.eval()
        translated = translate_dataset(model, domains["source_test"], bs, recipe.seed)
        ctx.print("training the evaluation classifier on the target's labelled train split")
        judge = train_classifier(
            domains["target_train"], num_classes, ev.classifier, recipe.seed + 1, ctx.device
        )
        on_translated = predict(judge, translated, bs)
        metrics = {
            "translated_accuracy": accuracy(on_translated),
            "untranslated_accuracy": accuracy(predict(judge, domains["source_test"], bs)),
            "real_accuracy": accuracy(predict(judge, domains["target_test"], bs)),
        }
        # Content kept, in the source domain's own eyes: a source classifier (f_S when the
        # semantic loss trained with it, else one trained here) reads the translations.
        source_judge = model.semantic
        if source_judge is None:
            ctx.print("training a source-domain classifier to read the translations")
            source_judge = train_classifier(
                domains["source_train"], num_classes, ev.classifier, recipe.seed + 2, ctx.device
            )
        metrics["source_classifier_untranslated"] = accuracy(
            predict(source_judge, domains["source_test"], bs)
        )
        metrics["source_classifier_translated"] = accuracy(predict(source_judge, translated, bs))
        fid_rows = {}
        if ev.fid:
            real = domains["target_test"].get_batch(torch.arange(len(domains["target_test"])))[0]
            scorer = GenerativeScores(DigitsFeatures().to(ctx.device), real, ["fid"], batch_size=bs)
            for key, images in (
                ("translated", translated),
                ("untranslated", domains["source_test"]),
            ):
                (score,) = scorer(images.get_batch(torch.arange(len(images)))[0])
                metrics[f"fid-digits/{key}"] = score.value
                fid_rows[key] = score
        path = save_image_grid(
            self.grid(model), ctx.out / "plots" / "cycle.png", nrow=recipe.grid_images
        )
        ctx.log_file(path, "plots")
        ctx.save_figure(
            confusion_matrix_figure(
                on_translated.labels.numpy(),
                on_translated.predicted.numpy(),
                num_classes,
                "real-domain classifier on translated source test digits",
            ),
            "confusion_translated",
        )
        counts = {
            k: len(domains[k])
            for k in ("source_train", "target_train", "source_test", "target_test")
        }
        details = {
            "cyclegan": {
                "metrics": metrics,
                "hparams": model.hparams,
                "receptive_field": model.receptive_field,
                "batch_size": recipe.train.batch_size,
                **ctx.train_record("cyclegan", result),
                "decay_start_step": model.decay_start_step(recipe.train.steps),
                "last_losses": result.last_metrics,
                "images": counts,
                "classifier": ev.classifier.model_dump(),
                "fid": {
                    k: {
                        "value": s.value,
                        "n_fake": s.n_fake,
                        "n_real": s.n_real,
                        "features": s.features,
                    }
                    for k, s in fid_rows.items()
                },
                "grid": str(path),
            }
        }
        table = [
            ("images read by the real-domain classifier", "accuracy", "FID-digits vs real test"),
            ("real target test", f"{metrics['real_accuracy']:.4f}", "-"),
            (
                "source test, untranslated",
                f"{metrics['untranslated_accuracy']:.4f}",
                f"{metrics['fid-digits/untranslated']:.2f}" if ev.fid else "-",
            ),
            (
                "source test, translated A -> B",
                f"{metrics['translated_accuracy']:.4f}",
                f"{metrics['fid-digits/translated']:.2f}" if ev.fid else "-",
            ),
        ]
        return TaskOutput({f"cyclegan/{k}": v for k, v in metrics.items()}, details, table)
