"""The ``srgan`` task: SRResNet-MSE pre-training, then SRGAN, on photos that ship in wheels.

Follows Ledig et al. (CVPR 2017): phase one trains SRResNet on the pixel MSE for
``train.steps`` steps (checkpoint ``OUT/checkpoints/srresnet.ckpt``); phase two
continues the same generator as SRGAN for ``gan.steps`` steps (``srgan.ckpt``),
content loss plus 1e-3 times the adversarial loss, the learning rate divided by
ten half-way. Both go through :class:`gan.Trainer` (checkpoint/resume of the
nets, optimizers and schedulers), with sample grids of held-out crops (rows:
bicubic | output | HR) in ``OUT/samples/``. The report gives PSNR/SSIM (Y
channel, 4 px border cropped: the paper's protocol) of SRResNet, SRGAN and
bicubic up-sampling on the held-out photos (astronaut, coffee), which preset ran
and which content loss; the upscaled held-out photos go to ``OUT/plots/``.

Presets (``model.preset``; explicit values win):

* ``paper``: 16 residual blocks, 96 px HR crops, Adam 1e-4 (beta1 0.9) for both
  phases; the paper's schedule is ``train.steps=1000000`` and ``gan.steps=200000``
  (a GPU job) with batch 16.
* ``small`` (2 CPU cores): 4 blocks, 64 px crops, lr 2e-4 for pre-training, and
  the global bicubic skip (a deviation in the manner of VDSR, Kim et al. 2016;
  see :mod:`gan.nets.srgan`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from pydantic import Field, model_validator

from counterfeit.gan.callbacks import Callback, EvalCallback, SampleGridCallback
from counterfeit.gan.data.loaders import InfiniteLoader
from counterfeit.gan.data.photos import (
    PHOTO_NAMES,
    TEST_PHOTOS,
    TRAIN_PHOTOS,
    bicubic_upsample,
    downsample,
    photo_crops,
    photo_tensor,
    random_flips,
)
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.models.srgan import SRGAN, evaluate_photos
from counterfeit.gan.nets.srgan import find_vgg19_weights
from counterfeit.gan.train import TrainResult
from counterfeit.recipes.context import TaskOutput
from counterfeit.recipes.schema import RecipeBase, StrictModel, TrainConfig
from counterfeit.recipes.tasks.base import Task

PhotoName = Literal[PHOTO_NAMES]  # type: ignore[valid-type]

PRESETS: dict[str, dict] = {
    "paper": {"blocks": 16, "crop_size": 96, "lr": 1e-4, "gan_lr": 1e-4, "bicubic_skip": False},
    "small": {"blocks": 4, "crop_size": 64, "lr": 2e-4, "gan_lr": 1e-4, "bicubic_skip": True},
}


class SRGANData(StrictModel):
    """Training crops and held-out test photos (see gan.data.photos)."""

    train_photos: list[PhotoName] = Field(default_factory=lambda: list(TRAIN_PHOTOS), min_length=1)
    test_photos: list[PhotoName] = Field(default_factory=lambda: list(TEST_PHOTOS), min_length=1)
    crop_size: int | None = Field(None, ge=16, description="HR crop size (None: the preset's)")
    crop_stride: int | None = Field(None, gt=0, description="crop grid step (None: crop / 2)")
    scale: Literal[2, 4, 8] = 4

    @model_validator(mode="after")
    def _held_out(self) -> SRGANData:
        both = sorted(set(self.train_photos) & set(self.test_photos))
        if both:
            raise ValueError(f"photos used for both training and test: {', '.join(both)}")
        return self


class SRGANModelConfig(StrictModel):
    """Network and pre-training settings; None takes the preset's value."""

    preset: Literal["paper", "small"] = "small"
    blocks: int | None = Field(None, gt=0)
    width: int = Field(64, gt=0)
    bicubic_skip: bool | None = None
    d_width: int = Field(64, gt=0)
    lr: float | None = Field(None, gt=0, description="Adam lr of SRResNet-MSE pre-training")
    beta1: float = Field(0.9, ge=0, lt=1)


