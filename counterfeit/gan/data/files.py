"""Standard dataset files read from a user-given ``data_root``.

Each loader accepts the layout the dataset is published in (or torchvision's),
and also a NumPy ``NAME.npz`` holding uint8 ``x_train, y_train, x_test, y_test``.
When files are missing the error names the files it looked for and how to get
them; ``download=True`` is passed through to torchvision where a network exists.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _root(data_root: str | Path | None, dataset: str) -> Path:
    if data_root is None:
        raise DataError(
            f"{dataset} needs a data root: set data.root in the recipe or pass "
            f"--set data.root=DIR (see docs/data.md for the expected files)."
        )
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DataError(f"{dataset}: data root {root} is not a directory.")
    return root


def _split_key(split: str) -> str:
    if split not in ("train", "test"):
        raise DataError(f"unknown split '{split}'; use 'train' or 'test'.")
    return split


def load_npz(path: Path, split: str, name: str) -> ImageTensors:
    """Read ``x_<split>`` and ``y_<split>`` from an ``.npz`` file."""
    split = _split_key(split)
    with np.load(path) as archive:
        missing = [k for k in (f"x_{split}", f"y_{split}") if k not in archive.files]
        if missing:
            raise DataError(
                f"{path} lacks {', '.join(missing)} (it has {', '.join(archive.files)})."
            )
        return ImageTensors.from_numpy(
            archive[f"x_{split}"], archive[f"y_{split}"], f"{name}/{split}"
        )


def _torchvision(
    name: str, root: Path, expected: str, build: Callable[[], object], download: bool
) -> object:
    try:
        return build()
    except (RuntimeError, FileNotFoundError, OSError) as exc:
        hint = "" if download else " or set data.download: true where a network is available"
        raise DataError(
            f"{name} not found under {root}: expected {root}/{name.lower()}.npz or {expected}. "
            f"Copy the files there{hint}. ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        ) from None


def load_mnist(data_root: str | Path | None, split: str, download: bool = False) -> ImageTensors:
    """MNIST (60,000 train / 10,000 test, 1x28x28).

    Layouts: ``ROOT/mnist.npz``, or torchvision's ``ROOT/MNIST/raw/*-idx?-ubyte[.gz]``.
    """
    root = _root(data_root, "MNIST")
    if (root / "mnist.npz").is_file():
        return load_npz(root / "mnist.npz", split, "mnist")
    from torchvision.datasets import MNIST

    ds = _torchvision(
        "MNIST",
        root,
        f"{root}/MNIST/raw/train-images-idx3-ubyte (torchvision layout)",
        lambda: MNIST(str(root), train=_split_key(split) == "train", download=download),
        download,
    )
    return ImageTensors(ds.data[:, None].contiguous(), ds.targets, f"mnist/{split}")  # type: ignore[attr-defined]


def load_mnistm(data_root: str | Path | None, split: str) -> ImageTensors:
    """MNIST-M as released by Ganin et al. (59,001 train / 9,001 test, 3x32x32).

    Layouts: ``ROOT/mnistm.npz``, or the original release
    ``ROOT/mnist_m/mnist_m_{train,test}/*.png`` with ``mnist_m_{train,test}_labels.txt``
    (lines ``FILENAME LABEL``); ``ROOT`` may also be the ``mnist_m`` folder itself.
    """
    root = _root(data_root, "MNIST-M")
    split = _split_key(split)
    if (root / "mnistm.npz").is_file():
        return load_npz(root / "mnistm.npz", split, "mnist-m")
    for base in (root / "mnist_m", root):
        labels_file = base / f"mnist_m_{split}_labels.txt"
        image_dir = base / f"mnist_m_{split}"
        if labels_file.is_file() and image_dir.is_dir():
            names, labels = [], []
            for line_no, line in enumerate(labels_file.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                parts = line.split()
                if len(parts) != 2 or not parts[1].isdigit():
                    raise DataError(
                        f"{labels_file}:{line_no}: expected 'FILENAME LABEL', got {line!r}."
                    )
                names.append(parts[0])
                labels.append(int(parts[1]))
            images = np.stack([_read_rgb(image_dir / n) for n in names])
            return ImageTensors.from_numpy(images, np.array(labels), f"mnist-m/{split}")
    raise DataError(
        f"MNIST-M not found under {root}: expected {root}/mnistm.npz or the original release "
        f"{root}/mnist_m/mnist_m_{split}/*.png with {root}/mnist_m/mnist_m_{split}_labels.txt "
        "(from Ganin et al.'s project page)."
    )


def load_usps(data_root: str | Path | None, split: str, download: bool = False) -> ImageTensors:
    """USPS (7,291 train / 2,007 test, 1x16x16).

    Layouts: ``ROOT/usps.npz``, or torchvision's ``ROOT/usps.bz2`` / ``ROOT/usps.t.bz2``.
    """
    root = _root(data_root, "USPS")
    if (root / "usps.npz").is_file():
        return load_npz(root / "usps.npz", split, "usps")
    from torchvision.datasets import USPS

    ds = _torchvision(
        "USPS",
        root,
        f"{root}/usps.bz2 and {root}/usps.t.bz2 (torchvision layout)",
        lambda: USPS(str(root), train=_split_key(split) == "train", download=download),
        download,
    )
    return ImageTensors.from_numpy(np.asarray(ds.data), np.asarray(ds.targets), f"usps/{split}")  # type: ignore[attr-defined]


def load_svhn(data_root: str | Path | None, split: str, download: bool = False) -> ImageTensors:
    """SVHN cropped digits (73,257 train / 26,032 test, 3x32x32).

    Layouts: ``ROOT/svhn.npz``, or torchvision's ``ROOT/{train,test}_32x32.mat``.
    """
    root = _root(data_root, "SVHN")
    if (root / "svhn.npz").is_file():
        return load_npz(root / "svhn.npz", split, "svhn")
    from torchvision.datasets import SVHN

    ds = _torchvision(
        "SVHN",
        root,
        f"{root}/{split}_32x32.mat (torchvision layout)",
        lambda: SVHN(str(root), split=_split_key(split), download=download),
        download,
    )
    return ImageTensors(torch.from_numpy(ds.data), torch.from_numpy(ds.labels), f"svhn/{split}")  # type: ignore[attr-defined]


def find_images(folder: Path, recursive: bool = False) -> list[Path]:
    """The image files (by suffix, :data:`IMAGE_SUFFIXES`) in ``folder``, sorted; with
    ``recursive`` also those in its sub-folders. Hidden files are left out."""
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        path
        for path in candidates
        if path.suffix.lower() in IMAGE_SUFFIXES
        and not path.name.startswith(".")
        and path.is_file()
    )


def load_image_folder(
    path: str | Path, size: int, channels: int = 3, skip_unreadable: bool = False
) -> ImageTensors:
    """A user's own images, resized to ``size`` x ``size``.

    ``path/CLASS/*.png`` (sub-folders, sorted, are the classes 0, 1, ...) gives a
    labelled domain; a flat folder of images gives an unlabeled one. Class
    folders named ``0`` ... ``9`` map to those digits.

    A file that is not a readable image is an error naming it; with ``skip_unreadable``
    it is left out with a warning that names it instead.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist.")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files: list[Path] = []
    labels: list[int] = []
    if class_dirs:
        numeric = all(d.name.isdigit() for d in class_dirs)
        for index, class_dir in enumerate(class_dirs):
            label = int(class_dir.name) if numeric else index
            found = find_images(class_dir)
            files += found
            labels += [label] * len(found)
    else:
        files = find_images(root)
    if not files:
        raise DataError(
            f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {root} or its class sub-folders."
        )
    arrays, kept = read_image_files(files, size, channels, skip_unreadable)
    return ImageTensors.from_numpy(
        np.stack(arrays),
        np.array([labels[i] for i in kept]) if class_dirs else None,
        f"folder:{root.name}",
    )


def read_image_files(
    files: list[Path], size: int, channels: int = 3, skip_unreadable: bool = False
) -> tuple[list[np.ndarray], list[int]]:
    """``files`` read as ``size`` x ``size`` uint8 arrays (``channels`` 1: grey, 3: RGB),
    with the indices of the files that were read.

    A file that is not a readable image is an error naming it; with ``skip_unreadable`` it
    is left out with a warning that names it instead.
    """
    mode = "RGB" if channels == 3 else "L"
    arrays, kept, unreadable = [], [], []
    for index, file in enumerate(files):
        try:
            with Image.open(file) as image:
                resized = image.convert(mode).resize((size, size), Image.BILINEAR)
        except OSError as exc:  # PIL.UnidentifiedImageError, truncated files
            if not skip_unreadable:
                raise DataError(
                    f"cannot read image {file}: {exc}. Remove or replace it, or skip unreadable "
                    "images (skip_unreadable=True; on the command line --skip-unreadable)."
                ) from None
            unreadable.append(file)
            continue
        arrays.append(np.asarray(resized))
        kept.append(index)
    if unreadable:
        names = ", ".join(str(f) for f in unreadable[:5])
        more = f" and {len(unreadable) - 5} more" if len(unreadable) > 5 else ""
        warnings.warn(f"skipped {len(unreadable)} unreadable image(s): {names}{more}", stacklevel=3)
    if not arrays:
        raise DataError(f"none of the {len(files)} images could be read.")
    return arrays, kept


def _read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def collect_image_files(inputs: list[str | Path]) -> list[Path]:
    """Image files, and every image under the given folders (recursively, sorted)."""
    files: list[Path] = []
    for given in inputs:
        path = Path(given).expanduser()
        if path.is_dir():
            found = find_images(path, recursive=True)
            if not found:
                raise DataError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"image not found: {path}")
    return files


def read_image_batch(
    inputs: list[str | Path], size: int, channels: int, skip_unreadable: bool = False
) -> tuple[list[Path], torch.Tensor]:
    """The image files given and under the given folders (:func:`collect_image_files`),
    read as one float batch in [0, 1] of ``size`` x ``size``, with the files that were read."""
    files = collect_image_files(inputs)
    arrays, kept = read_image_files(files, size, channels, skip_unreadable)
    batch = ImageTensors.from_numpy(np.stack(arrays), None, "images").as_floats()[0]
    return [files[i] for i in kept], batch
