"""Generative metrics: FID, KID and Inception Score with a registry of feature extractors.

* :mod:`.base`: :class:`FeatureExtractor`, images in [0, 1] to features and class logits;
* :mod:`.registry`: extractors by name (:func:`register_feature_extractor`,
  :func:`build_extractor`), in the way of torch-fidelity;
* :mod:`.digits`: :class:`DigitsFeatures`, a small digit classifier
  (:class:`DigitsClassifier`, :mod:`.digits_net`) that counterfeit trains on the embedded
  real MNIST digits and caches on disk (:mod:`.cache`). Its scores are ``fid-digits``,
  ``kid-digits`` and ``is-digits``: **not** comparable with Inception FIDs from papers;
* :mod:`.inception`: :class:`InceptionFeatures`, torchvision's Inception-v3 from a local
  weights file or the torch hub cache, never downloaded (``fid``, ``kid``, ``is``);
* :mod:`.scores`: :class:`GenerativeScores`, FID (Heusel et al. 2017), KID (Binkowski et
  al. 2018) and IS (Salimans et al. 2016), each a :class:`Score` with the number of real
  and generated images it used;
* :mod:`.clustering`: :func:`cluster_accuracy`, unsupervised cluster labels against
  classes (Hungarian matching), as InfoGAN's categorical code;
* :mod:`.conditional`: :func:`conditional_scores`, whether a class-conditional generator
  draws the class asked for (class accuracy) and how well (intra-class FID);
* :mod:`.precision_recall`: :func:`precision_recall` (Kynkäänniemi et al. 2019), realism and
  coverage apart: mode collapse shows as low recall.
"""

from counterfeit.gan.metrics.base import FeatureExtractor
from counterfeit.gan.metrics.cache import (
    CACHE_ENV,
    DIGITS_FORMAT,
    cache_dir,
    load_digits_classifier,
)
from counterfeit.gan.metrics.clustering import cluster_accuracy
from counterfeit.gan.metrics.conditional import ConditionalScores, conditional_scores
from counterfeit.gan.metrics.digits import DigitsFeatures
from counterfeit.gan.metrics.digits_net import (
    DIGITS_SIZE,
    DigitsClassifier,
    to_digit_input,
    train_digits_classifier,
)
from counterfeit.gan.metrics.inception import (
    TORCHVISION_INCEPTION,
    InceptionFeatures,
    find_inception_weights,
)
from counterfeit.gan.metrics.precision_recall import precision_recall
from counterfeit.gan.metrics.registry import (
    FEATURE_EXTRACTORS,
    build_extractor,
    feature_extractor_names,
    get_feature_extractor,
    register_feature_extractor,
)
from counterfeit.gan.metrics.scores import (
    GenerativeScores,
    MetricName,
    Score,
    generate_images,
    scores_to_dict,
    scores_to_metrics,
)

__all__ = [
    "CACHE_ENV",
    "DIGITS_FORMAT",
    "DIGITS_SIZE",
    "FEATURE_EXTRACTORS",
    "TORCHVISION_INCEPTION",
    "ConditionalScores",
    "DigitsClassifier",
    "DigitsFeatures",
    "FeatureExtractor",
    "GenerativeScores",
    "InceptionFeatures",
    "MetricName",
    "Score",
    "build_extractor",
    "cache_dir",
    "cluster_accuracy",
    "conditional_scores",
    "feature_extractor_names",
    "find_inception_weights",
    "generate_images",
    "get_feature_extractor",
    "load_digits_classifier",
    "precision_recall",
    "register_feature_extractor",
    "scores_to_dict",
    "scores_to_metrics",
    "to_digit_input",
    "train_digits_classifier",
]
