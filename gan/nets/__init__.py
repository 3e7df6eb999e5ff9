"""Network building blocks and families shared by every method."""

from gan.nets.backbones import BACKBONES, backbone_names, build_backbone, count_parameters
from gan.nets.blocks import ChannelShift, mlp, output_features
from gan.nets.digits import ganin_mnist_features, ganin_svhn_features

__all__ = [
    "BACKBONES",
    "ChannelShift",
    "backbone_names",
    "build_backbone",
    "count_parameters",
    "ganin_mnist_features",
    "ganin_svhn_features",
    "mlp",
    "output_features",
]
