"""The ``pix2pix`` task: paired image-to-image translation (Isola et al., CVPR 2017).

Trains :class:`gan.models.Pix2Pix` (U-Net G, PatchGAN D on ``cat(A, B)``,
cGAN + 100 L1) through :class:`gan.Trainer` on aligned pairs — by default
``edges2digits`` (edge maps of the embedded real MNIST digits -> the digits),
or a user's ``A/`` + ``B/`` folders — and, with ``baselines: true``, the
paper's L1-only U-Net from the same seed for the same steps. Sample grids
(input | output | target) of fixed held-out pairs are written while training
(``OUT/samples/``, MLflow ``samples/``); the report gives mean L1 and SSIM on
the held-out pairs for each model beside trivial predictors (the mean
training target; A itself when A and B have the same channels), the U-Net
depth and the PatchGAN's receptive field, and writes ``OUT/plots/test_grid.png``
(input | pix2pix | L1 U-Net | target). Checkpoints: ``OUT/checkpoints/pix2pix.ckpt``
and ``l1-unet.ckpt``; ``--resume`` continues them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from counterfeit.gan.callbacks import Callback, SampleGridCallback
from counterfeit.gan.data.loaders import InfiniteLoader
from counterfeit.gan.data.paired import PairedImages, edges2digits, load_paired_folder
from counterfeit.gan.errors import DataError
from counterfeit.gan.models.pix2pix import Pix2Pix, paired_scores, triplets
from counterfeit.gan.plots import save_image_grid
from counterfeit.gan.train import TrainResult
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.schema import RecipeBase, StrictModel, TrainConfig
from counterfeit.recipes.tasks.base import Task

METHODS = {"pix2pix": False, "l1-unet": True}  # name -> l1_only
LABELS = {"pix2pix": "Pix2Pix (cGAN + 100 L1)", "l1-unet": "L1-only U-Net"}


class PairedDataConfig(StrictModel):
    """Aligned pairs: the embedded ``edges2digits`` or a user's ``A/`` + ``B/`` folders.

    ``folder``: ``path/A/NAME.png`` pairs with ``path/B/NAME.png`` (names matched without
    extension). With ``path/train/{A,B}`` and ``path/test/{A,B}`` those are the splits;
    otherwise ``test_fraction`` of the pairs (fixed seed) is held out.
    """

    source: Literal["edges2digits", "folder"] = "edges2digits"
    edges: Literal["canny", "skeleton"] = Field(
        "canny", description="edges2digits: Canny outlines or one-pixel stroke skeletons"
    )
    pad: int = Field(2, ge=0, le=64, description="edges2digits: zero pixels per side (28 -> 32)")
    path: Path | None = Field(None, description="folder: the root holding A/ and B/")
    image_size: int = Field(256, ge=8, le=1024, description="folder: images resized to this")
    channels_a: Literal[1, 3] = 3
    channels_b: Literal[1, 3] = 3
    test_fraction: float = Field(0.1, gt=0, lt=1)
    n_train: int | None = Field(None, gt=0, description="use at most this many training pairs")
    n_test: int | None = Field(None, gt=0, description="use at most this many held-out pairs")

    @model_validator(mode="after")
    def _consistent(self) -> PairedDataConfig:
        if self.source == "folder" and self.path is None:
            raise ValueError("data.path is required when data.source is 'folder'")
        size = self.model_size
        if size & (size - 1):
            key = "data.pad (28 + 2 * pad)" if self.source == "edges2digits" else "data.image_size"
            raise ValueError(
                f"the U-Net needs a power-of-two image size; {key} gives {size} (e.g. 32, 64, 256)"
            )
        return self

    @property
    def model_size(self) -> int:
        return 28 + 2 * self.pad if self.source == "edges2digits" else self.image_size


class Pix2PixModelConfig(StrictModel):
    """pix2pix settings; defaults are the paper's (see gan.models.pix2pix)."""

    g_width: int = Field(64, gt=0, description="U-Net filters at the outermost level")
    d_width: int = Field(64, gt=0, description="PatchGAN first-layer filters")
    norm: Literal["batch", "instance"] = "batch"
    dropout: float = Field(0.5, ge=0, lt=1)
    depth: int | None = Field(None, ge=2, description="U-Net levels (None: log2(image size))")
    d_layers: int | None = Field(None, ge=1, description="None: by image size (3 = 70x70)")
    lambda_l1: float = Field(100.0, ge=0)
    gan_loss: Literal["non-saturating", "minimax", "least-squares", "hinge"] = "non-saturating"
    lr: float = Field(2e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    lr_schedule: Literal["constant", "linear-decay"] = "constant"
    decay_fraction: float = Field(
        0.5, ge=0, le=1, description="linear-decay: constant for this fraction, then to 0"
    )


class Pix2PixEvaluation(StrictModel):
    """How the translations are shown and scored."""

    samples_every: int | None = Field(250, gt=0, description="steps between sample grids")
    n_grid: int = Field(8, ge=1, le=64, description="held-out pairs in the grids")
    batch_size: int = Field(250, gt=0)


class Pix2PixRecipe(RecipeBase):
    """Train pix2pix (and the L1-only U-Net), score L1 / SSIM on held-out pairs, draw grids."""

    task: Literal["pix2pix"]
    data: PairedDataConfig = PairedDataConfig()
    model: Pix2PixModelConfig = Pix2PixModelConfig()
    train: TrainConfig
    baselines: bool = Field(True, description="also train the L1-only U-Net (same seed, steps)")
    evaluation: Pix2PixEvaluation = Pix2PixEvaluation()


def load_pairs(data: PairedDataConfig) -> tuple[PairedImages, PairedImages]:
    """The (train, held-out) pairs the recipe names."""
    if data.source == "edges2digits":
        train = edges2digits("train", data.edges, data.pad)
        test = edges2digits("test", data.edges, data.pad)
    else:
        assert data.path is not None
        root = data.path.expanduser()
        args = (data.image_size, data.channels_a, data.channels_b)
        if (root / "train").is_dir():
            if not (root / "test").is_dir():
                raise DataError(
                    f"{root} has train/ but no test/ folder; add test/A and test/B, or put the "
                    "pairs in A/ and B/ directly to hold out data.test_fraction of them."
                )
            train = load_paired_folder(root / "train", *args)
            test = load_paired_folder(root / "test", *args)
        else:
            train, test = load_paired_folder(root, *args).split(data.test_fraction, seed=0)
    return train.take(data.n_train, seed=0), test.take(data.n_test, seed=0)


def grid_indices(n: int, k: int) -> torch.Tensor:
    """``k`` indices spread evenly over ``n`` items (so the grids show varied pairs)."""
    return torch.linspace(0, n - 1, min(k, n)).round().long().unique()


class Pix2PixTask(Task):
    """Paired pix2pix translation (Isola et al. 2017) beside an L1-only U-Net, L1 / SSIM."""

    schema = Pix2PixRecipe
    recipe: Pix2PixRecipe

    def prepare(self) -> None:
        r = self.recipe
        self.train_pairs, self.test_pairs = train, test = load_pairs(r.data)
        self.ctx.print(
            f"{train.name}: {len(train)} train / {len(test)} held-out pairs, "
            f"A {'x'.join(map(str, train.shape_a))} -> B {'x'.join(map(str, train.shape_b))}"
        )
        self.fixed_a, self.fixed_b = test.get_batch(grid_indices(len(test), r.evaluation.n_grid))

    def method_names(self) -> list[str]:
        return ["pix2pix", "l1-unet"] if self.recipe.baselines else ["pix2pix"]

    def build(self, name: str) -> Pix2Pix:
        m, train = self.recipe.model, self.train_pairs
        method = Pix2Pix(
            image_size=self.recipe.data.model_size,
            in_channels=train.shape_a[0],
            out_channels=train.shape_b[0],
            # the schema names the schedule; the method takes only its decay fraction
            decay_fraction=m.decay_fraction if m.lr_schedule == "linear-decay" else None,
            l1_only=METHODS[name],
            **m.model_dump(exclude={"lr_schedule", "decay_fraction"}),
        )
        if name == "pix2pix":
            self.ctx.print(_architecture_line(method, self.recipe))
        return method

    def data(self, name: str, method: Pix2Pix) -> InfiniteLoader:
        return self.loader(self.train_pairs, self.recipe.train.batch_size, self.recipe.seed)

    def callbacks(self, name: str, method: Pix2Pix, data: Any) -> list[Callback]:
        fixed_a, fixed_b = self.fixed_a, self.fixed_b

        def grid(m: Pix2Pix) -> torch.Tensor:
            return triplets(fixed_a, m.translate(fixed_a).float(), fixed_b)

        every = self.recipe.evaluation.samples_every or 0
        return [
            SampleGridCallback({name: (grid, 3)}, every, self.ctx.out / "samples", self.ctx.tracker)
        ]

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        """L1 / SSIM on the held-out pairs beside trivial predictors; the test grid."""
        ctx, recipe, methods = self.ctx, self.recipe, self.methods
        train, test = self.train_pairs, self.test_pairs
        fixed_a, fixed_b = self.fixed_a, self.fixed_b
        ev = recipe.evaluation
        a, b = test.get_batch(torch.arange(len(test)))
        scores: dict[str, dict[str, float]] = {}
        for name, method in methods.items():
            method.eval()
            scores[name] = paired_scores(method, a, b, ev.batch_size)
        mean_target = train.get_batch(torch.arange(len(train)))[1].mean(0, keepdim=True)
        trivial = {"mean training target": lambda x: mean_target.expand(x.shape[0], -1, -1, -1)}
        if train.shape_a == train.shape_b:
            trivial["identity (A as B)"] = lambda x: x
        for label, fn in trivial.items():
            scores[label] = paired_scores(None, a, b, ev.batch_size, predict=fn)

        metrics: dict[str, float] = {}
        for name, values in scores.items():
            key = name.replace(" ", "_").replace("(", "").replace(")", "")
            metrics.update({f"{key}/{k}": v for k, v in values.items()})
        pix = methods["pix2pix"]
        table = [
            ("model", "held-out L1 (lower better)", "SSIM (higher better)", "steps", "train s")
        ]
        for name, values in scores.items():
            result = results.get(name)
            table.append(
                (
                    LABELS.get(name, name),
                    f"{values['l1']:.4f}",
                    f"{values['ssim']:.4f}",
                    str(result.steps) if result else "-",
                    f"{result.wall_time:.0f}" if result else "-",
                )
            )
        details = {
            "scores": scores,
            "n_held_out_pairs": len(test),
            "n_train_pairs": len(train),
            "data": train.name,
            "architecture": pix.describe(),
            "unet_depth": pix.depth,
            "patchgan_receptive_field": pix.receptive_field,
            "batch_size": recipe.train.batch_size,
            "notes": [
                f"BatchNorm at batch {recipe.train.batch_size}; the paper trains with batch 1, "
                "where BatchNorm acts as instance normalisation.",
                "Scores use G in eval mode (running BatchNorm statistics, no dropout); the paper "
                "keeps dropout and test-batch statistics at test time.",
                f"PatchGAN receptive field {pix.receptive_field} px at {recipe.data.model_size} px "
                "(the paper: 70x70 at 256 px).",
            ],
            "train": self.train_records(results),
        }
        with torch.no_grad():
            columns = [fixed_a]
            columns += [m.translate(fixed_a).float() for m in methods.values()]
            columns.append(fixed_b)
            path = save_image_grid(
                triplets(*columns), ctx.out / "plots" / "test_grid.png", len(columns)
            )
        ctx.log_file(path, "plots")
        details["grid"] = {"path": str(path), "columns": ["input", *methods, "target"]}
        return TaskOutput(metrics, details, table)


def _architecture_line(method: Pix2Pix, recipe: Pix2PixRecipe) -> str:
    size, batch = recipe.data.model_size, recipe.train.batch_size
    field = method.receptive_field
    note = "" if field == 70 else " (the paper's 70x70 PatchGAN is for 256 px images)"
    return (
        f"U-Net depth {method.depth} ({size} px -> {size >> method.depth} px bottleneck"
        f"{', unet_256' if method.depth == 8 else ''}), dropout in decoder levels "
        f"{method.generator.dropout_levels}; PatchGAN {method.d_layers} strided layer(s), "
        f"receptive field {field}x{field} px{note}; batch {batch} with BatchNorm "
        "(the paper: batch 1)"
    )
