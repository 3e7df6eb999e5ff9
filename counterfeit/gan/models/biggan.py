"""BigGAN (Brock, Donahue & Simonyan, "Large Scale GAN Training for High Fidelity Natural
Image Synthesis", ICLR 2019) as a :class:`gan.TrainingMethod`.

The networks are :mod:`gan.nets.biggan`: class-conditional G with a shared embedding and
hierarchical latents into conditional BatchNorm, a projection discriminator, spectral norm
in both, one self-attention block. Training follows the paper (Sec. 3, App. C): the hinge
loss, Adam with beta1 0 and beta2 0.999 at constant learning rates 5e-5 (G) and 2e-4 (D),
two D steps per G step, orthogonal regularisation of G (beta 1e-4, Eq. 3; the shared
embedding left out), z ~ N(0, I), and samples from an exponential moving average of G's
weights (decay 0.9999). Sampling takes the truncation trick (Sec. 3.1): z drawn from a
normal truncated at ``truncation``, values outside resampled.

A step takes one labelled batch ``(images, labels)`` with images in [0, 1] and makes one D
update on it and on G's images of random classes; G is updated on every
``d_steps``-th step (with fresh z and classes), as the authors' loop does.

Deviations: the EMA starts at step 0 (the paper starts it after 20k iterations); G's
BatchNorm statistics for sampling are the running averages (the paper's "standing
statistics" are not computed).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from counterfeit.gan.ema import EMA, sampling_network
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.losses import get_loss
from counterfeit.gan.method import StepContext, TrainingMethod, frozen
from counterfeit.gan.models._common import random_labels, split_batch, truncated_normal
from counterfeit.gan.nets.biggan import BigGANDiscriminator, BigGANGenerator
from counterfeit.gan.nets.spectral import orthogonal_regularization


class BigGAN(TrainingMethod):
    """Class-conditional BigGAN.

    Args:
        image_size: 32, 64 or 128.
        channels: image channels.
        num_classes: classes (labels in [0, num_classes)).
        latent_dim: z's size, a multiple of the number of G blocks + 1.
        width: the channel multiplier ``ch``.
        shared_dim: the shared class embedding's size (128).
        attention: the resolution of the self-attention blocks; None: none.
        g_lr, d_lr, betas: Adam's (App. C: 5e-5, 2e-4, (0, 0.999)).
        d_steps: D updates per G update (2).
        ortho_beta: orthogonal regularisation strength on G (1e-4; 0: off).
        ema_decay: G's weight average for sampling (0.9999; None: sample from G).
        n_fixed: fixed latents for sample grids, classes in turn.
        seed: of the fixed latents.
    """

    progress_metrics = ("d_loss", "g_loss")

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 1,
        num_classes: int = 10,
        latent_dim: int = 128,
        width: int = 64,
        shared_dim: int = 128,
        attention: int | None = 16,
        g_lr: float = 5e-5,
        d_lr: float = 2e-4,
        betas: tuple[float, float] = (0.0, 0.999),
        d_steps: int = 2,
        ortho_beta: float = 1e-4,
        ema_decay: float | None = 0.9999,
        n_fixed: int = 100,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if num_classes < 1 or d_steps < 1 or g_lr <= 0 or d_lr <= 0 or n_fixed < 1:
            raise ConfigError(
                f"BigGAN needs num_classes >= 1, d_steps >= 1, positive learning rates and "
                f"n_fixed >= 1; got num_classes={num_classes}, d_steps={d_steps}, "
                f"g_lr={g_lr}, d_lr={d_lr}, n_fixed={n_fixed}."
            )
        self.save_hyperparameters()
        self.num_classes, self.latent_dim = num_classes, latent_dim
        self.g_lr, self.d_lr, self.betas = g_lr, d_lr, tuple(betas)
        self.d_steps, self.ortho_beta = d_steps, ortho_beta
        self.loss = get_loss("hinge")
        self.generator = BigGANGenerator(
            image_size, channels, num_classes, latent_dim, width, shared_dim, attention
        )
        self.discriminator = BigGANDiscriminator(
            image_size, channels, num_classes, width, attention
        )
        self.g_ema = EMA(self.generator, ema_decay) if ema_decay is not None else None
        fixed = torch.Generator().manual_seed(seed)
        self.register_buffer("fixed_z", torch.randn(n_fixed, latent_dim, generator=fixed))
        self.register_buffer("fixed_labels", torch.arange(n_fixed) % num_classes)
        self.register_buffer("last_g_loss", torch.zeros(()))

    # -- sampling ----------------------------------------------------------------

    def sampler(self, ema: bool = True) -> nn.Module:
        """The generator used for samples: the weight average when ``ema`` and kept."""
        return sampling_network(self.generator, self.g_ema, ema)

    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        truncation: float | None = None,
        generator: torch.Generator | None = None,
        ema: bool = True,
    ) -> torch.Tensor:
        """``n`` images in [0, 1] of ``labels`` (random classes if None), z truncated at
        ``truncation`` (None: an untruncated normal)."""
        device = self.fixed_z.device
        if truncation is None:
            where = generator.device if generator is not None else device
            z = torch.randn(n, self.latent_dim, generator=generator, device=where).to(device)
        else:
            z = truncated_normal(n, self.latent_dim, truncation, device, generator)
        if labels is None:
            labels = random_labels(n, self.num_classes, device, generator)
        elif bool(((labels < 0) | (labels >= self.num_classes)).any()):
            raise ConfigError(f"BigGAN draws classes 0-{self.num_classes - 1}; got {labels}.")
        return self.sampler(ema)(z, labels.to(device))

    def fixed_samples(self, ema: bool = True) -> torch.Tensor:
        """Images from the fixed latents, classes in turn, for sample grids."""
        return self.sampler(ema)(self.fixed_z, self.fixed_labels)

    # -- training ----------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "g": torch.optim.Adam(self.generator.parameters(), self.g_lr, self.betas, eps=1e-6),
            "d": torch.optim.Adam(self.discriminator.parameters(), self.d_lr, self.betas, eps=1e-6),
        }

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """The hinge loss of G plus the orthogonal regularisation of its weights."""
        penalty = orthogonal_regularization(
            self.generator, self.ortho_beta, exclude=[self.generator.shared.weight]
        )
        return self.loss.g(fake_logits) + penalty.to(fake_logits)

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        real, labels = split_batch(batch)
        if labels is None or bool((labels < 0).any()):
            raise ConfigError("BigGAN is class-conditional: it needs labelled images.")
        n, device = real.shape[0], real.device
        g, d = self.generator, self.discriminator
        opt_d, opt_g = ctx.optimizers["d"], ctx.optimizers["g"]
        fake_labels = random_labels(n, self.num_classes, device)
        with ctx.autocast():
            with torch.no_grad():
                fake = g(torch.randn(n, self.latent_dim, device=device), fake_labels)
            logits = d(torch.cat([real, fake]), torch.cat([labels, fake_labels]))
            d_real, d_fake = logits[:n], logits[n:]  # one D pass, as the authors' loop
            d_loss = self.loss.d(d_real, d_fake)
        opt_d.zero_grad(set_to_none=True)
        ctx.backward(d_loss)
        ctx.optimizer_step(opt_d)
        metrics = {"d_loss": d_loss.detach(), "d_real": d_real.detach().mean()}
        metrics["d_fake"] = d_fake.detach().mean()
        if (ctx.step + 1) % self.d_steps == 0:
            with frozen(d):
                classes = random_labels(n, self.num_classes, device)
                with ctx.autocast():
                    fake = g(torch.randn(n, self.latent_dim, device=device), classes)
                    g_loss = self.generator_loss(d(fake, classes))
                opt_g.zero_grad(set_to_none=True)
                ctx.backward(g_loss)
                ctx.optimizer_step(opt_g)
            if self.g_ema is not None:
                self.g_ema.update(g)
            self.last_g_loss.copy_(g_loss.detach())
        metrics["g_loss"] = self.last_g_loss.clone()
        return metrics
