"""``counterfeit translate``: write an adapted copy of a dataset with a trained generator.

Works for any trained method whose checkpoint records how to rebuild it and
that has ``translate(x) -> images in [0, 1]`` and ``source_shape``: PixelDA,
CycleGAN (A -> B) and Pix2Pix, through one code path. Labels are kept, so the output can train a
user's own models: as an image folder (``OUT/CLASS/NNNNNN.png``, readable as the
``image-folder`` domain) or as one ``.npz`` with ``x_<split>``/``y_<split>``
(readable by the MNIST-style loaders).

A checkpoint that records the source domain it was trained on (PixelDA's
``source_spec``) is translated on that domain's settings when ``--data`` names the
same domain (the pen-stroke style of ``synthetic-digits``, say, not its default
font glyphs); other data is translated with a warning that it differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from torch import nn

from counterfeit.gan.checkpoint import load_method
from counterfeit.gan.data.domains import DOMAINS, DomainSpec, build_domain
from counterfeit.gan.data.files import load_image_folder
from counterfeit.gan.data.tensors import ImageTensors
from counterfeit.gan.errors import ConfigError
from counterfeit.recipes.tasks.common.adaptation import translate_dataset


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


def trained_source(model: nn.Module) -> DomainSpec | None:
    """The source domain a generator was trained on, when its checkpoint records it."""
    spec = getattr(model, "hparams", {}).get("source_spec")
    return DomainSpec.model_validate(spec) if spec else None


def load_input(
    data: str,
    data_root: str | None,
    split: str,
    shape: tuple[int, int, int],
    limit: int | None,
    trained: DomainSpec | None = None,
) -> ImageTensors:
    """A domain name (with ``data_root`` for file-backed ones) or a folder of images.

    With ``trained`` (the domain the generator learned from), a ``data`` that names the
    same domain is built with its settings; any other ``data`` is loaded with a warning.
    """
    channels, size, _ = shape
    if data in DOMAINS:
        spec = input_spec(data, data_root, split, limit, trained)
        dataset = build_domain(spec, split, size, channels)
    elif Path(data).is_dir():
        if trained is not None:
            _warn_differs(trained, f"the image folder {data}")
        dataset = load_image_folder(data, size, channels)
    else:
        raise ConfigError(
            f"--data '{data}' is neither a known domain ({', '.join(sorted(DOMAINS))}) nor a folder."
        )
    return dataset.take(limit)


def input_spec(
    data: str, data_root: str | None, split: str, limit: int | None, trained: DomainSpec | None
) -> DomainSpec:
    """The spec of domain ``data``: the trained one's settings when it is the same domain."""
    if trained is None or trained.name != data:
        if trained is not None:
            _warn_differs(trained, f"'{data}'")
        return DomainSpec(name=data, root=data_root)
    count = "n" if split == "train" else "n_test"
    update: dict[str, Any] = {count: _at_most(getattr(trained, count), limit)}
    if data_root is not None:
        update["root"] = data_root
    spec = trained.model_copy(update=update)
    print(f"--data {data}: the settings the generator was trained on ({_settings(spec)})")
    return spec


def _at_most(n: int | None, limit: int | None) -> int | None:
    return n if limit is None else limit if n is None else min(n, limit)


def _settings(spec: DomainSpec) -> str:
    """A domain spec's non-default settings, e.g. ``style={'fonts': ['strokes']}, n=10000``."""
    values = spec.model_dump(mode="json", exclude_defaults=True, exclude={"name"})
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "the defaults"


def _warn_differs(trained: DomainSpec, given: str) -> None:
    print(
        f"warning: this generator was trained on '{trained.name}' ({_settings(trained)}); "
        f"{given} differs, so its output may not look like what it learned. Pass "
        f"--data {trained.name} to translate the domain it was trained on.",
        file=sys.stderr,
        flush=True,
    )


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
    trained = trained_source(model)
    dataset = load_input(data, data_root, split, shape, limit, trained)
    adapted = translate_dataset(model, dataset, batch_size, seed, progress=True)
    written = write_dataset(adapted, Path(out), fmt, split)
    (Path(out) / "translate.json").write_text(
        json.dumps(
            {
                "checkpoint": str(checkpoint),
                "data": data,
                "data_root": data_root,
                "trained_source": trained.model_dump(mode="json") if trained else None,
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
