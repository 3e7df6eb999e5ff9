"""Judges of a text-to-image generator: does each image show what its caption asks for?

* :class:`AttributeReader`: a small CNN with one head per rendered attribute (digit,
  colour, background, thickness, slant, size), trained on rendered images (whose attributes
  are true by construction); its accuracy per attribute on a generator's images for held-out
  captions is the share of images that show what their caption names, beside the reader's
  own accuracy on held-out rendered images (the ceiling).
* :func:`r_precision`: caption-to-image retrieval in the joint embedding (Xu et al., AttnGAN,
  CVPR 2018, Sec. 5: R = 1 among 100 candidates): how often a generated image is closer to
  its own caption than to 99 captions describing other attribute combinations.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.data.captions import ATTRIBUTES, CaptionedImages
from counterfeit.gan.nets.blocks import conv_block


class AttributeReader(nn.Module):
    """Images (N, 3, S, S) in [0, 1] -> one logit vector per attribute of :data:`ATTRIBUTES`:
    three 3x3 stride-2 conv-BN-ReLU layers (32, 64, 128), global average pooling, fc256."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_block(channels, 32, 3, 2, 1, "batch", "relu"),
            conv_block(32, 64, 3, 2, 1, "batch", "relu"),
            conv_block(64, 128, 3, 2, 1, "batch", "relu"),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(512, 256),
            nn.ReLU(inplace=True),
        )
        self.heads = nn.ModuleDict({k: nn.Linear(256, len(v)) for k, v in ATTRIBUTES.items()})

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.body(images)
        return {name: head(features) for name, head in self.heads.items()}


def train_attribute_reader(
    data: CaptionedImages,
    steps: int = 600,
    batch_size: int = 128,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> AttributeReader:
    """An :class:`AttributeReader` trained on rendered images (Adam 1e-3, cross-entropy
    summed over the attributes)."""
    if data.attributes is None:
        raise ValueError("an attribute reader trains on rendered images (with attributes).")
    torch.manual_seed(seed)
    reader = AttributeReader(data.images.shape[0]).to(device)
    optimizer = torch.optim.Adam(reader.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    reader.train()
    for _ in range(steps):
        indices = torch.randint(len(data), (batch_size,), generator=generator)
        images, _ = data.images.get_batch(indices)
        targets = data.attributes[indices].to(device)
        logits = reader(images.to(device))
        loss = sum(F.cross_entropy(logits[k], targets[:, i]) for i, k in enumerate(ATTRIBUTES))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return reader.eval()


@torch.no_grad()
def read_attributes(
    reader: AttributeReader, images: torch.Tensor, batch_size: int = 500
) -> torch.Tensor:
    """(N, len(ATTRIBUTES)) the value index the reader sees for each attribute."""
    device = next(reader.parameters()).device
    rows = []
    for chunk in images.split(batch_size):
        logits = reader(chunk.to(device).float())
        rows.append(torch.stack([logits[k].argmax(1) for k in ATTRIBUTES], 1).cpu())
    return torch.cat(rows)


def attribute_accuracy(
    reader: AttributeReader, images: torch.Tensor, attributes: torch.Tensor
) -> dict[str, float]:
    """The share of ``images`` the reader sees with each asked-for attribute value, and
    ``all`` (every attribute right)."""
    hits = read_attributes(reader, images) == attributes
    scores = {k: float(hits[:, i].float().mean()) for i, k in enumerate(ATTRIBUTES)}
    scores["all"] = float(hits.all(1).float().mean())
    return scores


def r_precision(
    images: torch.Tensor,
    texts: torch.Tensor,
    keys: torch.Tensor,
    candidates: int = 100,
    seed: int = 0,
) -> float:
    """The share of ``images[i]`` (embedded, (N, D)) whose own caption ``texts[i]`` scores
    higher than ``candidates - 1`` captions of other keys drawn at random (R = 1)."""
    rng = np.random.default_rng(seed)
    scores = images @ texts.T
    keys_np = keys.cpu().numpy()
    hits = []
    for i in range(len(images)):
        others = np.flatnonzero(keys_np != keys_np[i])
        if len(others) == 0:
            raise ValueError("r_precision needs captions of at least two attribute sets.")
        drawn = rng.choice(others, size=min(candidates - 1, len(others)), replace=False)
        hits.append(bool(scores[i, i] > scores[i, torch.as_tensor(drawn)].max()))
    return float(np.mean(hits))
