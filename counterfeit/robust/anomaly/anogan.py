"""AnoGAN (Schlegl et al., "Unsupervised Anomaly Detection with Generative Adversarial
Networks to Guide Marker Discovery", IPMI 2017).

A DCGAN (:class:`counterfeit.gan.models.dcgan.DCGAN`, the paper's Sec. 2.1) learns the
normal images only. A query image x is mapped to the latent space by searching for the z
whose G(z) is closest to it (Sec. 2.2): Gamma steps of gradient descent on z of

    L(z) = (1 - lambda) * L_R(z) + lambda * L_D(z),   lambda = 0.1        (Eq. 5)

with the residual loss ``L_R = sum |x - G(z)|`` (Eq. 3) and the discrimination loss
``L_D = sum |f(x) - f(G(z))|`` on the discriminator's last hidden layer f (Eq. 4, the
feature-matching form). The anomaly score is ``L`` at the last step (Eq. 6-8) and the
residual map ``|x - G(z_Gamma)|`` (Eq. 9).

Kept: Gamma = 500 (Sec. 3), lambda = 0.1, the L1 losses, z started at random.
Not named by the paper and chosen here: Adam with lr 0.01 on z (as the common
re-implementations do), z clamped to the prior's support [-1, 1] after each step, and one
search for a whole batch (the loss is a sum over images and Adam acts element-wise, so each
image's z moves exactly as it would alone). Images whose side is not a DCGAN size (16, 32,
64, ...) are zero-padded to the next one (28 px digits to 32) and cropped back for the map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from counterfeit.gan.errors import ShapeError
from counterfeit.gan.method import frozen
from counterfeit.gan.models.dcgan import DCGAN
from counterfeit.gan.nets.dcgan import SIZES
from counterfeit.gan.runtime import module_device
from counterfeit.robust.anomaly.base import NetworkDetector, train_on_normal


def gan_size(height: int, width: int) -> int:
    """The smallest DCGAN image size that holds an image of ``height`` x ``width``."""
    if height != width or height > SIZES[-1]:
        raise ShapeError(
            f"GAN detectors take square images up to {SIZES[-1]} px, got {height}x{width}."
        )
    return next(size for size in SIZES if size >= height)


def pad_to(images: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad square ``images`` evenly to ``size`` px (returned unchanged when they fit)."""
    extra = size - images.shape[-1]
    before = extra // 2
    return F.pad(images, (before, extra - before, before, extra - before)) if extra else images


def crop_from(images: torch.Tensor, side: int) -> torch.Tensor:
    """Undo :func:`pad_to`: the centre ``side`` x ``side`` pixels."""
    start = (images.shape[-1] - side) // 2
    return images[..., start : start + side, start : start + side]


class AnoGAN(NetworkDetector):
    """AnoGAN: a DCGAN of the normal data and a latent search per query image.

    Args:
        width, latent_dim: the DCGAN's (see :class:`~counterfeit.gan.models.dcgan.DCGAN`).
        steps, batch_size: the DCGAN's training on the normal images.
        search_steps: Gamma, gradient steps on z per query (500 in the paper).
        search_lr: Adam's learning rate on z.
        lam: lambda, the weight of the discrimination loss (0.1).
        seed, device: of training and of the search's starting z.
    """

    name = "anogan"

    def __init__(
        self,
        width: int = 64,
        latent_dim: int = 100,
        steps: int = 3000,
        batch_size: int = 64,
        search_steps: int = 500,
        search_lr: float = 0.01,
        lam: float = 0.1,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        self.width, self.latent_dim = width, latent_dim
        self.steps, self.batch_size = steps, batch_size
        self.search_steps, self.search_lr, self.lam = search_steps, search_lr, lam
        self.seed, self.device = seed, device
        self.model: DCGAN | None = None

    def _build(self, image_shape: tuple[int, ...]) -> None:
        channels, height, width = image_shape
        torch.manual_seed(self.seed)
        size = gan_size(height, width)
        self.model = DCGAN(size, channels, self.latent_dim, self.width, seed=self.seed)

    def _fit(self, normal: torch.Tensor) -> None:
        self._build(tuple(normal.shape[1:]))
        assert self.model is not None
        size = self.model.generator.image_size
        train_on_normal(
            self.model,
            pad_to(normal, size),
            self.steps,
            self.batch_size,
            self.seed,
            self.device,
            "AnoGAN",
        )

    def search(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
        """The latent search of Sec. 2.2 for a batch: ``(scores, G(z_Gamma) cropped, the batch's
        mean loss at every step)``."""
        assert self.model is not None and self.image_shape is not None
        generator, critic = self.model.generator, self.model.discriminator
        device = module_device(generator)
        x = pad_to(images, generator.image_size).to(device)
        seed = torch.Generator(device=device).manual_seed(self.seed)
        z = torch.rand(len(x), self.latent_dim, generator=seed, device=device) * 2 - 1
        z.requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=self.search_lr)
        with torch.no_grad():
            target_features = critic.features(x)

        def loss_of(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            fake = generator(z)
            residual = (x - fake).abs().flatten(1).sum(1)
            discrimination = (target_features - critic.features(fake)).abs().sum(1)
            return (1 - self.lam) * residual + self.lam * discrimination, fake

        history = []
        with frozen(generator, critic):
            with torch.enable_grad():
                for _ in range(self.search_steps):
                    loss, _ = loss_of(z)
                    history.append(float(loss.detach().mean()))
                    optimizer.zero_grad(set_to_none=True)
                    loss.sum().backward()
                    optimizer.step()
                    with torch.no_grad():
                        z.clamp_(-1, 1)
            loss, fake = loss_of(z.detach())
            history.append(float(loss.mean()))
        return loss.cpu(), crop_from(fake, self.image_shape[-1]).cpu(), history

    def _score(self, images: torch.Tensor) -> torch.Tensor:
        return self.search(images)[0]

    def _reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self.search(images)[1]
