"""``counterfeit sample``: a grid of images from a trained generator's checkpoint.

    counterfeit sample --checkpoint runs/mnist-biggan/checkpoints/biggan.ckpt --class 7 \\
        --n 64 --truncation 0.7 --out grid.png

BigGAN draws the class asked for (``--class``; default: the classes in turn) from z
truncated at ``--truncation`` (Brock et al. 2019, Sec. 3.1); a DCGAN checkpoint (conditional
or not), InfoGAN and ProGAN (at the size its growth reached, upsampled to its full size) draw
from their own prior; a text-to-image GAN draws ``--text`` (a caption in its words). The
weight-averaged generator is used when
the checkpoint keeps one (``--last-iterate``: the trained one).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from counterfeit.gan.checkpoint import load_method
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.plots import save_image_grid
from counterfeit.gan.runtime import resolve_device


def samplers() -> dict[str, type[nn.Module]]:
    """Methods whose checkpoints ``sample`` reads, by class name."""
    from counterfeit.gan.models import DCGAN, BigGAN, InfoGAN, ProGAN, TextToImageGAN

    return {
        "BigGAN": BigGAN,
        "DCGAN": DCGAN,
        "InfoGAN": InfoGAN,
        "ProGAN": ProGAN,
        "TextToImageGAN": TextToImageGAN,
    }


def run_sample(
    checkpoint: str | Path,
    out: str | Path,
    n: int = 64,
    image_class: int | None = None,
    truncation: float | None = None,
    seed: int = 0,
    last_iterate: bool = False,
    device: str = "cpu",
    text: str | None = None,
) -> Path:
    """The ``counterfeit sample`` command; returns the written grid."""
    known = samplers()
    model = load_method(
        checkpoint,
        known,
        f"sample works with {', '.join(known)} checkpoints "
        "(e.g. runs/mnist-biggan/checkpoints/biggan.ckpt).",
    ).to(resolve_device(device))
    name = type(model).__name__
    classes = getattr(model, "num_classes", 0)
    if truncation is not None and name != "BigGAN":
        raise ConfigError(f"--truncation is BigGAN's; {checkpoint} holds a {name}.")
    if (text is not None) != (name == "TextToImageGAN"):
        raise ConfigError(
            f"--text is for a text-to-image GAN's checkpoint; {checkpoint} holds a {name}"
            + (" (give --text)." if text is None else ".")
        )
    if image_class is not None and not classes:
        raise ConfigError(f"--class needs a class-conditional generator; {checkpoint} is not one.")
    if image_class is not None and not 0 <= image_class < classes:
        raise ConfigError(f"--class {image_class}: this generator draws classes 0-{classes - 1}.")
    generator = torch.Generator().manual_seed(seed)
    labels = None
    if classes:
        labels = (
            torch.full((n,), image_class) if image_class is not None else torch.arange(n) % classes
        ).to(model.fixed_z.device)
    kwargs = {"truncation": truncation} if name == "BigGAN" else {}
    with torch.no_grad():
        if text is not None:
            images = model.sample_texts([text] * n, generator, ema=not last_iterate)
        elif labels is not None:
            images = model.sample(n, labels, generator=generator, ema=not last_iterate, **kwargs)
        else:
            images = model.sample(n, generator=generator, ema=not last_iterate)
    nrow = classes if image_class is None and classes else math.ceil(math.sqrt(n))
    path = save_image_grid(images, out, nrow)
    record = {
        "checkpoint": str(checkpoint), "method": name, "n": n, "class": image_class,
        "truncation": truncation, "text": text, "seed": seed, "generator": "last iterate" if last_iterate
        else "weight average (when kept)",
    }  # fmt: skip
    path.with_suffix(".json").write_text(json.dumps(record, indent=2))
    print(f"wrote {n} {name} samples to {path}")
    return path


def fit_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad (or centre-crop) square images to ``size``: a 28 px generator's digits sit
    in a 32 px frame as real digits padded by 2 px do, and 32 px ones lose only padding."""
    margin = size - images.shape[-1]
    if margin >= 0:
        return torch.nn.functional.pad(images, (margin // 2, margin - margin // 2) * 2)
    start = -margin // 2
    return images[..., start : start + size, start : start + size]


def draw_from_checkpoint(
    checkpoint: str | Path,
    counts: list[int],
    size: int,
    channels: int,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> list[torch.Tensor]:
    """Image sets in [0, 1] of ``counts`` images each, drawn (the weight average when kept)
    from a generator's training checkpoint and fitted to ``size`` (:func:`fit_size`); set
    ``i`` from a generator seeded ``seed * 1000 + i``."""
    known = samplers()
    model = load_method(checkpoint, known, f"a fake source is a {', '.join(known)} checkpoint.")
    model = model.to(resolve_device(str(device)))
    sets = []
    for offset, n in enumerate(counts):
        generator = torch.Generator().manual_seed(seed * 1000 + offset)
        with torch.no_grad():
            images = torch.cat(
                [model.sample(len(c), generator=generator).float().cpu()
                 for c in torch.arange(n).split(500)]
            )  # fmt: skip
        if images.shape[1] != channels:
            raise ConfigError(
                f"{checkpoint} draws {images.shape[1]}-channel images; the real ones have "
                f"{channels}."
            )
        sets.append(fit_size(images, size))
    return sets


def translate_with_checkpoint(
    checkpoint: str | Path,
    sources: list[torch.Tensor],
    edges: str = "canny",
    device: str | torch.device = "cpu",
) -> list[torch.Tensor]:
    """Counterfeits of real images by an image-to-image generator: each set of ``sources``
    (grey images in [0, 1], (N, 1, H, W)) turned into its edge maps
    (:func:`~counterfeit.gan.data.paired.digit_edges`, ``canny`` or ``skeleton``) and
    translated back to images by a Pix2Pix checkpoint (eval mode)."""
    from counterfeit.gan.data.paired import digit_edges
    from counterfeit.gan.models import Pix2Pix

    model = load_method(
        checkpoint, {"Pix2Pix": Pix2Pix}, "a translating fake source is a Pix2Pix checkpoint."
    )
    model = model.to(resolve_device(str(device))).eval()
    device = next(model.parameters()).device
    translated = []
    for images in sources:
        if images.shape[1] != 1:
            raise ConfigError(
                f"edge maps are taken of grey images; these have {images.shape[1]} channels."
            )
        grey = images[:, 0].cpu().mul(255).round().to(torch.uint8).numpy()
        inputs = torch.from_numpy(digit_edges(grey, edges)).float().div(255)[:, None]
        with torch.no_grad():
            translated.append(
                torch.cat([model.translate(c.to(device)).float().cpu() for c in inputs.split(500)])
            )
    return translated
