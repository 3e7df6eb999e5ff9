"""The ``text2image`` task (recipe ``digits-text2image``): Reed et al.'s text-conditional GAN
(ICML 2016; :class:`~counterfeit.gan.models.TextToImageGAN`) on captioned digits.

Two methods train in turn: ``text-encoder`` (the joint image-caption embedding whose text
side is phi, :class:`~counterfeit.gan.models.JointEmbedding`), then ``text2image`` (the GAN,
phi frozen). With rendered data (``data.source: rendered``) the captions are true by
construction (:mod:`counterfeit.gan.data.captions`); the report judges the generator on
captions of the held-out sentence shapes: the share of images an attribute reader (trained
on rendered images) sees with each attribute the caption asks for, beside the reader's own
accuracy on real rendered images; the same for the zero-shot (digit, colour) pairs held out
of training; caption-to-image R-precision in the joint embedding; and FID-digits against
the rendered test images. ``data.source: folder`` trains on a user's ``images/`` and
``captions.txt`` (:mod:`counterfeit.gan.data.caption_folder`): R-precision and FID only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from counterfeit.gan.callbacks import Callback, SampleGridCallback
from counterfeit.gan.data.caption_folder import load_caption_folder
from counterfeit.gan.data.captions import (
    ATTRIBUTES,
    render_captioned_digits,
    zero_shot_pairs,
)
from counterfeit.gan.data.loaders import InfiniteLoader
from counterfeit.gan.data.vocabulary import CaptionTokens, Vocabulary
from counterfeit.gan.method import TrainingMethod
from counterfeit.gan.metrics import GenerativeScores, build_extractor
from counterfeit.gan.metrics.text import attribute_accuracy, r_precision, train_attribute_reader
from counterfeit.gan.models import JointEmbedding, TextToImageGAN
from counterfeit.gan.plots import save_image_grid
from counterfeit.gan.train import TrainResult
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.schema import RecipeBase, StrictModel, TrainConfig
from counterfeit.recipes.tasks.base import Task

ENCODER, GAN = "text-encoder", "text2image"


class CaptionData(StrictModel):
    """Rendered captioned digits, or a user's image-caption pairs."""

    source: Literal["rendered", "folder"] = "rendered"
    path: Path | None = Field(None, description="folder source: ROOT with images/, captions.txt")
    n: int = Field(5000, ge=2, description="rendered training images")
    n_test: int = Field(500, ge=2, description="rendered test images (held-out phrasings)")
    test_fraction: float = Field(0.1, gt=0, lt=1, description="folder source: held-out share")
    image_size: Literal[16, 32, 64, 128] = Field(32, description="a DCGAN size")
    captions_per_image: int = Field(5, ge=1)
    zero_shot: int = Field(5, ge=0, le=10, description="(digit, colour) pairs held out")

    @model_validator(mode="after")
    def _folder_has_path(self) -> CaptionData:
        if self.source == "folder" and self.path is None:
            raise ValueError("data.source folder needs data.path (a folder with images/).")
        return self


class TextEncoderConfig(StrictModel):
    """The joint embedding that trains phi (see gan.models.joint_embedding)."""

    embed_dim: int = Field(128, gt=0)
    width: int = Field(32, gt=0)
    word_dim: int = Field(64, gt=0)
    hidden: int = Field(128, gt=0)
    max_length: int = Field(24, gt=0)
    margin: float = Field(0.2, gt=0)
    lr: float = Field(1e-3, gt=0)
    steps: int = Field(1000, gt=0)
    batch_size: int = Field(64, ge=2)


class Text2ImageModelConfig(StrictModel):
    """The GAN's settings; defaults are the paper's (see gan.models.text2image)."""

    latent_dim: int = Field(100, gt=0)
    compressed: int = Field(128, gt=0)
    width: int = Field(64, gt=0)
    matching_aware: bool = Field(True, description="GAN-CLS")
    interpolation: float | None = Field(0.5, ge=0, le=1, description="GAN-INT's beta")
    lr: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    ema_decay: float | None = Field(0.999, ge=0, lt=1)


class Text2ImageEvaluation(StrictModel):
    reader_steps: int = Field(600, gt=0, description="attribute reader's training steps")
    reader_images: int = Field(3000, ge=10, description="rendered images it trains on")
    n_zero_shot: int = Field(200, ge=1, description="rendered images of the zero-shot pairs")
    r_candidates: int = Field(100, ge=2, description="captions per R-precision ranking")
    samples_every: int | None = Field(500, gt=0)
    batch_size: int = Field(500, gt=0)


