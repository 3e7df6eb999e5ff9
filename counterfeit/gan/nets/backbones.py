"""A registry of feature extractors ("backbones") with the heads each was designed with.

Methods that need a feature extractor (DANN, source-only baselines, the
robustness CNNs) ask :func:`build_backbone` by name, so a recipe can swap the
paper's small digit network for a torchvision ResNet on a user's own images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from counterfeit.gan.checkpoint import load_checkpoint, load_module_state
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.nets.blocks import ChannelShift, mlp, output_features
from counterfeit.gan.nets.digits import ganin_mnist_features, ganin_svhn_features, lenet_features

IMAGENET_MEAN = (0.485, 0.456, 0.406)


@dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone, and the head widths its paper used."""

    build: Callable[[int, Sequence[float] | None, Path | None], nn.Module]
    label_hidden: tuple[int, ...]
    domain_hidden: tuple[int, ...]
    reference: str


def _resnet(name: str) -> Callable[[int, Sequence[float] | None, Path | None], nn.Module]:
    def build(in_channels: int, mean: Sequence[float] | None, weights: Path | None) -> nn.Module:
        import torchvision

        if in_channels != 3:
            raise ConfigError(f"backbone '{name}' needs 3-channel images, got {in_channels}.")
        net = getattr(torchvision.models, name)(weights=None)
        if weights is not None:
            state = load_checkpoint(weights)
            load_module_state(net, state.get("state_dict", state), str(weights))
        net.fc = nn.Identity()
        return nn.Sequential(ChannelShift(mean or IMAGENET_MEAN), net)

    return build


def _no_weights(fn: Callable[[int, Sequence[float] | None], nn.Module], name: str):
    def build(in_channels: int, mean: Sequence[float] | None, weights: Path | None) -> nn.Module:
        if weights is not None:
            raise ConfigError(
                f"backbone '{name}' is trained from scratch; it takes no weights file."
            )
        return fn(in_channels, mean)

    return build


BACKBONES: dict[str, BackboneSpec] = {
    "ganin-mnist": BackboneSpec(
        _no_weights(ganin_mnist_features, "ganin-mnist"),
        (100, 100),
        (100,),
        "Ganin et al. 2016, Fig. 4a (MNIST -> MNIST-M)",
    ),
    "ganin-svhn": BackboneSpec(
        _no_weights(ganin_svhn_features, "ganin-svhn"),
        (3072, 2048),
        (1024, 1024),
        "Ganin et al. 2016, Fig. 4b (SVHN, Syn digits)",
    ),
    "lenet": BackboneSpec(
        _no_weights(lenet_features, "lenet"),
        (),
        (500, 500),
        "LeCun et al. 1998, with TLlib's 500-unit bottleneck (28 x 28 digits)",
    ),
    "resnet18": BackboneSpec(_resnet("resnet18"), (256,), (1024, 1024), "He et al. 2016"),
    "resnet50": BackboneSpec(_resnet("resnet50"), (256,), (1024, 1024), "He et al. 2016"),
}


def backbone_names() -> list[str]:
    return sorted(BACKBONES)


def build_backbone(
    name: str,
    in_shape: tuple[int, int, int],
    mean: Sequence[float] | None = None,
    weights: str | Path | None = None,
) -> tuple[nn.Module, int, BackboneSpec]:
    """Build backbone ``name`` for images of ``in_shape`` (C, H, W).

    Args:
        mean: per-channel mean subtracted by the first layer (default 0.5, or
            ImageNet's mean for ResNets).
        weights: a local state_dict file (loaded with ``weights_only=True``);
            nothing is ever downloaded.

    Returns:
        (module, number of output features, spec with the paper's head widths).
    """
    spec = BACKBONES.get(name)
    if spec is None:
        raise ConfigError(f"unknown backbone '{name}'; known: {', '.join(backbone_names())}.")
    module = spec.build(in_shape[0], mean, Path(weights) if weights else None)
    try:
        features = output_features(module, in_shape)
    except RuntimeError as exc:
        raise ConfigError(
            f"backbone '{name}' cannot take images of shape {in_shape}: {str(exc).splitlines()[0]}"
        ) from None
    return module, features, spec


def digits_classifier(
    shape: tuple[int, int, int], num_classes: int = 10, backbone: str = "ganin-mnist"
) -> nn.Sequential:
    """A classifier: the backbone ``backbone`` (default Ganin et al. 2016's MNIST net) and its
    paper's label MLP; f_S of CycleGAN's semantic loss (CyCADA, Hoffman et al. 2018, Eq. 4).
    Takes images of ``shape`` (C, H, W) in [0, 1]; train one on the source domain."""
    features, n_features, spec = build_backbone(backbone, tuple(shape))
    return nn.Sequential(features, mlp(n_features, spec.label_hidden, num_classes))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
