"""SRResNet and SRGAN (Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network", CVPR 2017) as one :class:`gan.TrainingMethod` with a phase switch.

* phase ``"mse"``: SRResNet-MSE, the generator alone trained on the pixel MSE
  (Sec. 3.2.2; the paper's SRResNet, also SRGAN's initialisation);
* phase ``"gan"``: SRGAN, the generator trained on ``content + 1e-3 * adversarial``
  (Eq. 3), the adversarial term -log D(G(x)) (Eq. 6, the non-saturating loss of
  :mod:`gan.losses`), the discriminator on the usual cross-entropy (Eq. 2); one D
  then one G update per step. The content loss is VGG54 (Eq. 5,
  :class:`gan.nets.srgan.VGGContentLoss`) when local VGG19 weights are given,
  otherwise the pixel MSE (the paper's SRGAN-MSE variant, Table 1).

Switch with :meth:`SRGAN.set_phase` between two :class:`gan.Trainer` runs; each
phase makes its own optimizers (Adam, beta1 0.9, as in the paper), and
:meth:`configure_schedulers` multiplies the learning rate by ``lr_decay_factor``
after ``lr_decay_at`` of a GAN phase (the paper: 1e5 steps at 1e-4, then 1e5 at
1e-5).

A step takes one batch ``(hr, labels)`` of HR crops in [0, 1]; the LR inputs are
made from them inside the step by bicubic down-sampling
(:func:`gan.data.photos.downsample`), so the degradation lives with the model.
The pixel MSE is measured in the paper's [-1, 1] HR scaling (4x the MSE in
[0, 1] units). Deviations: see :mod:`gan.nets.srgan` (the bicubic skip of the
``small`` preset) and :mod:`gan.data.photos` (the data).

Evaluation follows the paper's protocol (Sec. 3.1): PSNR [dB] and SSIM on the
luminance Y (ITU-R BT.601, Y in [16, 235]) of 8-bit images, with ``scale``
border pixels cropped on every side; computed with torchmetrics (SSIM: 11x11
Gaussian window, sigma 1.5).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F

from counterfeit.gan.data.photos import bicubic_upsample, check_images, downsample
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.losses import get_loss
from counterfeit.gan.method import StepContext, TrainingMethod, frozen
from counterfeit.gan.models._common import split_batch
from counterfeit.gan.nets.srgan import (
    SRGANDiscriminator,
    SRResNet,
    VGGContentLoss,
    build_vgg54_loss,
    find_vgg19_weights,
)
from counterfeit.gan.runtime import follows_input_device, model_mode

Phase = Literal["mse", "gan"]
ContentLoss = Literal["mse", "vgg54"]


class SRGAN(TrainingMethod):
    """SRResNet-MSE pre-training, then SRGAN (see the module docstring).

    Args:
        scale: up-sampling factor (4).
        blocks, width: the generator's residual blocks and feature maps (16, 64).
        bicubic_skip: the global bicubic residual (a deviation; ``small`` preset).
        crop_size: HR training crop size (96); sets the discriminator's dense layer.
        d_width: the discriminator's first width (64).
        phase: ``"mse"`` or ``"gan"``.
        lr: Adam's learning rate for the MSE phase (1e-4); ``gan_lr`` for the GAN
            phase (None: ``lr``).
        betas: Adam's betas ((0.9, 0.999)).
        adv_weight: weight of the adversarial loss (1e-3).
        content: ``"vgg54"`` (needs ``vgg_weights``) or ``"mse"``.
        vgg_weights: a local VGG19 state_dict file (see :func:`gan.nets.srgan.vgg54_features`).
        lr_decay_at: fraction of a GAN phase after which the learning rate is multiplied
            by ``lr_decay_factor`` (0.5 and 0.1: the paper); None: constant.
    """

    def __init__(
        self,
        scale: int = 4,
        blocks: int = 16,
        width: int = 64,
        bicubic_skip: bool = False,
        crop_size: int = 96,
        d_width: int = 64,
        phase: Phase = "mse",
        lr: float = 1e-4,
        gan_lr: float | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        adv_weight: float = 1e-3,
        content: ContentLoss = "mse",
        vgg_weights: str | None = None,
        lr_decay_at: float | None = 0.5,
        lr_decay_factor: float = 0.1,
    ) -> None:
        super().__init__()
        if lr <= 0 or (gan_lr is not None and gan_lr <= 0) or adv_weight < 0:
            raise ConfigError(
                f"SRGAN needs lr > 0, gan_lr > 0 and adv_weight >= 0; got lr={lr}, "
                f"gan_lr={gan_lr}, adv_weight={adv_weight}."
            )
        if content not in ("mse", "vgg54"):
            raise ConfigError(f"unknown content loss '{content}'; use 'vgg54' or 'mse'.")
        if content == "vgg54" and find_vgg19_weights(vgg_weights) is None:
            raise ConfigError(
                "the vgg54 content loss needs local VGG19 weights: pass vgg_weights or put "
                "vgg19-dcbb9e9d.pth under torch.hub.get_dir()/checkpoints (nothing is downloaded)."
            )
        if crop_size % scale:
            raise ConfigError(f"crop_size {crop_size} must divide by the scale {scale}.")
        if lr_decay_at is not None and not 0 < lr_decay_at <= 1:
            raise ConfigError(f"lr_decay_at is a fraction in (0, 1]; got {lr_decay_at}.")
        self.save_hyperparameters()
        self.scale = scale
        self.crop_size = crop_size
        self.lr = lr
        self.gan_lr = gan_lr if gan_lr is not None else lr
        self.betas = tuple(betas)
        self.adv_weight = adv_weight
        self.content = content
        self.vgg_weights = vgg_weights
        self.lr_decay_at = lr_decay_at
        self.lr_decay_factor = lr_decay_factor
        self.generator = SRResNet(blocks, width, scale, 3, bicubic_skip)
        self.discriminator = SRGANDiscriminator(crop_size, 3, d_width)
        self.adversarial = get_loss("non-saturating")
        self._vgg: list[VGGContentLoss] = []  # not a submodule: kept out of checkpoints
        self.phase: Phase = "mse"
        self.set_phase(phase)

    # -- phases ------------------------------------------------------------------

    def set_phase(self, phase: Phase) -> None:
        """Switch between SRResNet-MSE pre-training (``"mse"``) and SRGAN (``"gan"``).

        Takes effect at the next :meth:`configure_optimizers` (the next ``Trainer.fit``).
        :attr:`hparams` records it, so a method rebuilt from a checkpoint starts in it.
        """
        if phase not in ("mse", "gan"):
            raise ConfigError(f"unknown SRGAN phase '{phase}'; use 'mse' or 'gan'.")
        self.phase = phase
        self.hparams["phase"] = phase

    @property
    def progress_metrics(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("mse",) if self.phase == "mse" else ("content", "g_adv", "d_loss")

    @property
    def content_loss_name(self) -> str:
        """What the GAN phase's content loss is, in words (for summaries)."""
        if self.content == "vgg54":
            return "VGG54 (VGG19 conv5_4 features, rescaled by 1/12.75)"
        return "pixel MSE (no local VGG19 weights)"

    # -- inference ---------------------------------------------------------------

    @torch.no_grad()
    @follows_input_device
    def upscale(self, lr: torch.Tensor) -> torch.Tensor:
        """Super-resolve LR images (N, 3, h, w) in [0, 1]; returns (N, 3, s h, s w) in [0, 1]."""
        check_images(lr, "low-resolution images", 1)
        with model_mode(self.generator, False):
            return self.generator(lr).clamp(0, 1)

    # -- training ----------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        g = torch.optim.Adam(self.generator.parameters(), lr=self.lr, betas=self.betas)
        if self.phase == "mse":
            return {"g": g}
        for group in g.param_groups:
            group["lr"] = self.gan_lr
        d = torch.optim.Adam(self.discriminator.parameters(), lr=self.gan_lr, betas=self.betas)
        return {"g": g, "d": d}

    def configure_schedulers(
        self, optimizers: dict[str, torch.optim.Optimizer], total_steps: int
    ) -> dict[str, Any]:
        if self.phase == "mse" or self.lr_decay_at is None:
            return {}
        boundary = round(self.lr_decay_at * total_steps)
        factor = self.lr_decay_factor

        def schedule(step: int) -> float:
            return 1.0 if step < boundary else factor

        return {
            name: torch.optim.lr_scheduler.LambdaLR(opt, schedule)
            for name, opt in optimizers.items()
        }

    def content_loss_fn(self, device: torch.device) -> VGGContentLoss | None:
        """The VGG54 loss on ``device`` (built on first use), or None for the pixel MSE."""
        if self.content != "vgg54":
            return None
        if not self._vgg:
            self._vgg.append(build_vgg54_loss(find_vgg19_weights(self.vgg_weights)))  # type: ignore[arg-type]
        self._vgg[0].to(device)
        return self._vgg[0]

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        hr, _ = split_batch(batch)
        lr = downsample(hr, self.scale)
        target = hr * 2 - 1
        g, opt_g = self.generator, ctx.optimizers["g"]
        if self.phase == "mse":
            with ctx.autocast():
                loss = F.mse_loss(g.forward_signed(lr).float(), target)
            opt_g.zero_grad(set_to_none=True)
            ctx.backward(loss)
            ctx.optimizer_step(opt_g)
            return {"mse": loss.detach()}
        d, opt_d = self.discriminator, ctx.optimizers["d"]
        vgg = self.content_loss_fn(hr.device)
        with ctx.autocast():
            signed = g.forward_signed(lr)
            sr = (signed + 1) / 2
            d_real, d_fake = d(hr), d(sr.detach())
            d_loss = self.adversarial.d(d_real, d_fake)
        opt_d.zero_grad(set_to_none=True)
        ctx.backward(d_loss)
        ctx.optimizer_step(opt_d)
        with frozen(d):
            with ctx.autocast():
                content = F.mse_loss(signed.float(), target) if vgg is None else vgg(sr, hr)
                adv = self.adversarial.g(d(sr))
                g_loss = content + self.adv_weight * adv
            opt_g.zero_grad(set_to_none=True)
            ctx.backward(g_loss)
            ctx.optimizer_step(opt_g)
        return {
            "content": content.detach(),
            "g_adv": adv.detach(),
            "g_loss": g_loss.detach(),
            "d_loss": d_loss.detach(),
            "d_real": torch.sigmoid(d_real.detach()).mean(),
            "d_fake": torch.sigmoid(d_fake.detach()).mean(),
        }


