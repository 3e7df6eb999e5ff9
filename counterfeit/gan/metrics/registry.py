"""Feature extractors by name, in the way of torch-fidelity's ``registry.py``.

:data:`FEATURE_EXTRACTORS` maps a name to a :class:`~gan.metrics.base.FeatureExtractor`
subclass; :func:`register_feature_extractor` adds one, :func:`build_extractor` builds one
by name (with the class's :meth:`~gan.metrics.base.FeatureExtractor.from_weights`).
Registered here: ``digits`` (:class:`DigitsFeatures`) and ``inception``
(:class:`InceptionFeatures`).
"""

from __future__ import annotations

from pathlib import Path

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.metrics.base import FeatureExtractor
from counterfeit.gan.metrics.digits import DigitsFeatures
from counterfeit.gan.metrics.inception import InceptionFeatures

FEATURE_EXTRACTORS: dict[str, type[FeatureExtractor]] = {}


def register_feature_extractor(name: str, cls: type[FeatureExtractor]) -> None:
    """Make ``cls`` buildable by ``name`` with :func:`build_extractor`.

    Raises:
        ConfigError: ``name`` is empty, has surrounding spaces or is taken, or ``cls`` is
            not a :class:`FeatureExtractor` subclass.
    """
    if not isinstance(name, str) or not name or name.strip() != name:
        raise ConfigError(f"a feature extractor's name must be a non-empty word, got {name!r}.")
    if name in FEATURE_EXTRACTORS:
        raise ConfigError(f"feature extractor '{name}' is already registered.")
    if not (isinstance(cls, type) and issubclass(cls, FeatureExtractor)):
        raise ConfigError(f"feature extractor '{name}' must be a FeatureExtractor subclass.")
    FEATURE_EXTRACTORS[name] = cls


def feature_extractor_names() -> list[str]:
    """The registered names, sorted."""
    return sorted(FEATURE_EXTRACTORS)


def get_feature_extractor(name: str) -> type[FeatureExtractor]:
    """The feature extractor class registered as ``name``.

    Raises:
        ConfigError: no extractor has that name; the message lists the known ones.
    """
    cls = FEATURE_EXTRACTORS.get(name)
    if cls is None:
        known = " or ".join(feature_extractor_names())
        raise ConfigError(f"unknown feature extractor '{name}'; use {known}.")
    return cls


def build_extractor(kind: str, weights: str | Path | None = None) -> FeatureExtractor:
    """A feature extractor by name: ``digits`` (cached classifier) or ``inception``.

    Args:
        kind: a registered name (:func:`feature_extractor_names`).
        weights: a local weights file for extractors that take one (``inception``).
    """
    return get_feature_extractor(kind).from_weights(weights)


register_feature_extractor("digits", DigitsFeatures)
register_feature_extractor("inception", InceptionFeatures)
