"""``counterfeit translate``: write an adapted copy of a dataset with a trained generator.

Works for any trained method whose checkpoint records how to rebuild it and
that has ``translate(x) -> images in [0, 1]`` and ``source_shape``: PixelDA,
CycleGAN (A -> B) and Pix2Pix, through one code path. Labels are kept, so the output can train a
user's own models: as an image folder (``OUT/CLASS/NNNNNN.png``, readable as the
``image-folder`` domain) or as one ``.npz`` with ``x_<split>``/``y_<split>``
(readable by the MNIST-style loaders).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
from counterfeit.gan.checkpoint import load_method
from counterfeit.gan.data.domains import DOMAINS, DomainSpec, build_domain
from counterfeit.gan.data.files import load_image_folder
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import ConfigError
from counterfeit.recipes.tasks.common.adaptation import translate_dataset
from PIL import Image
from torch import nn


def translators() -> dict[str, type[nn.Module]]:
    """Methods whose checkpoints ``translate`` can use, by class name."""
    from counterfeit.adapt.pixelda import PixelDA
    from counterfeit.gan.models.cyclegan import CycleGAN
    from counterfeit.gan.models.pix2pix import Pix2Pix

    return {"PixelDA": PixelDA, "CycleGAN": CycleGAN, "Pix2Pix": Pix2Pix}


def load_translator(checkpoint: str | Path) -> nn.Module:
    """Rebuild a trained generator method from its training checkpoint (weights_only)."""
    known = translators()
    return load_method(
        checkpoint,
        known,
        f"translate works with {', '.join(known)} checkpoints "
        "(e.g. runs/digits-pixelda/checkpoints/pixelda.ckpt).",
    )


def load_input(
    data: str, data_root: str | None, split: str, shape: tuple[int, int, int], limit: int | None
) -> ImageTensors:
    """A domain name (with ``data_root`` for file-backed ones) or a folder of images."""
    channels, size, _ = shape
    if data in DOMAINS:
        dataset = build_domain(DomainSpec(name=data, root=data_root), split, size, channels)
    elif Path(data).is_dir():
        dataset = load_image_folder(data, size, channels)
    else:
        raise ConfigError(
            f"--data '{data}' is neither a known domain ({', '.join(sorted(DOMAINS))}) nor a folder."
        )
    return dataset.take(limit)


def write_dataset(dataset: ImageTensors, out: Path, fmt: Literal["png", "npz"], split: str) -> Path:
    """Write images (and labels) as a class-folder tree of PNGs or one npz."""
    out.mkdir(parents=True, exist_ok=True)
    images = dataset.images.permute(0, 2, 3, 1).numpy()
    if images.shape[-1] == 1:
        images = images[..., 0]
    if fmt == "npz":
        path = out / "adapted.npz"
        np.savez_compressed(path, **{f"x_{split}": images, f"y_{split}": dataset.labels.numpy()})
        return path
    for i, (image, label) in enumerate(zip(images, dataset.labels.tolist())):
        folder = out / (str(label) if label >= 0 else "unlabeled")
        folder.mkdir(exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:06d}.png")
    return out


def run_translate(
    checkpoint: str,
    data: str,
    out: str,
    data_root: str | None = None,
    split: str = "train",
    limit: int | None = None,
    fmt: Literal["png", "npz"] = "png",
    batch_size: int = 256,
    seed: int = 0,
    device: str = "cpu",
) -> Path:
    """The ``counterfeit translate`` command; returns what it wrote."""
    from counterfeit.gan.runtime import resolve_device

    model = load_translator(checkpoint).to(resolve_device(device))
    shape = tuple(model.source_shape)
    dataset = load_input(data, data_root, split, shape, limit)
    adapted = translate_dataset(model, dataset, batch_size, seed, progress=True)
    written = write_dataset(adapted, Path(out), fmt, split)
    (Path(out) / "translate.json").write_text(
        json.dumps(
            {
                "checkpoint": str(checkpoint),
                "data": data,
                "data_root": data_root,
                "split": split,
                "images": len(adapted),
                "format": fmt,
                "seed": seed,
                "written": str(written),
            },
            indent=2,
        )
    )
    print(f"wrote {len(adapted)} adapted images to {written}")
    return written
