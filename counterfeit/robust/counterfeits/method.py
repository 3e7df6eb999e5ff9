"""Training a detector of generated images: real (label 0) against one generator's fakes
(label 1), with Wang et al.'s Blur+JPEG augmentation (CVPR 2020), as a
:class:`~counterfeit.gan.TrainingMethod` on the shared Trainer.

Wang et al. train with Adam (lr 1e-4, betas (0.9, 0.999), batch 64) and binary
cross-entropy; the two-logit cross-entropy here is the same loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import DataError
from counterfeit.gan.method import StepContext, TrainingMethod
from counterfeit.gan.models._common import split_batch
from counterfeit.robust.counterfeits.augment import BlurJpeg
from counterfeit.robust.counterfeits.nets import build_detector_net

REAL, FAKE = 0, 1


class CounterfeitDetection(TrainingMethod):
    """A detector (``cnn`` or ``spectrum``) trained to tell real images from generated ones.

    Args:
        kind: ``cnn`` (pixels) or ``spectrum`` (log Fourier spectrum).
        channels, image_size: the images' shape.
        lr, betas: Adam's (Wang et al.: 1e-4, (0.9, 0.999)).
        augment: the probability of each of blur and JPEG (0.5; 0: none).
        seed: of the augmentation's draws.
    """

    progress_metrics = ("loss", "accuracy")

    def __init__(
        self,
        kind: str = "cnn",
        channels: int = 1,
        image_size: int = 32,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        augment: float = 0.5,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.kind, self.lr, self.betas = kind, lr, tuple(betas)
        self.net = build_detector_net(kind, channels, image_size)
        self.augment = BlurJpeg(augment, seed=seed)
        # P(fake) above it reads as fake; set on validation images (choose_threshold)
        self.register_buffer("threshold", torch.tensor(0.5))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"net": torch.optim.Adam(self.net.parameters(), self.lr, self.betas)}

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        images, labels = split_batch(batch)
        if labels is None:
            raise DataError("a counterfeit detector trains on labelled batches: 0 real, 1 fake.")
        with ctx.autocast():
            logits = self.net(self.augment(images))
            loss = F.cross_entropy(logits.float(), labels)
        optimizer = ctx.optimizers["net"]
        optimizer.zero_grad(set_to_none=True)
        ctx.backward(loss)
        ctx.optimizer_step(optimizer)
        return {"loss": loss.detach(), "accuracy": (logits.argmax(1) == labels).float().mean()}


def real_vs_fake(real: ImageTensors, fake: torch.Tensor, seed: int = 0) -> ImageTensors:
    """A balanced labelled set: as many real images (label 0) as ``fake`` ones in [0, 1]
    (label 1), the real ones drawn at random."""
    if tuple(real.shape) != tuple(fake.shape[1:]):
        raise DataError(
            f"real images are {tuple(real.shape)} (C, H, W) but the fakes are "
            f"{tuple(fake.shape[1:])}: generate at the real images' size and channels."
        )
    n = min(len(real), len(fake))
    if n < 2:
        raise DataError(f"a detector needs at least 2 real and 2 fake images; got {n}.")
    pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:n]
    fake_pixels = fake[:n].clamp(0, 1).mul(255).round().to(torch.uint8)
    images = torch.cat([real.images[pick], fake_pixels])
    labels = np.r_[np.full(n, REAL), np.full(n, FAKE)]
    return ImageTensors(images, torch.from_numpy(labels), f"{real.name}+fakes")
