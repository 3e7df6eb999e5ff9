"""DCGAN (Radford, Metz & Chintala, ICLR 2016) as a :class:`gan.TrainingMethod`.

The networks are :mod:`gan.nets.dcgan`. The defaults are the paper's: z of
100 dimensions drawn uniformly from [-1, 1], Adam with learning rate 2e-4 and
beta1 0.5, the non-saturating loss (as in the authors' code), one D step per G
step. Any loss of :mod:`gan.losses` can be chosen; the optimizer settings then
default to that loss's paper (:data:`PAPER_OPTIMIZERS`): WGAN uses RMSProp
5e-5 with 5 critic steps and weight clipping (Arjovsky et al. 2017, Algorithm
1; the warm-up of 100 critic steps every 500 G steps is not implemented),
WGAN-GP Adam 1e-4, betas (0, 0.9), 5 critic steps and lambda 10 (Gulrajani et
al. 2017, Algorithm 1), and needs a critic without BatchNorm (``d_norm``
``layer`` or ``none``: the penalty is defined per sample).

Additions outside the paper: an exponential moving average of G's weights
(:class:`gan.ema.EMA`), used for sampling by default, and an optional
class-conditional variant (``num_classes > 0``, Mirza & Osindero 2014), whose
fake batches take the real batch's labels.

A step takes one batch ``(images, labels)`` with images in [0, 1] and makes
one D update; G is updated on every ``n_critic``-th step, reusing that step's
generated batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from counterfeit.gan.ema import EMA, sampling_network
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.losses import LOSSES, clip_weights_, get_loss, gradient_penalty
from counterfeit.gan.method import StepContext, TrainingMethod, frozen
from counterfeit.gan.models._common import random_labels, sample_latent, split_batch
from counterfeit.gan.nets.dcgan import DCGANDiscriminator, DCGANGenerator, DNormKind

OptimizerKind = Literal["adam", "rmsprop"]


@dataclass(frozen=True)
class OptimizerDefaults:
    """A paper's optimizer settings for one loss."""

    kind: OptimizerKind
    lr: float
    betas: tuple[float, float]
    n_critic: int
    reference: str


DCGAN_OPTIMIZER = OptimizerDefaults("adam", 2e-4, (0.5, 0.999), 1, "Radford et al. 2016, Sec. 4")
PAPER_OPTIMIZERS: dict[str, OptimizerDefaults] = {
    name: DCGAN_OPTIMIZER for name in LOSSES if name not in ("wasserstein", "wgan-gp")
} | {
    "wasserstein": OptimizerDefaults(
        "rmsprop", 5e-5, (0.0, 0.0), 5, "Arjovsky et al. 2017, Algorithm 1"
    ),
    "wgan-gp": OptimizerDefaults("adam", 1e-4, (0.0, 0.9), 5, "Gulrajani et al. 2017, Algorithm 1"),
}


