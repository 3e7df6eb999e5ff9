"""GANomaly (Akcay, Atapour-Abarghouei & Breckon, "GANomaly: Semi-Supervised Anomaly
Detection via Adversarial Training", ACCV 2018).

The generator is an encoder-decoder-encoder (Fig. 2): G_E maps x to z, G_D rebuilds
x_hat = G_D(z), and a second encoder E maps x_hat to z_hat; the discriminator D is DCGAN's.
G minimises (Sec. 3.1, Eq. 1-4)

    L = w_adv ||f(x) - f(x_hat)||^2 + w_con ||x - x_hat||_1 + w_enc ||z - z_hat||^2

with f D's last hidden layer (feature matching) and weights w_adv = 1, w_con = 50,
w_enc = 1; D minimises the binary cross-entropy of real vs x_hat. The anomaly score is
``||G_E(x) - E(G(x))||^2`` averaged over the code (Eq. 5); the residual map ``|x - x_hat|``.
The nets are the DCGAN ones (:mod:`counterfeit.gan.nets.dcgan`, BatchNorm, LeakyReLU in
the encoders), Adam (2e-4, betas (0.5, 0.999)), as in the paper's Sec. 4. As in the
authors' code, D is re-initialised when its loss falls below 1e-5.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from counterfeit.gan.method import StepContext, TrainingMethod, frozen
from counterfeit.gan.nets.blocks import init_normal_
from counterfeit.gan.nets.dcgan import DCGANDiscriminator, DCGANEncoder, DCGANGenerator
from counterfeit.gan.runtime import module_device
from counterfeit.robust.anomaly.anogan import crop_from, gan_size, pad_to
from counterfeit.robust.anomaly.base import NetworkDetector, train_on_normal
from counterfeit.robust.batches import split_batch

D_RESET_BELOW = 1e-5


class GANomalyNet(TrainingMethod):
    """GANomaly's G (G_E, G_D, E) and D, trained on normal images only."""

    progress_metrics = ("d_loss", "g_loss")

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 1,
        latent_dim: int = 100,
        width: int = 64,
        w_adv: float = 1.0,
        w_con: float = 50.0,
        w_enc: float = 1.0,
        lr: float = 2e-4,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.encoder = DCGANEncoder(image_size, channels, latent_dim, width)
        self.decoder = DCGANGenerator(image_size, channels, latent_dim, width)
        self.re_encoder = DCGANEncoder(image_size, channels, latent_dim, width)
        self.discriminator = DCGANDiscriminator(image_size, channels, width)
        self.weights = {"adv": w_adv, "con": w_con, "enc": w_enc}
        self.lr = lr

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_hat, z, z_hat)`` for images ``x`` in [0, 1]."""
        z = self.encoder(images)
        rebuilt = self.decoder(z)
        return rebuilt, z, self.re_encoder(rebuilt)

    def generator_losses(
        self, images: torch.Tensor, rebuilt: torch.Tensor, z: torch.Tensor, z_hat: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The three terms of Eq. 4 (batch means) and their weighted sum ``g_loss``."""
        d = self.discriminator
        terms = {
            "adv": (d.features(images) - d.features(rebuilt)).pow(2).mean(),
            "con": (images - rebuilt).abs().mean(),
            "enc": (z - z_hat).pow(2).mean(),
        }
        terms["g_loss"] = sum(self.weights[k] * terms[k] for k in ("adv", "con", "enc"))
        return terms

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        generator = [
            *self.encoder.parameters(),
            *self.decoder.parameters(),
            *self.re_encoder.parameters(),
        ]
        betas = (0.5, 0.999)
        return {
            "g": torch.optim.Adam(generator, self.lr, betas=betas),
            "d": torch.optim.Adam(self.discriminator.parameters(), self.lr, betas=betas),
        }

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        images, _ = split_batch(batch)
        opt_g, opt_d = ctx.optimizers["g"], ctx.optimizers["d"]
        d = self.discriminator
        with frozen(d):
            with ctx.autocast():
                rebuilt, z, z_hat = self(images)
                terms = self.generator_losses(images, rebuilt, z, z_hat)
            opt_g.zero_grad(set_to_none=True)
            ctx.backward(terms["g_loss"])
            ctx.optimizer_step(opt_g)
        with ctx.autocast():
            real, fake = d(images), d(rebuilt.detach())
            d_loss = F.binary_cross_entropy_with_logits(
                real, torch.ones_like(real)
            ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        opt_d.zero_grad(set_to_none=True)
        ctx.backward(d_loss * 0.5)
        ctx.optimizer_step(opt_d)
        if float(d_loss.detach()) < D_RESET_BELOW:
            init_normal_(d)
        return {"d_loss": d_loss.detach(), **{k: v.detach() for k, v in terms.items()}}


class GANomaly(NetworkDetector):
    """GANomaly as a detector: train :class:`GANomalyNet` on the normal images; score by the
    latent distance ``mean (G_E(x) - E(G(x)))^2``.

    Args:
        width, latent_dim: the DCGAN nets' (the paper's nz is 100).
        steps, batch_size: training length.
        seed, device: of training.
    """

    name = "ganomaly"

    def __init__(
        self,
        width: int = 64,
        latent_dim: int = 100,
        steps: int = 3000,
        batch_size: int = 64,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        self.width, self.latent_dim = width, latent_dim
        self.steps, self.batch_size, self.seed, self.device = steps, batch_size, seed, device
        self.model: GANomalyNet | None = None

    def _build(self, image_shape: tuple[int, ...]) -> None:
        channels, height, width = image_shape
        torch.manual_seed(self.seed)
        self.model = GANomalyNet(gan_size(height, width), channels, self.latent_dim, self.width)

    def _fit(self, normal: torch.Tensor) -> None:
        self._build(tuple(normal.shape[1:]))
        assert self.model is not None
        train_on_normal(
            self.model,
            pad_to(normal, self.model.encoder.image_size),
            self.steps,
            self.batch_size,
            self.seed,
            self.device,
            self.name,
        )

    def _forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        assert self.model is not None
        device = module_device(self.model)
        return self.model(pad_to(images, self.model.encoder.image_size).to(device))

    def _score(self, images: torch.Tensor) -> torch.Tensor:
        _, z, z_hat = self._forward(images)
        return (z - z_hat).pow(2).mean(1).cpu()

    def _reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        assert self.image_shape is not None
        return crop_from(self._forward(images)[0], self.image_shape[-1]).cpu()