class SRGANPhase(StrictModel):
    """The SRGAN phase (after ``train.steps`` of SRResNet-MSE pre-training)."""

    steps: int = Field(0, ge=0, description="SRGAN steps (0: stop after SRResNet)")
    lr: float | None = Field(None, gt=0, description="Adam lr (None: the preset's, 1e-4)")
    lr_decay_at: float | None = Field(0.5, gt=0, le=1, description="fraction of the phase")
    lr_decay_factor: float = Field(0.1, gt=0, le=1)
    adv_weight: float = Field(1e-3, ge=0)
    content_loss: Literal["auto", "vgg54", "mse"] = Field(
        "auto", description="auto: VGG54 when VGG19 weights are found locally, else pixel MSE"
    )
    vgg_weights: Path | None = None


class SRGANEvaluation(StrictModel):
    samples_every: int | None = Field(250, gt=0, description="steps between sample grids")
    sample_crops: int = Field(4, ge=1, le=16, description="held-out crops per grid")
    test_crop: int | None = Field(
        None, ge=16, description="score a centre crop of each held-out photo (None: whole photos)"
    )


class SRGANRecipe(RecipeBase):
    """SRResNet-MSE pre-training then SRGAN on bundled photos; PSNR/SSIM vs bicubic."""

    task: Literal["srgan"]
    data: SRGANData = SRGANData()
    model: SRGANModelConfig = SRGANModelConfig()
    train: TrainConfig
    gan: SRGANPhase = SRGANPhase()
    evaluation: SRGANEvaluation = SRGANEvaluation()


def resolve_content_loss(phase: SRGANPhase) -> tuple[str, str | None]:
    """(``"vgg54"`` or ``"mse"``, weights path) for the GAN phase; never downloads.

    Raises:
        ConfigError: ``vgg54`` was asked for and no weights are found.
    """
    weights = find_vgg19_weights(phase.vgg_weights)
    if phase.content_loss == "mse":
        return "mse", None
    if weights is None:
        if phase.content_loss == "vgg54":
            raise ConfigError(
                "gan.content_loss is vgg54 but no VGG19 weights were found: set gan.vgg_weights "
                "or put vgg19-dcbb9e9d.pth under torch.hub.get_dir()/checkpoints "
                "(nothing is downloaded), or use gan.content_loss=mse."
            )
        return "mse", None
    return "vgg54", str(weights)


def build_srgan(recipe: SRGANRecipe) -> SRGAN:
    """The method the recipe describes, preset values filled in. Written out: the recipe's
    names (``beta1``, ``gan.lr``, ``gan.content_loss``) are not the method's, and the
    YAML files use them."""
    preset = PRESETS[recipe.model.preset]
    m, g = recipe.model, recipe.gan
    content, weights = resolve_content_loss(g)
    return SRGAN(
        scale=recipe.data.scale,
        blocks=m.blocks or preset["blocks"],
        width=m.width,
        bicubic_skip=preset["bicubic_skip"] if m.bicubic_skip is None else m.bicubic_skip,
        crop_size=crop_size(recipe),
        d_width=m.d_width,
        lr=m.lr or preset["lr"],
        gan_lr=g.lr or preset["gan_lr"],
        betas=(m.beta1, 0.999),
        adv_weight=g.adv_weight,
        content=content,  # type: ignore[arg-type]
        vgg_weights=weights,
        lr_decay_at=g.lr_decay_at,
        lr_decay_factor=g.lr_decay_factor,
    )


def crop_size(recipe: SRGANRecipe) -> int:
    return recipe.data.crop_size or PRESETS[recipe.model.preset]["crop_size"]


def test_photos(recipe: SRGANRecipe) -> dict[str, torch.Tensor]:
    """The held-out photos, (1, 3, H, W) in [0, 1], cropped to multiples of the scale
    (and to a centre crop of ``evaluation.test_crop`` px when set)."""
    photos = {name: photo_tensor(name, recipe.data.scale) for name in recipe.data.test_photos}
    crop = recipe.evaluation.test_crop
    if crop is None:
        return photos
    crop -= crop % recipe.data.scale
    out = {}
    for name, image in photos.items():
        h, w = image.shape[-2:]
        top, left = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
        out[name] = image[..., top : top + crop, left : left + crop].contiguous()
    return out