class DCGAN(TrainingMethod):
    """DCGAN with a choice of adversarial loss, EMA sampling and optional class conditioning.

    Args:
        image_size: 32 or 64 (the paper); 16, 128 and 256 also build.
        channels: image channels (1 or 3).
        latent_dim: size of z (100).
        width: G's last / D's first hidden width (128 gives the paper's 1024 at 4x4 for 64 px).
        num_classes: > 0 for the class-conditional variant.
        loss: a name in :data:`gan.losses.LOSSES`.
        d_norm: D's normalisation: ``batch`` (the paper), ``layer``, ``none`` or ``spectral``
            (SN-DCGAN, Miyato et al. 2018: spectral norm on every D convolution).
        latent: z's distribution, ``uniform`` on [-1, 1] (the paper) or ``normal``.
        optimizer, lr, betas, n_critic: None takes the loss's paper default
            (:data:`PAPER_OPTIMIZERS`).
        clip_value, gp_weight: override the loss's weight clip / penalty weight.
        ema_decay: decay of the generator's weight average; None disables it.
        n_fixed: number of fixed latent vectors kept for sample grids.
        seed: seed of the fixed latent vectors.
    """

    progress_metrics = ("d_loss", "g_loss")

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        latent_dim: int = 100,
        width: int = 128,
        num_classes: int = 0,
        loss: str = "non-saturating",
        d_norm: DNormKind = "batch",
        latent: Literal["uniform", "normal"] = "uniform",
        optimizer: OptimizerKind | None = None,
        lr: float | None = None,
        betas: tuple[float, float] | None = None,
        n_critic: int | None = None,
        clip_value: float | None = None,
        gp_weight: float | None = None,
        ema_decay: float | None = 0.999,
        n_fixed: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.loss = get_loss(loss)
        paper = PAPER_OPTIMIZERS[loss]
        self.optimizer_kind = optimizer or paper.kind
        self.lr = lr if lr is not None else paper.lr
        self.betas = tuple(betas) if betas is not None else paper.betas
        self.n_critic = n_critic if n_critic is not None else paper.n_critic
        self.clip_value = clip_value if clip_value is not None else self.loss.clip_value
        self.gp_weight = gp_weight if gp_weight is not None else self.loss.gp_weight
        if self.gp_weight and d_norm == "batch":
            raise ConfigError(
                f"loss '{loss}' penalises the critic's gradient per sample, which BatchNorm "
                "couples across the batch; use d_norm 'layer' (Gulrajani et al. 2017, Sec. 4) "
                "or 'none'."
            )
        if self.n_critic < 1 or self.lr <= 0 or n_fixed < 2:
            raise ConfigError(
                f"DCGAN needs n_critic >= 1, lr > 0 and n_fixed >= 2, got n_critic="
                f"{self.n_critic}, lr={self.lr}, n_fixed={n_fixed}."
            )
        if self.optimizer_kind not in ("adam", "rmsprop"):
            raise ConfigError(f"unknown optimizer '{self.optimizer_kind}'; use adam or rmsprop.")
        self.save_hyperparameters()
        self.latent_dim = latent_dim
        self.latent = latent
        self.num_classes = num_classes
        self.generator = DCGANGenerator(image_size, channels, latent_dim, width, num_classes)
        self.discriminator = DCGANDiscriminator(image_size, channels, width, num_classes, d_norm)
        self.g_ema = EMA(self.generator, ema_decay) if ema_decay is not None else None
        fixed = torch.Generator().manual_seed(seed)
        self.register_buffer("fixed_z", sample_latent(n_fixed, latent_dim, latent, "cpu", fixed))
        self.register_buffer(
            "fixed_labels", torch.arange(n_fixed) % num_classes if num_classes else torch.zeros(0)
        )
        self.register_buffer("last_g_loss", torch.zeros(()))

    # -- sampling ----------------------------------------------------------------

    def sampler(self, ema: bool = True) -> nn.Module:
        """The generator used for samples: the weight average when ``ema`` and kept."""
        return sampling_network(self.generator, self.g_ema, ema)

    def generate(
        self, z: torch.Tensor, labels: torch.Tensor | None = None, ema: bool = True
    ) -> torch.Tensor:
        """Images in [0, 1] from latent vectors ``z`` (and ``labels`` when conditional)."""
        return self.sampler(ema)(z, labels if self.num_classes else None)

    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        ema: bool = True,
    ) -> torch.Tensor:
        """``n`` images in [0, 1] from fresh z (random labels when conditional and not given)."""
        device = self.fixed_z.device
        z = sample_latent(n, self.latent_dim, self.latent, device, generator)
        if self.num_classes and labels is None:
            labels = random_labels(n, self.num_classes, device, generator)
        return self.generate(z, labels, ema)

    def fixed_samples(self, ema: bool = True) -> torch.Tensor:
        """Images from the fixed latent vectors (conditional: classes in turn), for grids."""
        return self.generate(self.fixed_z, self.fixed_labels.long(), ema)

    def interpolation(self, rows: int = 8, steps: int = 10, ema: bool = True) -> torch.Tensor:
        """Walks in latent space (Radford et al. 2016, Sec. 6.1): row i moves linearly from
        fixed z 2i to fixed z 2i+1 in ``steps`` images (conditional: at the first's class).
        Returns (rows * steps, C, H, W), row-major."""
        rows = min(rows, self.fixed_z.shape[0] // 2)
        start, end = self.fixed_z[0 : 2 * rows : 2], self.fixed_z[1 : 2 * rows : 2]
        t = torch.linspace(0, 1, steps, device=start.device).view(1, steps, 1)
        z = (start[:, None] * (1 - t) + end[:, None] * t).reshape(rows * steps, -1)
        labels = None
        if self.num_classes:
            labels = self.fixed_labels[0 : 2 * rows : 2].long().repeat_interleave(steps)
        return self.generate(z, labels, ema)

    # -- training ----------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        def make(params):
            if self.optimizer_kind == "rmsprop":
                return torch.optim.RMSprop(params, lr=self.lr)
            return torch.optim.Adam(params, lr=self.lr, betas=self.betas)

        return {"g": make(self.generator.parameters()), "d": make(self.discriminator.parameters())}

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        real, labels = split_batch(batch)
        n = real.shape[0]
        labels = labels if self.num_classes else None
        if labels is not None and bool((labels < 0).any()):
            raise ConfigError("the conditional DCGAN needs labelled data; this batch has none.")
        z = sample_latent(n, self.latent_dim, self.latent, real.device)
        d, g = self.discriminator, self.generator
        opt_d, opt_g = ctx.optimizers["d"], ctx.optimizers["g"]
        with ctx.autocast():
            fake = g(z, labels)
            d_real, d_fake = d(real, labels), d(fake.detach(), labels)
            d_loss = self.loss.d(d_real, d_fake)
        metrics = {"d_loss": d_loss.detach(), "d_real": d_real.detach().mean()}
        metrics["d_fake"] = d_fake.detach().mean()
        if self.gp_weight:
            with ctx.autocast():
                penalty = gradient_penalty(lambda x: d(x, labels), real, fake)
            d_loss = d_loss + self.gp_weight * penalty
            metrics["gp"] = penalty.detach()
        opt_d.zero_grad(set_to_none=True)
        ctx.backward(d_loss)
        ctx.optimizer_step(opt_d)
        if self.clip_value:
            clip_weights_(d, self.clip_value)
        if (ctx.step + 1) % self.n_critic == 0:
            with frozen(d):
                with ctx.autocast():
                    g_loss = self.loss.g(d(fake, labels))
                opt_g.zero_grad(set_to_none=True)
                ctx.backward(g_loss)
                ctx.optimizer_step(opt_g)
            if self.g_ema is not None:
                self.g_ema.update(g)
            self.last_g_loss.copy_(g_loss.detach())
        metrics["g_loss"] = self.last_g_loss.clone()
        return metrics
