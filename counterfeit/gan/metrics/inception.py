"""torchvision's Inception-v3 as a feature extractor, from local weights only.

Pool features (2048-d) and logits (for IS), from a local weights file or the torch hub
cache, never downloaded. Its scores are ``fid``, ``kid`` and ``is``. (Published FIDs use
the TF-Inception port of pytorch-fid; torchvision's ImageNet weights give close but not
identical numbers.)
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.checkpoint import load_checkpoint, load_module_state
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.metrics.base import FeatureExtractor

TORCHVISION_INCEPTION = "inception_v3_google-0cc3c7bd.pth"


def find_inception_weights(path: str | Path | None = None) -> Path:
    """A local Inception-v3 state_dict: ``path``, else torchvision's file in the torch hub
    cache (``torch.hub.get_dir()/checkpoints/inception_v3_google-0cc3c7bd.pth``).

    Raises:
        ConfigError: nothing found; nothing is ever downloaded.
    """
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise ConfigError(f"Inception-v3 weights not found at {path}.")
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_INCEPTION
    if cached.is_file():
        return cached
    raise ConfigError(
        f"no Inception-v3 weights: none given and none at {cached}. counterfeit never "
        "downloads them; copy torchvision's Inception_V3_Weights.IMAGENET1K_V1 file there, "
        "pass its path, or use the digits extractor (FID-digits) for digits."
    )


class InceptionFeatures(FeatureExtractor):
    """torchvision Inception-v3: 2048-d pool features, 1000-way logits (``fid``, ``kid``, ``is``).

    Images are resized to 299 px (bilinear, antialiased), grey repeated to RGB,
    and normalised with ImageNet statistics inside the module.

    Args:
        weights: a local state_dict file; default the torch hub cache (see
            :func:`find_inception_weights`).
    """

    name = ""
    num_features = 2048

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        path = find_inception_weights(weights)
        net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
        state = load_checkpoint(path)
        load_module_state(net, state.get("state_dict", state), str(path))
        self.fc = net.fc
        net.fc = nn.Identity()
        self.net = net
        self.eval()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.description = f"torchvision Inception-v3 ({path.name}), 2048-d pool features"

    @classmethod
    def from_weights(cls, weights: str | Path | None = None) -> InceptionFeatures:
        """Inception-v3 from the local file ``weights``, or from the torch hub cache (None)."""
        return cls(weights)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        x = F.interpolate(images, size=(299, 299), mode="bilinear", antialias=True)
        return self.net((x - self.mean) / self.std)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)
