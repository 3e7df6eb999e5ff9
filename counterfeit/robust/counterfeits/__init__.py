"""Catching counterfeits: detectors of generated images (Wang et al., CVPR 2020; Frank et
al., ICML 2020), trained on real images against one generator's fakes with Blur+JPEG
augmentation, and the measures of how far they generalise and how robust they are.

    from counterfeit.robust.counterfeits import CounterfeitDetection, real_vs_fake
"""

from counterfeit.robust.counterfeits.augment import BlurJpeg
from counterfeit.robust.counterfeits.evaluation import (
    choose_threshold,
    degrade,
    detection_metrics,
    generalisation_matrix,
    score_metrics,
)
from counterfeit.robust.counterfeits.method import FAKE, REAL, CounterfeitDetection, real_vs_fake
from counterfeit.robust.counterfeits.nets import (
    DETECTOR_NETS,
    ConvDetector,
    SpectrumDetector,
    build_detector_net,
    fake_probability,
)
from counterfeit.robust.counterfeits.spectrum import log_spectrum

__all__ = [
    "DETECTOR_NETS",
    "FAKE",
    "REAL",
    "BlurJpeg",
    "ConvDetector",
    "CounterfeitDetection",
    "SpectrumDetector",
    "build_detector_net",
    "choose_threshold",
    "degrade",
    "detection_metrics",
    "fake_probability",
    "generalisation_matrix",
    "log_spectrum",
    "real_vs_fake",
    "score_metrics",
]