# -- evaluation (the paper's protocol) -------------------------------------------------


def rgb_to_y(images: torch.Tensor) -> torch.Tensor:
    """Luminance Y of RGB images in [0, 1] (ITU-R BT.601, as MATLAB's rgb2ycbcr): Y in [16, 235].

    Returns (N, 1, H, W) floats.
    """
    weights = images.new_tensor([65.481, 128.553, 24.966]).view(1, 3, 1, 1)
    return 16 + (images * weights).sum(1, keepdim=True)


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Round images in [0, 1] to 8 bits (what a saved PNG holds), still in [0, 1]."""
    return (images.clamp(0, 1) * 255).round() / 255


def psnr_ssim_y(sr: torch.Tensor, hr: torch.Tensor, border: int = 4) -> tuple[float, float]:
    """PSNR (dB) and SSIM on the Y channel of 8-bit images, ``border`` px cropped per side.

    The paper's protocol (Ledig et al. 2017, Sec. 3.1). ``sr`` and ``hr`` are (N, 3, H, W)
    in [0, 1] of equal shape; values are means over the N images.
    """
    from torchmetrics.functional.image import (
        peak_signal_noise_ratio,
        structural_similarity_index_measure,
    )

    if sr.shape != hr.shape:
        raise ConfigError(f"sr {tuple(sr.shape)} and hr {tuple(hr.shape)} differ in shape.")
    a, b = rgb_to_y(quantize(sr).double()), rgb_to_y(quantize(hr).double())
    if border:
        a, b = a[..., border:-border, border:-border], b[..., border:-border, border:-border]
    psnrs, ssims = [], []
    for x, y in zip(a, b):
        psnrs.append(float(peak_signal_noise_ratio(x[None], y[None], data_range=255.0)))
        ssims.append(float(structural_similarity_index_measure(x[None], y[None], data_range=255.0)))
    return sum(psnrs) / len(psnrs), sum(ssims) / len(ssims)


def gradient_energy(images: torch.Tensor) -> torch.Tensor:
    """Mean gradient magnitude of the Y channel (finite differences): a sharpness figure."""
    y = rgb_to_y(quantize(images).double())
    dx, dy = y[..., :, 1:] - y[..., :, :-1], y[..., 1:, :] - y[..., :-1, :]
    return torch.sqrt(dx[..., :-1, :] ** 2 + dy[..., :, :-1] ** 2).mean()


def sharpness_ratio(sr: torch.Tensor, hr: torch.Tensor) -> float:
    """Gradient energy of ``sr`` over that of ``hr``: 1 is as sharp as the original,
    below 1 blurrier (bicubic, MSE-trained nets), above 1 over-sharpened or noisy."""
    return float(gradient_energy(sr) / gradient_energy(hr))


@torch.no_grad()
def evaluate_photos(
    upscale: Any, photos: dict[str, torch.Tensor], scale: int = 4
) -> dict[str, dict[str, float]]:
    """PSNR/SSIM (Y, border ``scale``) and sharpness ratio of ``upscale`` and of bicubic.

    Args:
        upscale: ``f(lr) -> sr`` in [0, 1] (e.g. :meth:`SRGAN.upscale`), or None for bicubic only.
        photos: ``name -> (1, 3, H, W)`` HR images in [0, 1], H and W divisible by ``scale``.

    Returns ``{"model": {...}, "bicubic": {...}}`` with ``psnr``, ``ssim``, ``sharpness``
    averaged over the photos, and per-photo entries ``psnr/NAME`` etc.
    """
    out: dict[str, dict[str, float]] = {"bicubic": {}}
    if upscale is not None:
        out["model"] = {}
    for name, hr in photos.items():
        lr = downsample(hr, scale)
        candidates = {"bicubic": bicubic_upsample(lr, scale)}
        if upscale is not None:
            candidates["model"] = upscale(lr).float().cpu()
        for key, sr in candidates.items():
            psnr, ssim = psnr_ssim_y(sr, hr, border=scale)
            out[key][f"psnr/{name}"] = psnr
            out[key][f"ssim/{name}"] = ssim
            out[key][f"sharpness/{name}"] = sharpness_ratio(sr, hr)
    for values in out.values():
        for metric in ("psnr", "ssim", "sharpness"):
            per = [v for k, v in values.items() if k.startswith(f"{metric}/")]
            values[metric] = sum(per) / len(per)
    return out