def sample_crops(photos: dict[str, torch.Tensor], n: int, size: int) -> torch.Tensor:
    """``n`` fixed ``size`` px crops spread over the held-out photos (for grids)."""
    crops = []
    names = list(photos)
    for i in range(n):
        image = photos[names[i % len(names)]]
        h, w = image.shape[-2:]
        k = i // len(names)
        top = min(h - size, (h // 3) + k * size // 2)
        left = min(w - size, (w // 3) + k * size)
        crops.append(image[0, :, top : top + size, left : left + size])
    return torch.stack(crops)


def comparison_grid(method: SRGAN, hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Rows of (bicubic | output | HR) for HR crops ``hr``: 3 n images, 3 per row."""
    lr = downsample(hr, scale)
    sr = method.upscale(lr).float().cpu()
    rows = torch.stack([bicubic_upsample(lr, scale), sr, hr], dim=1)
    return rows.reshape(-1, *hr.shape[1:])


class SRGANTask(Task):
    """SRResNet-MSE then SRGAN x4 super-resolution (Ledig et al. 2017), PSNR/SSIM vs bicubic.

    The two phases train one method in turn: ``srresnet`` for ``train.steps``, then
    ``srgan`` for ``gan.steps`` (when not 0) from where pre-training ended.
    """

    schema = SRGANRecipe
    recipe: SRGANRecipe

    def prepare(self) -> None:
        r = self.recipe
        self.scale, self.crop = r.data.scale, crop_size(r)
        self.crops = photo_crops(r.data.train_photos, self.crop, r.data.crop_stride)
        self.photos = test_photos(r)
        size = min(128, *(min(p.shape[-2:]) for p in self.photos.values()))  # display crops
        self.grid_hr = sample_crops(
            self.photos, r.evaluation.sample_crops, size - size % self.scale
        )
        self.scores: dict[str, dict[str, float]] = {}

    def method_names(self) -> list[str]:
        return ["srresnet", "srgan"] if self.recipe.gan.steps else ["srresnet"]

    def seed(self, name: str) -> None:
        if name == "srresnet":  # the GAN phase continues the same method
            super().seed(name)

    def build(self, name: str) -> SRGAN:
        r = self.recipe
        if name == "srgan":
            method = self.methods["srresnet"]
            method.set_phase("gan")
            return method
        method = build_srgan(r)
        self.ctx.print(
            f"SRGAN ({r.model.preset} preset): {len(self.crops)} HR crops of {self.crop} px "
            f"from {len(r.data.train_photos)} photos, x{self.scale}; held out: "
            f"{', '.join(self.photos)}; GAN-phase content loss: {method.content_loss_name}"
        )
        return method

    def train_config(self, name: str) -> TrainConfig:
        if name == "srresnet":
            return self.recipe.train
        return self.recipe.train.model_copy(update={"steps": self.recipe.gan.steps})

    def data(self, name: str, method: SRGAN) -> InfiniteLoader:
        r = self.recipe
        seed = r.seed + 1 if name == "srgan" else r.seed
        return self.loader(self.crops, r.train.batch_size, seed, transform=random_flips)

    def callbacks(self, name: str, method: SRGAN, data: Any) -> list[Callback]:
        r, photos, scale, grid_hr = self.recipe, self.photos, self.scale, self.grid_hr
        callbacks: list[Callback] = []
        if r.evaluation.samples_every is not None:
            grid = {f"{name}_samples": (lambda m: comparison_grid(m, grid_hr, scale), 3)}
            out = self.ctx.out / "samples"
            callbacks.append(
                SampleGridCallback(grid, r.evaluation.samples_every, out, self.ctx.tracker)
            )
        if r.train.eval_every:

            def evaluate(m: SRGAN) -> dict[str, float]:
                scores = evaluate_photos(m.upscale, photos, scale)["model"]
                return {k: scores[k] for k in ("psnr", "ssim")}

            callbacks.append(EvalCallback(evaluate, r.train.eval_every, prefix="eval/"))
        return callbacks

    def fit(self, name: str, method: SRGAN) -> TrainResult:
        """Train one phase, then (rank 0) score and write the held-out photos."""
        result = super().fit(name, method)
        if name == "srresnet":
            self.srresnet_state = copy.deepcopy(method.generator.state_dict())
        if self.ctx.dist.is_main:
            method.eval()
            scores = evaluate_photos(method.upscale, self.photos, self.scale)
            if name == "srresnet":
                self.scores["bicubic"] = scores["bicubic"]
            self.scores[name] = scores["model"]
            _write_photos(self.ctx, method, self.photos, self.scale, name, name == "srresnet")
        return result

    def report(self, results: dict[str, TrainResult]) -> TaskOutput:
        method: SRGAN = self.methods["srresnet"]  # type: ignore[assignment]
        _comparison_plot(self.ctx, method, self.srresnet_state, self.grid_hr, self.scale)
        return _report(self.ctx, self.recipe, method, results, self.scores, len(self.crops))


def _save_png(image: torch.Tensor, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(np.ascontiguousarray(array)).save(path)
    return path


def _write_photos(ctx, method: SRGAN, photos, scale: int, name: str, with_bicubic=False) -> None:
    """OUT/plots/PHOTO_NAME.png: the held-out photos upscaled from their bicubic x1/scale."""
    for photo, hr in photos.items():
        lr = downsample(hr, scale)
        images = {name: method.upscale(lr)[0].float().cpu()}
        if with_bicubic:
            images["bicubic"] = bicubic_upsample(lr, scale)[0]
            images["lr"] = lr[0]
        for kind, image in images.items():
            ctx.log_file(_save_png(image, ctx.out / "plots" / f"{photo}_{kind}.png"), "plots")


def _comparison_plot(ctx, method: SRGAN, srresnet_state, grid_hr, scale: int) -> None:
    """OUT/plots/comparison.png: rows of bicubic | SRResNet | (SRGAN |) HR."""
    from counterfeit.gan.plots import save_image_grid

    lr = downsample(grid_hr, scale)
    columns = [bicubic_upsample(lr, scale)]
    current = copy.deepcopy(method.generator.state_dict())
    method.generator.load_state_dict(srresnet_state)
    columns.append(method.upscale(lr).float().cpu())
    method.generator.load_state_dict(current)
    if method.phase == "gan":
        columns.append(method.upscale(lr).float().cpu())
    columns.append(grid_hr)
    grid = torch.stack(columns, 1).reshape(-1, *grid_hr.shape[1:])
    path = save_image_grid(grid, ctx.out / "plots" / "comparison.png", len(columns))
    ctx.log_file(path, "plots")


def _report(ctx, recipe, method: SRGAN, results, scores, n_crops: int) -> TaskOutput:
    preset = recipe.model.preset
    content = method.content_loss_name if "srgan" in results else "n/a (no SRGAN phase)"
    names = list(recipe.data.test_photos)
    header = ("method", "PSNR (dB)", "SSIM", "sharpness", *tuple(f"{n} PSNR/SSIM" for n in names))
    table = [header]
    labels = {"bicubic": "bicubic", "srresnet": "SRResNet-MSE", "srgan": "SRGAN"}
    metrics: dict[str, float] = {}
    for key in ("bicubic", "srresnet", "srgan"):
        if key not in scores:
            continue
        s = scores[key]
        table.append(
            (
                labels[key],
                f"{s['psnr']:.2f}",
                f"{s['ssim']:.4f}",
                f"{s['sharpness']:.3f}",
                *(f"{s[f'psnr/{n}']:.2f} / {s[f'ssim/{n}']:.4f}" for n in names),
            )
        )
        metrics.update({f"{key}/{k}": v for k, v in s.items()})
    ctx.print(
        f"preset: {preset}; GAN-phase content loss: {content}; PSNR/SSIM on Y (BT.601), "
        f"{recipe.data.scale} px border cropped; sharpness = gradient energy / HR's"
    )
    details = {
        "preset": preset,
        "content_loss": content,
        "scale": recipe.data.scale,
        "train_crops": n_crops,
        "test_photos": names,
        "scores": scores,
        "phases": {
            name: {
                **ctx.train_record(name, r),
                "history": [{"step": s, "values": v} for s, v in r.evaluations],
            }
            for name, r in results.items()
        },
        "protocol": "PSNR/SSIM on Y (ITU-R BT.601) of 8-bit images, scale-px border cropped "
        "(Ledig et al. 2017, Sec. 3.1); LR by antialiased bicubic down-sampling (torch)",
    }
    return TaskOutput(metrics, details, table)
