"""The history of generated images that CycleGAN's discriminators train on.

Shrivastava et al., "Learning from Simulated and Unsupervised Images through
Adversarial Training", CVPR 2017, Sec. 2.3, as used by CycleGAN (Zhu et al.,
ICCV 2017, Sec. 4: "a history of 50 generated images"; the authors'
``ImagePool``): until the pool holds ``size`` images every generated image is
stored and returned unchanged; after that, each image is returned unchanged
with probability 0.5, and otherwise a uniformly chosen stored image is returned
in its place and the new one is stored where it was.

Deviation from the authors' code: the coin flips and slot choices come from
torch's global RNG (not Python's ``random``), and the pool lives in registered
buffers, so the Trainer's checkpoints hold it and a resumed run continues to
exactly the same numbers (the Trainer checkpoints torch's RNG too).
"""

from __future__ import annotations

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError


class ImagePool(nn.Module):
    """A pool of up to ``size`` images of shape ``shape`` (C, H, W); ``size`` 0 disables it.

    The stored images and the fill count are buffers (checkpointed with the owning method).
    """

    def __init__(self, size: int = 50, shape: tuple[int, int, int] = (3, 32, 32)) -> None:
        super().__init__()
        if size < 0:
            raise ConfigError(f"the image pool size must be >= 0, got {size}.")
        if len(shape) != 3 or min(shape) < 1:
            raise ConfigError(f"the image pool needs an image shape (C, H, W), got {shape}.")
        self.size = size
        self.shape = tuple(shape)
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        return int(self.count)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Images for the discriminator in place of ``images`` (N, C, H, W); detached.

        Each image in turn: stored and returned while the pool is filling; then with
        probability 0.5 returned as is, otherwise swapped for a random stored image.
        """
        if images.ndim != 4 or tuple(images.shape[1:]) != self.shape:
            raise ConfigError(
                f"the image pool holds images of shape {self.shape} (C, H, W), got a batch "
                f"of shape {tuple(images.shape)}."
            )
        images = images.detach()
        if self.size == 0:
            return images
        n = images.shape[0]
        # One draw per image for the coin and the slot, in one call each (same stream
        # whether or not the pool is full, which keeps the random state easy to reason about).
        coins = torch.rand(n, device=self.images.device).tolist()
        slots = torch.randint(self.size, (n,), device=self.images.device).tolist()
        out = images.clone()
        count = int(self.count)
        for i in range(n):
            if count < self.size:
                self.images[count].copy_(images[i])
                count += 1
            elif coins[i] > 0.5:
                slot = slots[i]
                out[i].copy_(self.images[slot])
                self.images[slot].copy_(images[i])
        self.count.fill_(count)
        return out
