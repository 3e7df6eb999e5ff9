"""Network building blocks and families shared by every method."""

from gan.nets.backbones import BACKBONES, backbone_names, build_backbone, count_parameters
from gan.nets.blocks import (
    ChannelShift,
    activation,
    conv_block,
    init_normal_,
    linear_block,
    mlp,
    norm_layer,
    output_features,
)
from gan.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from gan.nets.digits import ganin_mnist_features, ganin_svhn_features
from gan.nets.infogan import InfoGANDiscriminator, InfoGANGenerator
from gan.nets.patchgan import PatchGANDiscriminator, patchgan_layers_for, receptive_field

__all__ = [
    "BACKBONES",
    "ChannelShift",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "InfoGANDiscriminator",
    "InfoGANGenerator",
    "PatchGANDiscriminator",
    "activation",
    "backbone_names",
    "build_backbone",
    "conv_block",
    "count_parameters",
    "ganin_mnist_features",
    "ganin_svhn_features",
    "init_normal_",
    "linear_block",
    "mlp",
    "norm_layer",
    "output_features",
    "patchgan_layers_for",
    "receptive_field",
]
