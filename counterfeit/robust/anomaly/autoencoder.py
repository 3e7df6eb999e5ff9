"""A convolutional autoencoder scored by its reconstruction error: the lectures' foil for
AnoGAN (Schlegl et al., IPMI 2017, compare their Sec. 3 "aCAE" baseline, an adversarial
convolutional autoencoder; this one has no adversary).

Encoder: two stride-2 4x4 convolutions (``width``, ``2 width`` channels; BatchNorm on the
second, LeakyReLU 0.2) and a linear map to ``latent_dim``; the decoder mirrors it with
transposed convolutions and a sigmoid. Trained on normal images with the mean squared
error through the shared :class:`~counterfeit.gan.train.Trainer` (Adam, lr 1e-3).
Image sides must be divisible by 4 (28 and 32 px digits are).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.errors import ShapeError
from counterfeit.gan.method import StepContext, TrainingMethod
from counterfeit.gan.runtime import module_device
from counterfeit.robust.anomaly.base import NetworkDetector, train_on_normal
from counterfeit.robust.batches import split_batch


class ConvAutoencoder(TrainingMethod):
    """images (N, C, H, W) in [0, 1] -> their reconstruction, through a ``latent_dim`` code."""

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        latent_dim: int = 32,
        width: int = 32,
        lr: float = 1e-3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        channels, height, width_px = image_shape
        if height % 4 or width_px % 4:
            raise ShapeError(
                f"autoencoder: image sides must be divisible by 4, got {height}x{width_px}."
            )
        self.code_shape = (2 * width, height // 4, width_px // 4)
        code = 2 * width * (height // 4) * (width_px // 4)
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(code, latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, code),
            nn.Unflatten(1, self.code_shape),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, 2, 1),
            nn.Sigmoid(),
        )
        self.lr = lr

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(images))

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=self.lr)}

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        images, _ = split_batch(batch)
        optimizer = ctx.optimizers["model"]
        with ctx.autocast():
            loss = F.mse_loss(self(images).float(), images)
        optimizer.zero_grad(set_to_none=True)
        ctx.backward(loss)
        ctx.optimizer_step(optimizer)
        return {"mse": loss.detach()}


class AutoencoderDetector(NetworkDetector):
    """Score = mean squared reconstruction error of a :class:`ConvAutoencoder` trained on the
    normal images for ``steps`` steps of ``batch_size``."""

    name = "autoencoder"

    def __init__(
        self,
        latent_dim: int = 32,
        width: int = 32,
        steps: int = 2000,
        batch_size: int = 64,
        lr: float = 1e-3,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        self.latent_dim, self.width, self.lr = latent_dim, width, lr
        self.steps, self.batch_size, self.seed = steps, batch_size, seed
        self.device = device
        self.model: ConvAutoencoder | None = None

    def _build(self, image_shape: tuple[int, ...]) -> None:
        torch.manual_seed(self.seed)
        self.model = ConvAutoencoder(
            image_shape, latent_dim=self.latent_dim, width=self.width, lr=self.lr
        )

    def _fit(self, normal: torch.Tensor) -> None:
        self._build(tuple(normal.shape[1:]))
        train_on_normal(
            self.model, normal, self.steps, self.batch_size, self.seed, self.device, self.name
        )

    def _reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        assert self.model is not None
        device = module_device(self.model)
        return self.model(images.to(device)).cpu()

    def _score(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self._reconstruct(images)).pow(2).flatten(1).mean(1)
