"""SRGAN's networks (Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network", CVPR 2017, Fig. 4) and its VGG54 content loss.

* :class:`SRResNet` (the generator): 9x9 conv + PReLU; B residual blocks
  (conv3x3-BN-PReLU-conv3x3-BN + skip); conv3x3-BN + a long skip from the first
  layer; ``log2(scale)`` up-sampling stages (conv 64 -> 256, PixelShuffle(2),
  PReLU; Shi et al. 2016); a final 9x9 conv to RGB.
* :class:`SRGANDiscriminator`: eight 3x3 convs, 64 -> 512 channels, strides
  alternating 1 and 2, BatchNorm on all but the first, LeakyReLU(0.2); dense 1024,
  LeakyReLU(0.2), dense 1 (a logit; the sigmoid is in the loss).
* :class:`VGGContentLoss`: the paper's VGG54 loss, the MSE between VGG19 feature
  maps after the 4th conv (and its ReLU) before the 5th max-pool (torchvision's
  ``vgg19().features[:36]``), rescaled by 1/12.75 (Sec. 3.2.2: "rescaled the VGG
  feature maps by a factor of 1/12.75"), i.e. the MSE times 1/12.75^2. Weights
  are only ever read from disk (:func:`find_vgg19_weights`), never downloaded.

Value ranges (the paper scales LR inputs to [0, 1] and HR images to [-1, 1]):
the generator takes LR images in [0, 1] and returns HR images in [0, 1]; inside,
its last conv produces the [-1, 1]-scaled HR image, mapped to [0, 1] at the
boundary by (y + 1) / 2 (no tanh: the paper's Fig. 4 shows none). The
discriminator takes images in [0, 1] and maps them to [-1, 1] itself.

Deviation (opt-in, ``bicubic_skip=True``, the ``small`` preset): a global
residual from the bicubic up-sampled input, y = 2 * bicubic(x) - 1 + G(x), in the
manner of VDSR (Kim et al., CVPR 2016); the last conv then starts at zero, so the
untrained network *is* bicubic up-sampling. Not in the paper; it makes a 4-block
network on 2 CPU cores beat bicubic within minutes.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.errors import CheckpointError, ConfigError

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG54_LAYERS = 36  # torchvision vgg19().features[:36]: conv5_4 and its ReLU, before pool5
VGG_RESCALE = 1 / 12.75
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _upsample_stages(scale: int) -> int:
    stages = round(math.log2(scale)) if scale > 0 else -1
    if scale < 2 or 2**stages != scale:
        raise ConfigError(f"scale must be a power of two (2, 4, 8); got {scale}.")
    return stages


class ResidualBlock(nn.Module):
    """conv3x3-BN-PReLU-conv3x3-BN plus the identity (Ledig et al. 2017, Fig. 4)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.PReLU(width),
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleStage(nn.Module):
    """conv3x3 width -> 4 width, PixelShuffle(2), PReLU: doubles the resolution."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, 4 * width, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class SRResNet(nn.Module):
    """SRGAN's generator (Ledig et al. 2017, Fig. 4, top).

    Args:
        blocks: residual blocks B (16 in the paper).
        width: feature maps (64).
        scale: up-sampling factor, a power of two (4: two PixelShuffle x2 stages).
        channels: image channels (3).
        bicubic_skip: add the bicubic up-sampled input (a deviation; see the module doc).

    ``forward`` takes (N, C, h, w) in [0, 1] and returns (N, C, scale h, scale w) in [0, 1]
    (not clamped: clamp for display and metrics).
    """

    def __init__(
        self,
        blocks: int = 16,
        width: int = 64,
        scale: int = 4,
        channels: int = 3,
        bicubic_skip: bool = False,
    ) -> None:
        super().__init__()
        if blocks < 1 or width < 1:
            raise ConfigError(f"SRResNet needs blocks >= 1 and width >= 1; got {blocks}, {width}.")
        self.scale = scale
        self.bicubic_skip = bicubic_skip
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, padding=4), nn.PReLU(width))
        self.body = nn.Sequential(*(ResidualBlock(width) for _ in range(blocks)))
        self.body_out = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))
        self.upsample = nn.Sequential(
            *(UpsampleStage(width) for _ in range(_upsample_stages(scale)))
        )
        self.tail = nn.Conv2d(width, channels, 9, padding=4)
        if bicubic_skip:
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.forward_signed(x) + 1) / 2

    def forward_signed(self, x: torch.Tensor) -> torch.Tensor:
        """The HR estimate in the paper's [-1, 1] scaling (what the losses compare)."""
        features = self.head(x)
        y = self.tail(self.upsample(features + self.body_out(self.body(features))))
        if self.bicubic_skip:
            up = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
            y = y + 2 * up - 1
        return y


