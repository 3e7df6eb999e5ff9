"""pix2pix: image-to-image translation with a conditional GAN (Isola et al., CVPR 2017).

G is the U-Net of :mod:`gan.nets.unet`, D the PatchGAN of
:mod:`gan.nets.patchgan` scoring ``cat(A, B)`` (the conditional GAN, Eq. 1).
The objective is Eq. 4, ``G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G)``
with lambda = 100, the vanilla (cross-entropy) GAN loss on logits, and, as in
the paper (Sec. 3.3) and the authors' code:

* one D step then one G step per batch; D's loss is halved ("we divide the
  objective by 2 while optimizing D, which slows down the rate at which D
  learns relative to G");
* G minimises ``-log D(A, G(A))`` (the non-saturating form) plus ``lambda * L1``;
* Adam, learning rate 2e-4, betas (0.5, 0.999); weights from N(0, 0.02);
* optionally the code's learning-rate policy: constant, then linear decay to 0
  (``decay_fraction`` of the run constant; the code's 100 + 100 epochs is 0.5).

The noise z of the paper is only G's dropout (Sec. 3.2). ``l1_only=True``
trains the same U-Net on the L1 term alone, with no discriminator: the
paper's "L1" baseline (Table 1, Fig. 4).

Deviations, all settings: the paper trains with batch 1 (BatchNorm then acts
as instance normalisation) and at test time keeps dropout and batch
statistics on (Sec. 3.3). Here the batch size is the caller's (the recipes
use 16 on CPU), and :meth:`Pix2Pix.translate` follows the module's mode: in
eval mode (what the recipes evaluate) BatchNorm uses its running statistics
and dropout is off, so a translation is deterministic; call it in train mode
for the paper's stochastic inference. The PatchGAN's depth follows the image
size (:func:`gan.nets.patchgan_layers_for`: a 70x70 field does not fit a 32 px
digit, 16x16 patches do), and the U-Net's depth is ``log2(size)``.

A step takes a batch ``(a, b)`` of aligned images in [0, 1] (from
:class:`gan.data.PairedImages`); the networks work in [-1, 1].
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.losses import get_loss
from counterfeit.gan.method import StepContext, TrainingMethod, frozen
from counterfeit.gan.nets.blocks import NormKind
from counterfeit.gan.nets.patchgan import PatchGANDiscriminator, patchgan_layers_for
from counterfeit.gan.nets.unet import UNetGenerator
from counterfeit.gan.runtime import follows_input_device
from counterfeit.gan.schedules import linear_decay

PAPER_LAMBDA_L1 = 100.0


def _to_signed(images: torch.Tensor) -> torch.Tensor:
    return images * 2 - 1


def _to_unit(images: torch.Tensor) -> torch.Tensor:
    return (images + 1) / 2


def split_pairs(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, b)`` from a paired batch, checked to be aligned float image batches."""
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise ConfigError(
            "a pix2pix batch must be a pair (a, b) of aligned images (from gan.data.PairedImages); "
            f"got {type(batch).__name__}."
        )
    a, b = batch[0], batch[1]
    for side, x in (("a", a), ("b", b)):
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
            raise ConfigError(
                f"pix2pix's {side} images must be float (N, C, H, W) in [0, 1]; got "
                + (f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__)
                + "."
            )
    if a.shape[0] != b.shape[0] or a.shape[2:] != b.shape[2:]:
        raise ConfigError(
            f"pix2pix pairs must be aligned: a {tuple(a.shape)} and b {tuple(b.shape)} differ "
            "in batch or image size."
        )
    return a, b


