"""Domains as datasets with one shape: uint8 images in memory, float [0, 1] batches.

See :mod:`gan.data.domains` for the registry of named domains.
"""

from counterfeit.gan.data.augment import Augment
from counterfeit.gan.data.blend import blend_with_photos
from counterfeit.gan.data.domains import DOMAINS, DomainSpec, build_domain, domain_names
from counterfeit.gan.data.embedded import mnist_small, sample_photos, sklearn_digits
from counterfeit.gan.data.files import (
    load_image_folder,
    load_mnist,
    load_mnistm,
    load_svhn,
    load_usps,
)
from counterfeit.gan.data.loaders import InfiniteLoader, ZipLoader
from counterfeit.gan.data.paired import PairedImages, edges2digits, load_paired_folder
from counterfeit.gan.data.synthetic import DigitStyle, render_digits
from counterfeit.gan.data.tensors import UNLABELED, ImageTensors

__all__ = [
    "DOMAINS",
    "UNLABELED",
    "Augment",
    "DigitStyle",
    "DomainSpec",
    "ImageTensors",
    "InfiniteLoader",
    "PairedImages",
    "ZipLoader",
    "blend_with_photos",
    "build_domain",
    "domain_names",
    "edges2digits",
    "load_image_folder",
    "load_mnist",
    "load_mnistm",
    "load_paired_folder",
    "load_svhn",
    "load_usps",
    "mnist_small",
    "render_digits",
    "sample_photos",
    "sklearn_digits",
]