class SRGANDiscriminator(nn.Module):
    """SRGAN's discriminator (Ledig et al. 2017, Fig. 4, bottom).

    Args:
        image_size: HR crop size (96 in the paper); must divide by 16, it sets the
            first dense layer's input (512 x (size / 16)^2).
        channels: image channels.
        width: first conv's feature maps (64; doubling to 8x width = 512).

    ``forward`` takes (N, C, size, size) images in [0, 1] and returns N logits.
    """

    def __init__(self, image_size: int = 96, channels: int = 3, width: int = 64) -> None:
        super().__init__()
        if image_size % 16 or image_size < 16:
            raise ConfigError(
                f"the SRGAN discriminator halves the crop four times; image_size must be a "
                f"multiple of 16, got {image_size}."
            )
        self.image_size = image_size
        layers: list[nn.Module] = []
        c_in = channels
        for i in range(8):
            c_out = width * 2 ** (i // 2)
            layers.append(nn.Conv2d(c_in, c_out, 3, stride=1 + i % 2, padding=1))
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        side = image_size // 16
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c_in * side * side, 1024),
            nn.LeakyReLU(0.2),
            nn.Linear(1024, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ConfigError(
                f"this discriminator was built for {self.image_size} px crops; got "
                f"{x.shape[-2]}x{x.shape[-1]}."
            )
        return self.classifier(self.features(x * 2 - 1)).squeeze(1)


def find_vgg19_weights(path: str | Path | None = None) -> Path | None:
    """The local VGG19 weights: ``path`` if given, else torch hub's cached ``vgg19-dcbb9e9d.pth``.

    Returns None when no file is found (nothing is ever downloaded).

    Raises:
        ConfigError: an explicit ``path`` does not exist.
    """
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"VGG19 weights not found at {path}; give the torchvision vgg19 state_dict "
                f"({VGG19_FILE}) or a file with its 'features.N.*' keys for N < {VGG54_LAYERS}."
            )
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    return cached if cached.is_file() else None


def vgg54_features(weights: str | Path) -> nn.Sequential:
    """torchvision's ``vgg19().features[:36]`` (up to conv5_4 + ReLU), loaded from ``weights``.

    ``weights`` holds a torchvision VGG19 state_dict, either whole or only its
    ``features.N.*`` entries for N < 36 (any float dtype); it is read with
    ``torch.load(weights_only=True)``.
    The returned module is frozen and in eval mode.

    Raises:
        CheckpointError: the file cannot be read or lacks a needed tensor.
    """
    from torchvision.models.vgg import cfgs, make_layers

    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"cannot read VGG19 weights {weights}: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{weights} does not hold a state_dict.")
    with torch.device("meta"):  # no random init: every tensor comes from the file
        features = make_layers(cfgs["E"])[:VGG54_LAYERS]
    wanted = {}
    for key, like in features.state_dict().items():
        full = f"features.{key}"
        if full not in state:
            raise CheckpointError(
                f"{weights} has no '{full}': it is not a torchvision VGG19 state_dict."
            )
        if tuple(state[full].shape) != tuple(like.shape):
            raise CheckpointError(
                f"{weights}: '{full}' has shape {tuple(state[full].shape)}, VGG19 needs "
                f"{tuple(like.shape)}."
            )
        wanted[key] = state[full].float()
    features.load_state_dict(wanted, assign=True)
    features.eval().requires_grad_(False)
    return features


class VGGContentLoss(nn.Module):
    """l_VGG/5,4 (Ledig et al. 2017, Eq. 5): MSE of rescaled VGG19 conv5_4 features.

    Images in [0, 1] are normalised with ImageNet's mean and std (torchvision's
    convention) before the network; the feature MSE is multiplied by
    ``rescale**2`` (1/12.75^2: the paper's 1/12.75 on the feature maps).
    """

    def __init__(self, features: nn.Module, rescale: float = VGG_RESCALE) -> None:
        super().__init__()
        self.features = features
        self.rescale = rescale
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        a = self.features((sr - self.mean) / self.std)
        with torch.no_grad():
            b = self.features((hr - self.mean) / self.std)
        return F.mse_loss(a, b) * self.rescale**2


def build_vgg54_loss(weights: str | Path) -> VGGContentLoss:
    """The VGG54 content loss from local VGG19 weights (see :func:`vgg54_features`)."""
    return VGGContentLoss(vgg54_features(weights))
