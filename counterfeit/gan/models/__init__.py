"""GANs as :class:`gan.TrainingMethod` subclasses, one file per model.

from counterfeit.gan.models import DCGAN, InfoGAN, CycleGAN, BigGAN, ProGAN, TextToImageGAN
"""

from counterfeit.gan.models.biggan import BigGAN
from counterfeit.gan.models.cyclegan import CycleGAN
from counterfeit.gan.models.dcgan import DCGAN, PAPER_OPTIMIZERS, OptimizerDefaults
from counterfeit.gan.models.infogan import InfoGAN
from counterfeit.gan.models.joint_embedding import JointEmbedding
from counterfeit.gan.models.pix2pix import Pix2Pix
from counterfeit.gan.models.progan import ProGAN
from counterfeit.gan.models.srgan import SRGAN
from counterfeit.gan.models.text2image import TextToImageGAN

__all__ = [
    "DCGAN",
    "PAPER_OPTIMIZERS",
    "SRGAN",
    "BigGAN",
    "CycleGAN",
    "InfoGAN",
    "JointEmbedding",
    "OptimizerDefaults",
    "Pix2Pix",
    "ProGAN",
    "TextToImageGAN",
]
