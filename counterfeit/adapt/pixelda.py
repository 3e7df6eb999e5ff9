"""PixelDA: pixel-level domain adaptation with a GAN.

Bousmalis, Silberman, Dohan, Erhan, Krishnan, "Unsupervised Pixel-Level Domain
Adaptation with Generative Adversarial Networks", CVPR 2017.

A generator G(x_s, z) turns a labelled source image and noise into an image
that a discriminator D cannot tell from real target images; a task classifier
T learns the labels on source images and on their adapted versions, and is
then applied to real target images. Training alternates (Eq. 2-4 of the paper;
``d_step_loss`` / ``g_step_loss`` of the released code):

* D/T step:  w_d * [BCE(D(x_t), 1) + BCE(D(G(x_s, z)), 0)] + CE(T_s(x_s), y) + CE(T_a(G(x_s, z)), y)
* G step:    w_s * BCE(D(G(x_s, z)), 1) + w_t * CE(T_a(G(x_s, z)), y) [+ w_c * PMSE(G(x_s, z), x_s; mask)]

Defaults are the authors' released MNIST -> MNIST-M hyper-parameters
(``--hparams arch=resnet,domain_loss_weight=0.135603587834,
style_transfer_loss_weight=0.0113173311334,task_loss_in_g_weight=0.0100959947002,
task_tower=mnist,task_tower_in_g_step=true``, other values from ``hparams.py``):
Adam lr 1e-3, beta1 0.5, weight decay 1e-5, batch 32, learning rate x0.95
every 20,000 optimizer steps, z ~ U(-1, 1)^10, G with 6 residual blocks of 64
3x3 filters, D with 64 first-layer filters doubling, Gaussian noise 0.2 and
dropout 0.1 on D's hidden layers.

Deviations, all small: (1) the released code counts D and G updates in one
global step, so its "every 20,000 steps" decay is every 10,000 of our steps
(one D and one G update each); we follow the released behaviour. (2) Each
of our steps draws one source/target batch for both updates (the released
input queue gave each update its own batch); G's update draws fresh noise.
(3) Weight decay is Adam's L2 term on every network (slim's regularisers).
(4) D's Gaussian noise is added in training mode only.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.losses import minimax_d, non_saturating_g
from counterfeit.gan.method import StepContext, TrainingMethod, frozen
from counterfeit.gan.nets.pixelda import (
    PixelDADiscriminator,
    PixelDAGenerator,
    PixelDATaskClassifier,
)
from counterfeit.gan.runtime import follows_input_device

Preset = Literal["paper", "small"]
PRESETS: dict[str, dict[str, int]] = {
    # The released MNIST -> MNIST-M architecture.
    "paper": {"generator_filters": 64, "generator_blocks": 6, "discriminator_filters": 64},
    # Honest about being smaller: a quarter of G's width^2 and half its depth, half D's width,
    # so that training fits on 2 CPU cores. Same losses, weights and schedule.
    "small": {"generator_filters": 32, "generator_blocks": 3, "discriminator_filters": 32},
}


def pairwise_mse(
    prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean pairwise squared error (Bousmalis et al. 2017, Eq. 5; Bousmalis et al. 2016).

    Per image with pixel differences d = (prediction - target) * mask over its n
    values: (1/n^2) sum_ij (d_i - d_j)^2 = 2 mean(d^2) - 2 mean(d)^2, averaged over
    the batch. It penalises differences in *shape* but not a constant shift in
    colour, so G may restyle an object while keeping its outline. ``mask`` (1 on
    the foreground) restricts it to the object, as the paper's masked PMSE.
    """
    d = prediction - target
    if mask is not None:
        d = d * mask
    d = d.flatten(1)
    return (2 * d.pow(2).mean(1) - 2 * d.mean(1).pow(2)).mean()


