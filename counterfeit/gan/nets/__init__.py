"""Network building blocks and families shared by every method."""

from counterfeit.gan.nets.backbones import (
    BACKBONES,
    backbone_names,
    build_backbone,
    count_parameters,
    digits_classifier,
)
from counterfeit.gan.nets.blocks import (
    ChannelShift,
    activation,
    conv_block,
    init_normal_,
    linear_block,
    mlp,
    norm_layer,
    output_features,
)
from counterfeit.gan.nets.dcgan import DCGANDiscriminator, DCGANEncoder, DCGANGenerator
from counterfeit.gan.nets.digits import ganin_mnist_features, ganin_svhn_features
from counterfeit.gan.nets.infogan import InfoGANDiscriminator, InfoGANGenerator
from counterfeit.gan.nets.patchgan import (
    PatchGANDiscriminator,
    patchgan_layers_for,
    receptive_field,
)
from counterfeit.gan.nets.resnet_generator import ResnetBlock, ResnetGenerator, resnet_blocks_for
from counterfeit.gan.nets.srgan import (
    SRGANDiscriminator,
    SRResNet,
    VGGContentLoss,
    build_vgg54_loss,
)
from counterfeit.gan.nets.unet import UNetBlock, UNetGenerator, dropout_levels, unet_depth_for

__all__ = [
    "BACKBONES",
    "ChannelShift",
    "DCGANDiscriminator",
    "DCGANEncoder",
    "DCGANGenerator",
    "InfoGANDiscriminator",
    "InfoGANGenerator",
    "PatchGANDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "SRGANDiscriminator",
    "SRResNet",
    "UNetBlock",
    "UNetGenerator",
    "VGGContentLoss",
    "activation",
    "backbone_names",
    "build_backbone",
    "build_vgg54_loss",
    "conv_block",
    "count_parameters",
    "digits_classifier",
    "dropout_levels",
    "ganin_mnist_features",
    "ganin_svhn_features",
    "init_normal_",
    "linear_block",
    "mlp",
    "norm_layer",
    "output_features",
    "patchgan_layers_for",
    "receptive_field",
    "resnet_blocks_for",
    "unet_depth_for",
]
