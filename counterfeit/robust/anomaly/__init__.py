"""Anomaly detection: which inputs a model should not trust.

One contract (:class:`AnomalyDetector`: ``fit(normal_images)``, ``score(images)`` with
higher = more anomalous, ``residual_map(images)``); the baselines any GAN detector must beat
(a convolutional autoencoder, PCA reconstruction, k-nearest-neighbour distance on pixels or
features); AnoGAN (Schlegl et al., IPMI 2017), f-AnoGAN (Schlegl et al., MedIA 2019) and
GANomaly (Akcay et al., ACCV 2018); and the protocols that measure them without showing
test labels to anything but the metrics (one-class, leave-one-class-out; AUROC, AUPRC, a
threshold set on normal data)::

    from counterfeit.robust.anomaly import KNNDistance, evaluate_protocol
    report = evaluate_protocol(lambda: KNNDistance(k=5), (x_train, y_train), (x_test, y_test))
    report.mean["auroc"]

A fitted detector is calibrated on held-out normal images, saved, and loaded where it is
deployed (``counterfeit anomaly fit`` / ``score`` do this from the command line)::

    detector = build_detector("f-anogan", width=32).fit(normal_train)
    detector.calibrate(normal_val, false_alarm=0.05)
    detector.save("detector.pt")
    load_detector("detector.pt").flag(new_images)
"""

from counterfeit.robust.anomaly.anogan import AnoGAN
from counterfeit.robust.anomaly.autoencoder import AutoencoderDetector, ConvAutoencoder
from counterfeit.robust.anomaly.base import (
    AnomalyDetector,
    NetworkDetector,
    check_images,
    threshold_at_false_alarm,
)
from counterfeit.robust.anomaly.baselines import KNNDistance, PCAReconstruction
from counterfeit.robust.anomaly.fanogan import FAnoGAN, IziEncoder
from counterfeit.robust.anomaly.ganomaly import GANomaly, GANomalyNet
from counterfeit.robust.anomaly.plots import (
    auroc_grid_figure,
    roc_figure,
    score_histogram_figure,
    shift_auroc_figure,
    top_anomalies_figure,
)
from counterfeit.robust.anomaly.protocol import (
    ClassResult,
    ProtocolReport,
    Round,
    detection_scores,
    evaluate_protocol,
    evaluate_round,
    hold_out,
)
from counterfeit.robust.anomaly.registry import (
    DETECTORS,
    build_detector,
    detector_settings,
    load_detector,
)

__all__ = [
    "DETECTORS",
    "AnoGAN",
    "AnomalyDetector",
    "AutoencoderDetector",
    "ClassResult",
    "ConvAutoencoder",
    "FAnoGAN",
    "GANomaly",
    "GANomalyNet",
    "IziEncoder",
    "KNNDistance",
    "NetworkDetector",
    "PCAReconstruction",
    "ProtocolReport",
    "Round",
    "auroc_grid_figure",
    "build_detector",
    "check_images",
    "detection_scores",
    "detector_settings",
    "evaluate_protocol",
    "evaluate_round",
    "hold_out",
    "load_detector",
    "roc_figure",
    "score_histogram_figure",
    "shift_auroc_figure",
    "threshold_at_false_alarm",
    "top_anomalies_figure",
]