class _ToSigned(nn.Module):
    """[0, 1] -> [-1, 1], the networks' input range."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 - 1


class PixelDA(TrainingMethod):
    """PixelDA (Bousmalis et al., CVPR 2017) with the released MNIST -> MNIST-M defaults.

    Args:
        source_shape, target_shape: (C, H, W) of each domain; H and W must match,
            channels may differ (G maps source channels to target channels).
        num_classes: number of labels.
        preset: ``"paper"`` (the released architecture) or ``"small"`` (for CPUs).
        generator_filters, generator_blocks, discriminator_filters: override the preset.
        noise_dims: length of z (10).
        domain_weight, style_weight, task_in_g_weight: the released loss weights.
        content_weight: weight of the masked pairwise-MSE content loss (0: off);
            ``content_threshold`` marks source pixels brighter than it (in [0, 1]) as foreground.
        lr, beta1, weight_decay, lr_decay, lr_decay_every: Adam and its schedule.
        source_spec: the source domain G learns to adapt, as a JSON-able
            :class:`gan.data.DomainSpec` dump (the recipe's ``data.source``). Only recorded:
            it travels in the checkpoint, so ``counterfeit translate`` renders the same
            domain (the same synthetic style, say) rather than the domain's defaults.

    ``model(x)`` classifies images in [0, 1] with T's adapted branch (the one used
    for real target images); :meth:`translate` adapts source images.
    """

    progress_metrics = ("loss/d", "loss/g", "acc/source", "acc/adapted")

    def __init__(
        self,
        source_shape: tuple[int, int, int] = (3, 28, 28),
        target_shape: tuple[int, int, int] = (3, 28, 28),
        num_classes: int = 10,
        *,
        preset: Preset = "paper",
        generator_filters: int | None = None,
        generator_blocks: int | None = None,
        discriminator_filters: int | None = None,
        noise_dims: int = 10,
        domain_weight: float = 0.135603587834,
        style_weight: float = 0.0113173311334,
        task_in_g_weight: float = 0.0100959947002,
        content_weight: float = 0.0,
        content_threshold: float = 0.5,
        lr: float = 1e-3,
        beta1: float = 0.5,
        weight_decay: float = 1e-5,
        lr_decay: float = 0.95,
        lr_decay_every: int = 10_000,
        noise_sigma: float = 0.2,
        dropout: float = 0.1,
        source_spec: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if preset not in PRESETS:
            raise ConfigError(
                f"unknown PixelDA preset '{preset}'; choose one of {', '.join(PRESETS)}."
            )
        if tuple(source_shape[1:]) != tuple(target_shape[1:]):
            raise DataError(
                f"PixelDA needs source and target images of the same size; got source "
                f"{tuple(source_shape)} and target {tuple(target_shape)} (C, H, W). Set one "
                "data.image_size for both domains."
            )
        sizes = dict(PRESETS[preset])
        for key, value in (
            ("generator_filters", generator_filters),
            ("generator_blocks", generator_blocks),
            ("discriminator_filters", discriminator_filters),
        ):
            if value is not None:
                sizes[key] = value
        self.save_hyperparameters(**sizes)
        self.source_shape = tuple(source_shape)
        self.target_shape = tuple(target_shape)
        self.num_classes = num_classes
        self.preset = preset
        self.domain_weight, self.style_weight = domain_weight, style_weight
        self.task_in_g_weight = task_in_g_weight
        self.content_weight, self.content_threshold = content_weight, content_threshold
        self.lr, self.beta1, self.weight_decay = lr, beta1, weight_decay
        self.lr_decay, self.lr_decay_every = lr_decay, lr_decay_every
        size = source_shape[1]
        self.generator = PixelDAGenerator(
            source_shape[0],
            target_shape[0],
            size,
            noise_dims,
            sizes["generator_filters"],
            sizes["generator_blocks"],
        )
        self.discriminator = PixelDADiscriminator(
            target_shape[0],
            size,
            sizes["discriminator_filters"],
            noise_sigma=noise_sigma,
            dropout=dropout,
        )
        self.task = PixelDATaskClassifier(target_shape[0], size, num_classes)
        if source_shape[0] != target_shape[0]:
            # T's source branch sees source images: give it the source's channels.
            self.task.source_private[0] = nn.Conv2d(source_shape[0], 32, 5, padding=2)

    # -- inference ---------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for (target-domain) images in [0, 1]."""
        return self.task(x * 2 - 1)

    def classifier(self) -> nn.Sequential:
        """The deployable target classifier on [0, 1] images (shares T's weights)."""
        return nn.Sequential(_ToSigned(), self.task.adapted_private, self.task.shared)

    @torch.no_grad()
    @follows_input_device
    def translate(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Adapt source images in [0, 1] to the target style; returns images in [0, 1]."""
        self._check(x, self.source_shape, "source")
        if z is None:
            z = self.generator.sample_noise(x.shape[0], x.device)
        return (self.generator(x * 2 - 1, z) + 1) / 2

    # -- training ----------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        adam = dict(lr=self.lr, betas=(self.beta1, 0.999), weight_decay=self.weight_decay)
        d_params = list(self.discriminator.parameters()) + list(self.task.parameters())
        return {
            "d": torch.optim.Adam(d_params, **adam),
            "g": torch.optim.Adam(self.generator.parameters(), **adam),
        }

    def configure_schedulers(self, optimizers, total_steps: int) -> dict:
        return {
            name: torch.optim.lr_scheduler.StepLR(opt, self.lr_decay_every, self.lr_decay)
            for name, opt in optimizers.items()
        }

    def train_step(self, batch, ctx: StepContext) -> dict[str, torch.Tensor]:
        """One D/T update then one G update on ``((x_s, y_s), (x_t, _))``."""
        (xs, ys), (xt, _) = batch
        self._check(xs, self.source_shape, "source")
        self._check(xt, self.target_shape, "target")
        xs, xt = xs * 2 - 1, xt * 2 - 1
        n = xs.shape[0]

        # D/T step: domain classifier and task classifier.
        with torch.no_grad(), ctx.autocast():
            fake = self.generator(xs, self.generator.sample_noise(n, xs.device))
        with ctx.autocast():
            domain = minimax_d(self.discriminator(xt).float(), self.discriminator(fake).float())
            source_logits = self.task(xs, source=True).float()
            adapted_logits = self.task(fake, source=False).float()
            task = F.cross_entropy(source_logits, ys) + F.cross_entropy(adapted_logits, ys)
            d_loss = self.domain_weight * domain + task
        opt_d = ctx.optimizers["d"]
        opt_d.zero_grad(set_to_none=True)
        ctx.backward(d_loss)
        ctx.optimizer_step(opt_d)

        # G step: fool D, stay classifiable (and, optionally, keep the foreground's shape).
        with frozen(self.discriminator, self.task):
            with ctx.autocast():
                fake = self.generator(xs, self.generator.sample_noise(n, xs.device))
                style = non_saturating_g(self.discriminator(fake).float())
                task_in_g = F.cross_entropy(self.task(fake, source=False).float(), ys)
                g_loss = self.style_weight * style + self.task_in_g_weight * task_in_g
                metrics = {}
                if self.content_weight:
                    mask = (xs > self.content_threshold * 2 - 1).float()
                    content = pairwise_mse(fake.float(), xs.float(), mask)
                    g_loss = g_loss + self.content_weight * content
                    metrics["loss/content"] = content.detach()
            opt_g = ctx.optimizers["g"]
            opt_g.zero_grad(set_to_none=True)
            ctx.backward(g_loss)
            ctx.optimizer_step(opt_g)
        return {
            "loss/d": d_loss.detach(),
            "loss/g": g_loss.detach(),
            "loss/domain": domain.detach(),
            "loss/task": task.detach(),
            "loss/style": style.detach(),
            "acc/source": (source_logits.argmax(1) == ys).float().mean(),
            "acc/adapted": (adapted_logits.argmax(1) == ys).float().mean(),
            **metrics,
        }

    def _check(self, x: torch.Tensor, shape: tuple, name: str) -> None:
        if tuple(x.shape[1:]) != shape:
            raise DataError(
                f"PixelDA was built for {name} images of shape {shape} (C, H, W) but got "
                f"{tuple(x.shape[1:])}; rebuild it with the data's shapes."
            )
