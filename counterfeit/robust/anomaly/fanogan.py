"""f-AnoGAN (Schlegl et al., "f-AnoGAN: Fast unsupervised anomaly detection with generative
adversarial networks", Medical Image Analysis 54, 2019).

Two stages (Sec. 2):

1. A WGAN-GP (Gulrajani et al. 2017) on the normal images: the DCGAN nets of
   :class:`counterfeit.gan.models.dcgan.DCGAN` with ``loss="wgan-gp"``, a LayerNorm critic
   and its paper optimizer (Adam 1e-4, betas (0, 0.9), five critic steps per G step).
2. With G and the critic frozen, an encoder E (the critic's convolutions, a linear map to z
   and tanh, so z lies in G's [-1, 1] prior) trained on the izi_f objective (Eq. 7):

       L = 1/n ||x - G(E(x))||^2 + kappa / n_d ||f(x) - f(G(E(x)))||^2,   kappa = 1

   with f the critic's last hidden layer (n pixels, n_d features).

The anomaly score is that same sum for one image (Eq. 8-10), in one forward pass instead of
AnoGAN's search; the residual map is ``|x - G(E(x))|``. The encoder's optimizer is not
named in the paper; it reuses the WGAN-GP's Adam (1e-4, betas (0, 0.9)) here.
"""

from __future__ import annotations

from typing import Any

import torch

from counterfeit.gan.method import StepContext, TrainingMethod
from counterfeit.gan.models.dcgan import DCGAN
from counterfeit.gan.nets.dcgan import DCGANDiscriminator, DCGANEncoder
from counterfeit.gan.runtime import module_device
from counterfeit.robust.anomaly.anogan import crop_from, gan_size, pad_to
from counterfeit.robust.anomaly.base import NetworkDetector, train_on_normal
from counterfeit.robust.batches import split_batch


class IziEncoder(TrainingMethod):
    """The izi_f encoder stage: trains E against a frozen, trained WGAN-GP ``gan``."""

    def __init__(self, gan: DCGAN, kappa: float = 1.0, lr: float = 1e-4) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=("gan",))
        critic = gan.discriminator
        self.encoder = DCGANEncoder(
            critic.image_size, critic.channels, gan.latent_dim, _width(critic), "layer", tanh=True
        )
        self.gan = gan.eval().requires_grad_(False)
        self.kappa, self.lr = kappa, lr

    def train(self, mode: bool = True) -> IziEncoder:
        super().train(mode)
        self.gan.eval()  # G and the critic stay frozen, BatchNorm included
        return self

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"encoder": torch.optim.Adam(self.encoder.parameters(), self.lr, betas=(0.0, 0.9))}

    def izi_f(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-image izi_f loss, G(E(x))) for images ``x`` at the GAN's size."""
        rebuilt = self.gan.generator(self.encoder(x))
        critic = self.gan.discriminator
        image_term = (x - rebuilt).pow(2).flatten(1).mean(1)
        feature_term = (critic.features(x) - critic.features(rebuilt)).pow(2).mean(1)
        return image_term + self.kappa * feature_term, rebuilt

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        images, _ = split_batch(batch)
        optimizer = ctx.optimizers["encoder"]
        with ctx.autocast():
            loss = self.izi_f(images)[0].float().mean()
        optimizer.zero_grad(set_to_none=True)
        ctx.backward(loss)
        ctx.optimizer_step(optimizer)
        return {"izi_f": loss.detach()}


def _width(critic: DCGANDiscriminator) -> int:
    return critic.net[0][0].out_channels


class FAnoGAN(NetworkDetector):
    """f-AnoGAN: WGAN-GP on normal images, then the izi_f encoder; scored in one pass.

    Args:
        width, latent_dim: the WGAN-GP's DCGAN nets.
        gan_steps, encoder_steps, batch_size: the two training stages.
        gan_loss: the first stage's loss: ``wgan-gp`` (the paper), or another DCGAN loss
            (``non-saturating`` trains G on every step instead of every fifth, the CPU
            budget's choice; the critic keeps its LayerNorm either way).
        kappa: weight of the feature residual (1 in the paper).
        seed, device: of both stages.
    """

    name = "f-anogan"

    def __init__(
        self,
        width: int = 64,
        latent_dim: int = 128,
        gan_steps: int = 5000,
        encoder_steps: int = 2000,
        batch_size: int = 64,
        gan_loss: str = "wgan-gp",
        kappa: float = 1.0,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        self.width, self.latent_dim = width, latent_dim
        self.gan_steps, self.encoder_steps, self.batch_size = gan_steps, encoder_steps, batch_size
        self.gan_loss, self.kappa, self.seed, self.device = gan_loss, kappa, seed, device
        self.model: IziEncoder | None = None

    def _gan(self, image_shape: tuple[int, ...]) -> DCGAN:
        """The untrained WGAN-GP for ``image_shape``, from the detector's seed."""
        channels, height, width = image_shape
        torch.manual_seed(self.seed)
        return DCGAN(
            gan_size(height, width),
            channels,
            self.latent_dim,
            self.width,
            loss=self.gan_loss,
            d_norm="layer",
            ema_decay=None,
            seed=self.seed,
        )

    def _build(self, image_shape: tuple[int, ...]) -> None:
        self.model = IziEncoder(self._gan(image_shape), self.kappa)

    def _fit(self, normal: torch.Tensor) -> None:
        gan = self._gan(tuple(normal.shape[1:]))
        padded = pad_to(normal, gan.generator.image_size)
        gan = train_on_normal(
            gan, padded, self.gan_steps, self.batch_size, self.seed, self.device, self.gan_loss
        )
        self.model = IziEncoder(gan, self.kappa)  # built after the GAN trains (its seed state)
        train_on_normal(
            self.model, padded, self.encoder_steps, self.batch_size, self.seed, self.device, "izi_f"
        )

    def _izi_f(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.model is not None and self.image_shape is not None
        device = module_device(self.model)
        x = pad_to(images, self.model.gan.generator.image_size).to(device)
        scores, rebuilt = self.model.izi_f(x)
        return scores.cpu(), crop_from(rebuilt, self.image_shape[-1]).cpu()

    def _score(self, images: torch.Tensor) -> torch.Tensor:
        return self._izi_f(images)[0]

    def _reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self._izi_f(images)[1]
