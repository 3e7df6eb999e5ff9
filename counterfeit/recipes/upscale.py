"""``counterfeit upscale``: super-resolve image files with a trained SRResNet / SRGAN.

    counterfeit upscale --checkpoint runs/photos-srgan/checkpoints/srgan.ckpt photo.png ... --out DIR

The method is rebuilt from its training checkpoint (loaded with
``weights_only=True``; only the generator is used, and the VGG loss is never
built). Each image is read with Pillow and converted to RGB (grey, palette and
RGBA images: alpha is dropped), upscaled by the checkpoint's factor in one pass
(no tiling: a 1000x1000 input needs a few GB of memory on CPU), and written as
``DIR/STEM_xS.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from counterfeit.gan.checkpoint import load_method
from counterfeit.gan.data.photos import check_images
from counterfeit.gan.errors import DataError
from counterfeit.gan.models.srgan import SRGAN

MIN_INPUT_SIZE = 4


def load_upscaler(checkpoint: str | Path) -> SRGAN:
    """Rebuild a trained :class:`gan.models.srgan.SRGAN` from its checkpoint, in eval mode.

    Raises:
        CheckpointError: the file is missing, unreadable, or not an SRGAN checkpoint.
    """
    return load_method(  # type: ignore[return-value]
        checkpoint,
        {"SRGAN": SRGAN},
        "upscale needs an SRGAN / SRResNet checkpoint "
        "(e.g. runs/photos-srgan/checkpoints/srgan.ckpt or srresnet.ckpt).",
        {"content": "mse", "vgg_weights": None},  # the generator only: never build VGG
    )


def read_image(path: str | Path) -> torch.Tensor:
    """An image file as a (1, 3, H, W) float tensor in [0, 1] (converted to RGB).

    Raises:
        DataError: the file is missing, not an image, or smaller than 4x4 px.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read {path} as an image: {exc}") from None
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float() / 255
    if min(tensor.shape[-2:]) < MIN_INPUT_SIZE:
        raise DataError(
            f"{path} is {tensor.shape[-2]}x{tensor.shape[-1]} px; upscale needs at least "
            f"{MIN_INPUT_SIZE}x{MIN_INPUT_SIZE}."
        )
    return tensor


def save_image(image: torch.Tensor, path: str | Path) -> Path:
    """Write a (3, H, W) tensor in [0, 1] as an 8-bit PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    Image.fromarray(np.ascontiguousarray(array)).save(path)
    return path


def upscale_tensor(model: SRGAN, images: torch.Tensor) -> torch.Tensor:
    """Super-resolve (N, 3, h, w) images in [0, 1]; raises DataError on a wrong shape."""
    check_images(images, "images to upscale", MIN_INPUT_SIZE)
    return model.upscale(images)


def run_upscale(
    checkpoint: str | Path, images: list[str], out: str | Path = "upscaled", device: str = "cpu"
) -> list[Path]:
    """The ``counterfeit upscale`` command; returns the written files."""
    from counterfeit.gan.runtime import resolve_device

    if not images:
        raise DataError("no images given: counterfeit upscale --checkpoint CKPT IMAGE...")
    model = load_upscaler(checkpoint).to(resolve_device(device))
    inputs = [read_image(path) for path in images]  # fail before writing anything
    out = Path(out)
    written = []
    for path, tensor in zip(images, inputs):
        sr = upscale_tensor(model, tensor)[0]
        target = out / f"{Path(path).stem}_x{model.scale}.png"
        written.append(save_image(sr, target))
        print(
            f"{path} ({tensor.shape[-1]}x{tensor.shape[-2]}) -> {target} "
            f"({sr.shape[-1]}x{sr.shape[-2]})"
        )
    (out / "upscale.json").write_text(
        json.dumps(
            {
                "checkpoint": str(checkpoint),
                "phase": model.phase,
                "scale": model.scale,
                "images": [str(p) for p in images],
                "written": [str(p) for p in written],
            },
            indent=2,
        )
    )
    return written