class Pix2Pix(TrainingMethod):
    """pix2pix (or, with ``l1_only``, its L1-only U-Net baseline) as a TrainingMethod.

    Args:
        image_size: a power of two >= 16 (the paper: 256); sets the U-Net's and the
            PatchGAN's depths unless ``depth`` / ``d_layers`` are given.
        in_channels, out_channels: channels of A and of B.
        g_width, d_width: first-layer filters of G and D (64 in the paper).
        norm: ``batch`` (the paper) or ``instance``, in both nets.
        dropout: G's decoder dropout (0.5; see :func:`gan.nets.unet.dropout_levels`).
        depth: U-Net levels (None: ``log2(image_size)``).
        d_layers: PatchGAN strided layers (None: :func:`patchgan_layers_for`; 3 = 70x70).
        lambda_l1: weight of the L1 term (100).
        gan_loss: the adversarial loss by name (``non-saturating``: the paper's
            cross-entropy; ``least-squares`` as the code's ``lsgan`` option).
        lr, betas: Adam's settings for both nets (2e-4, (0.5, 0.999)).
        decay_fraction: None for a constant learning rate; else the fraction of the run
            after which it decays linearly to 0 (:func:`gan.schedules.linear_decay`).
        l1_only: train G on L1 alone, without D (the paper's L1 baseline).
    """

    progress_metrics = ("d_loss", "g_gan", "g_l1")

    def __init__(
        self,
        image_size: int = 256,
        in_channels: int = 3,
        out_channels: int = 3,
        g_width: int = 64,
        d_width: int = 64,
        norm: NormKind = "batch",
        dropout: float = 0.5,
        depth: int | None = None,
        d_layers: int | None = None,
        lambda_l1: float = PAPER_LAMBDA_L1,
        gan_loss: str = "non-saturating",
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        decay_fraction: float | None = None,
        l1_only: bool = False,
    ) -> None:
        super().__init__()
        self.loss = get_loss(gan_loss)
        if self.loss.clip_value or self.loss.gp_weight:
            raise ConfigError(
                f"pix2pix supports losses without a critic constraint; '{gan_loss}' needs weight "
                "clipping or a gradient penalty. Use non-saturating (the paper) or least-squares."
            )
        if lr <= 0 or lambda_l1 < 0:
            raise ConfigError(f"pix2pix needs lr > 0 and lambda_l1 >= 0, got {lr}, {lambda_l1}.")
        if decay_fraction is not None and not 0 <= decay_fraction <= 1:
            raise ConfigError(f"decay_fraction must be in [0, 1] or None, got {decay_fraction}.")
        self.save_hyperparameters()
        self.image_size = image_size
        self.lambda_l1, self.lr, self.betas = lambda_l1, lr, tuple(betas)
        self.decay_fraction, self.l1_only = decay_fraction, l1_only
        self.in_channels, self.out_channels = in_channels, out_channels
        self.generator = UNetGenerator(
            in_channels, out_channels, image_size, g_width, norm, dropout, depth
        )
        self.d_layers = d_layers if d_layers is not None else patchgan_layers_for(image_size)
        self.discriminator: PatchGANDiscriminator | None = None
        if not l1_only:
            self.discriminator = PatchGANDiscriminator(
                in_channels + out_channels, d_width, self.d_layers, norm
            )
        if l1_only:
            self.progress_metrics = ("g_l1",)

    @property
    def depth(self) -> int:
        """The U-Net's number of levels (stride-2 downsamplings)."""
        return self.generator.depth

    @property
    def source_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the A images :meth:`translate` takes (``counterfeit translate``)."""
        return (self.in_channels, self.image_size, self.image_size)

    @property
    def receptive_field(self) -> int | None:
        """Pixels one PatchGAN logit sees (None without a discriminator)."""
        return self.discriminator.receptive_field if self.discriminator is not None else None

    def describe(self) -> dict[str, Any]:
        """The architecture in numbers, for run summaries."""
        return {
            "unet_depth": self.depth,
            "unet_dropout_levels": self.generator.dropout_levels,
            "patchgan_layers": None if self.l1_only else self.d_layers,
            "patchgan_receptive_field": self.receptive_field,
            "generator_parameters": sum(p.numel() for p in self.generator.parameters()),
            "discriminator_parameters": (
                0
                if self.discriminator is None
                else sum(p.numel() for p in self.discriminator.parameters())
            ),
        }

    # -- inference ---------------------------------------------------------------------

    @follows_input_device
    def translate(self, a: torch.Tensor) -> torch.Tensor:
        """B images in [0, 1] from A images ``a`` (N, in_channels, H, W) in [0, 1].

        Uses G in its current mode (eval: running BatchNorm statistics, no dropout).
        """
        return _to_unit(self.generator(_to_signed(a)))

    # -- training ----------------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optimizers = {
            "g": torch.optim.Adam(self.generator.parameters(), lr=self.lr, betas=self.betas)
        }
        if self.discriminator is not None:
            optimizers["d"] = torch.optim.Adam(
                self.discriminator.parameters(), lr=self.lr, betas=self.betas
            )
        return optimizers

    def configure_schedulers(
        self, optimizers: dict[str, torch.optim.Optimizer], total_steps: int
    ) -> dict[str, Any]:
        if self.decay_fraction is None:
            return {}
        start = round(self.decay_fraction * total_steps)
        return {name: linear_decay(opt, total_steps, start) for name, opt in optimizers.items()}

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        a, b = split_pairs(batch)
        real_a, real_b = _to_signed(a), _to_signed(b)
        g, d = self.generator, self.discriminator
        opt_g = ctx.optimizers["g"]
        with ctx.autocast():
            fake_b = g(real_a)
        metrics: dict[str, torch.Tensor] = {}
        if d is not None:
            opt_d = ctx.optimizers["d"]
            with ctx.autocast():
                d_fake = d(torch.cat([real_a, fake_b.detach()], 1))
                d_real = d(torch.cat([real_a, real_b], 1))
                d_loss = 0.5 * self.loss.d(d_real, d_fake)
            opt_d.zero_grad(set_to_none=True)
            ctx.backward(d_loss)
            ctx.optimizer_step(opt_d)
            metrics.update(
                d_loss=d_loss.detach(),
                d_real=d_real.detach().mean(),
                d_fake=d_fake.detach().mean(),
            )
        with frozen(d):
            with ctx.autocast():
                l1 = F.l1_loss(fake_b, real_b)
                if d is not None:
                    g_gan = self.loss.g(d(torch.cat([real_a, fake_b], 1)))
                    g_loss = g_gan + self.lambda_l1 * l1
                else:
                    g_loss = l1
            opt_g.zero_grad(set_to_none=True)
            ctx.backward(g_loss)
            ctx.optimizer_step(opt_g)
        if d is not None:
            metrics["g_gan"] = g_gan.detach()
        # L1 in [0, 1] pixel units (half the [-1, 1] value the loss uses).
        metrics["g_l1"] = l1.detach() / 2
        metrics["g_loss"] = g_loss.detach()
        return metrics


def triplets(*columns: torch.Tensor) -> torch.Tensor:
    """Interleave image batches as ``a0, out0, b0, a1, out1, b1, ...`` for grids
    (input | output(s) | target); 1-channel batches are repeated to 3 channels
    when any batch has 3. Images in [0, 1]."""
    channels = max(c.shape[1] for c in columns)
    fixed = [c.expand(-1, channels, -1, -1) if c.shape[1] != channels else c for c in columns]
    return torch.stack(fixed, 1).flatten(0, 1)


@torch.no_grad()
def paired_scores(
    method: Pix2Pix | None,
    a: torch.Tensor,
    b: torch.Tensor,
    batch_size: int = 250,
    predict: Any = None,
) -> dict[str, float]:
    """Mean L1 (pixel units in [0, 1]) and SSIM (torchmetrics, Gaussian 11x11 window,
    data range 1) of translations of ``a`` against the targets ``b``, over all pairs.

    ``predict(a_batch) -> images in [0, 1]`` replaces ``method.translate`` (e.g. for
    trivial baselines). The method is used in its current mode (eval for evaluation).
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    if a.shape[0] != b.shape[0] or a.shape[0] == 0:
        raise ConfigError(
            f"paired_scores needs as many A as B images (and at least one), got {a.shape[0]} "
            f"and {b.shape[0]}."
        )
    fn = predict if predict is not None else method.translate  # type: ignore[union-attr]
    device = next(method.parameters()).device if method is not None else a.device
    l1_sum, ssim_sum = 0.0, 0.0
    for start in range(0, a.shape[0], batch_size):
        x = a[start : start + batch_size].to(device)
        y = b[start : start + batch_size].to(device)
        out = fn(x).float().clamp(0, 1)
        l1_sum += float((out - y).abs().flatten(1).mean(1).sum())
        ssim = structural_similarity_index_measure(out, y, data_range=1.0, reduction="none")
        ssim_sum += float(ssim.sum())
    n = a.shape[0]
    return {"l1": l1_sum / n, "ssim": ssim_sum / n}