class Text2ImageRecipe(RecipeBase):
    """Train a text encoder, then a text-conditional GAN; judge it by held-out captions."""

    task: Literal["text2image"]
    data: CaptionData = CaptionData()
    text_encoder: TextEncoderConfig = TextEncoderConfig()
    model: Text2ImageModelConfig = Text2ImageModelConfig()
    train: TrainConfig
    evaluation: Text2ImageEvaluation = Text2ImageEvaluation()


class Text2ImageTask(Task):
    """A text encoder, then a GAN-INT-CLS on its frozen embeddings."""

    schema = Text2ImageRecipe

    def prepare(self) -> None:
        d, seed = self.recipe.data, self.recipe.seed
        self.held_out = zero_shot_pairs(d.zero_shot) if d.source == "rendered" else []
        if d.source == "folder":
            pairs = load_caption_folder(d.path, d.image_size)
            order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed))
            n_test = max(1, round(len(pairs) * d.test_fraction))
            self.test, self.train_set = pairs.subset(order[:n_test]), pairs.subset(order[n_test:])
        else:
            render = dict(size=d.image_size, captions_per_image=d.captions_per_image)
            self.train_set = render_captioned_digits(
                d.n, seed=seed, exclude=self.held_out, **render
            )
            self.test = render_captioned_digits(
                d.n_test, seed=seed + 1, phrasing="test", exclude=self.held_out, **render
            )
        captions = [c for row in self.train_set.captions for c in row]
        self.vocabulary = Vocabulary.from_captions(captions)
        self.tokens = CaptionTokens(
            self.train_set, self.vocabulary, self.recipe.text_encoder.max_length
        )
        held = f", zero-shot pairs held out: {self.held_out}" if self.held_out else ""
        self.ctx.print(
            f"captioned images ({d.source}): {len(self.train_set)} train / {len(self.test)} test, "
            f"{len(captions)} captions, {len(self.vocabulary)} words{held}"
        )

    def method_names(self) -> list[str]:
        return [ENCODER, GAN]

    def build(self, name: str) -> TrainingMethod:
        r, d, words = self.recipe, self.recipe.data, self.vocabulary.words
        te = r.text_encoder
        if name == ENCODER:
            return JointEmbedding(
                words, d.image_size, 3, te.embed_dim, te.width, te.word_dim, te.hidden,
                te.max_length, te.margin, te.lr,
            )  # fmt: skip
        gan = TextToImageGAN(
            words, [row[0] for row in self.test.captions[:8]], d.image_size, 3,
            text_dim=te.embed_dim, word_dim=te.word_dim, hidden=te.hidden,
            max_length=te.max_length, seed=r.seed, **r.model.model_dump(),
        )  # fmt: skip
        gan.use_text_encoder(self.methods[ENCODER].text_encoder)
        return gan

    def train_config(self, name: str) -> TrainConfig:
        if name == GAN:
            return self.recipe.train
        te = self.recipe.text_encoder
        return self.recipe.train.model_copy(
            update={"steps": te.steps, "batch_size": te.batch_size, "eval_every": None}
        )

    def data(self, name: str, method: TrainingMethod) -> InfiniteLoader:
        return self.loader(self.tokens, self.train_config(name).batch_size, self.recipe.seed)

    def callbacks(self, name: str, method: TrainingMethod, data: Any) -> list[Callback]:
        every = self.recipe.evaluation.samples_every
        if name != GAN or every is None:
            return []
        grids = {"samples": (lambda m: m.fixed_samples(), 8)}
        return [SampleGridCallback(grids, every, self.ctx.out / "samples", self.ctx.tracker)]

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        """The encoder's retrieval, then the GAN judged on the held-out captions."""
        encoder, gan = self.methods[ENCODER], self.methods[GAN]
        encoder.eval()
        gan.eval()
        ev, seed = self.recipe.evaluation, self.recipe.seed
        test_images = self.test.images.as_floats()[0]
        captions = [row[0] for row in self.test.captions]
        keys = self.test.match_keys()
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            texts = encoder.embed_texts(captions)
            fake = torch.cat(
                [gan.sample_texts(c, generator) for c in _chunks(captions, ev.batch_size)]
            )
            real_r = r_precision(
                encoder.embed_images(test_images), texts, keys, ev.r_candidates, seed
            )
            fake_r = r_precision(encoder.embed_images(fake), texts, keys, ev.r_candidates, seed)
            extractor = build_extractor("digits")
            scorer = GenerativeScores(
                extractor, test_images, ["fid"], batch_size=ev.batch_size, seed=seed
            )
            features, logits = extractor.extract(fake, ev.batch_size)
            fid = scorer.from_features(features, logits)[0]
        metrics = {"r_precision": fake_r, "real/r_precision": real_r, "fid-digits": fid.value}
        table = [
            ("score", "generated", "real test images", "note"),
            (f"R-precision (1 of {ev.r_candidates})", f"{fake_r:.3f}", f"{real_r:.3f}",
             f"chance {1 / ev.r_candidates:.3f}"),
            ("FID-digits", f"{fid.value:.4g}", "", f"{fid.n_fake} / {fid.n_real} images"),
        ]  # fmt: skip
        digits = self.test.images.labels
        if bool((digits >= 0).all()):
            read = {
                "": (logits.argmax(1) == digits).float().mean().item(),
                "real/": (scorer.real_logits.argmax(1) == digits).float().mean().item(),
            }
            metrics.update({f"{k}digits_classifier_accuracy": v for k, v in read.items()})
            table.append(
                ("digit read by the digits classifier", f"{read['']:.3f}", f"{read['real/']:.3f}",
                 "the FID-digits net, trained on MNIST")
            )  # fmt: skip
        details: dict[str, Any] = {
            "train": self.train_records(results),
            "words": len(self.vocabulary),
            "example_captions": captions[:8],
        }
        if self.test.attributes is not None:
            self._attributes(gan, fake, metrics, table, details)
        self._grids(gan, fake, captions)
        return TaskOutput(metrics, details, table)

    def _attributes(
        self,
        gan: TextToImageGAN,
        fake: torch.Tensor,
        metrics: dict[str, float],
        table: list[tuple],
        details: dict[str, Any],
    ) -> None:
        """Attribute accuracy of the generated images, the reader's own on rendered ones, and
        the same on the zero-shot pairs."""
        ev, d, seed = self.recipe.evaluation, self.recipe.data, self.recipe.seed
        reader_data = render_captioned_digits(ev.reader_images, d.image_size, seed + 2)
        reader = train_attribute_reader(
            reader_data, ev.reader_steps, seed=seed, device=self.ctx.device
        )
        real = attribute_accuracy(reader, self.test.images.as_floats()[0], self.test.attributes)
        generated = attribute_accuracy(reader, fake, self.test.attributes)
        rows = {"generated": generated, "real": real}
        if self.held_out:
            zero = render_captioned_digits(
                ev.n_zero_shot, d.image_size, seed + 3, "test", only=self.held_out
            )
            generator = torch.Generator().manual_seed(seed + 3)
            with torch.no_grad():
                images = gan.sample_texts([row[0] for row in zero.captions], generator)
            rows["zero-shot"] = attribute_accuracy(reader, images, zero.attributes)
            path = save_image_grid(images[:64].cpu(), self.ctx.out / "plots" / "zero_shot.png", 8)
            self.ctx.log_file(path, "plots")
        for kind, scores in rows.items():
            prefix = "" if kind == "generated" else f"{kind}/"
            metrics.update({f"{prefix}attribute_accuracy/{k}": v for k, v in scores.items()})
        details["attribute_accuracy"] = rows
        for name in [*ATTRIBUTES, "all"]:
            zero = f"{rows['zero-shot'][name]:.3f}" if "zero-shot" in rows else "-"
            table.append(
                (f"attribute shown: {name}", f"{generated[name]:.3f}", f"{real[name]:.3f}",
                 f"zero-shot pairs: {zero}")
            )  # fmt: skip

    def _grids(self, gan: TextToImageGAN, fake: torch.Tensor, captions: list[str]) -> None:
        """Generated images for the first captions, GAN-INT's walk between two captions."""
        plots = self.ctx.out / "plots"
        with torch.no_grad():
            paths = [
                save_image_grid(gan.fixed_samples().cpu(), plots / "caption_rows.png", 8),
                save_image_grid(fake[:64].cpu(), plots / "held_out_captions.png", 8),
                save_image_grid(
                    gan.interpolation_grid(captions[0], captions[1]).cpu(),
                    plots / "interpolation.png",
                    8,
                ),
            ]
        (plots / "captions.txt").write_text(
            "caption_rows.png, one row per caption:\n"
            + "\n".join(gan.fixed_captions[:8])
            + f"\n\ninterpolation.png, from\n{captions[0]}\nto\n{captions[1]}\n"
        )
        for path in [*paths, plots / "captions.txt"]:
            self.ctx.log_file(path, "plots")


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
