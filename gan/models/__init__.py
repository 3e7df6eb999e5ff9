"""GANs as :class:`gan.TrainingMethod` subclasses, one file per model.

from gan.models import DCGAN, InfoGAN, CycleGAN
"""

from gan.models.cyclegan import CycleGAN
from gan.models.dcgan import DCGAN, PAPER_OPTIMIZERS, OptimizerDefaults
from gan.models.infogan import InfoGAN
from gan.models.pix2pix import Pix2Pix
from gan.models.srgan import SRGAN

__all__ = [
    "DCGAN",
    "PAPER_OPTIMIZERS",
    "SRGAN",
    "CycleGAN",
    "InfoGAN",
    "OptimizerDefaults",
    "Pix2Pix",
]
