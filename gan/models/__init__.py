"""GANs as :class:`gan.TrainingMethod` subclasses, one file per model.

from gan.models import DCGAN, InfoGAN
"""

from gan.models.dcgan import DCGAN, PAPER_OPTIMIZERS, OptimizerDefaults
from gan.models.infogan import InfoGAN

__all__ = ["DCGAN", "PAPER_OPTIMIZERS", "InfoGAN", "OptimizerDefaults"]
