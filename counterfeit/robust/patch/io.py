"""Patch files: an 8-bit PNG to print (the mask as alpha) and an exact tensor file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from counterfeit.gan.errors import CheckpointError, ConfigError
from counterfeit.robust.patch.geometry import PatchGeometry

PATCH_FORMAT = "counterfeit-patch-1"


def save_patch(attack: PatchGeometry, path: str | Path, target: int) -> Path:
    """Write ``attack``'s patch: ``.png`` (8-bit, the mask as alpha) or ``.pt`` (exact).

    ``target`` is the class the patch was trained toward (kept in the ``.pt`` file).
    """
    texture = attack._texture(None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".png":
        save_patch_png(texture, attack.mask, path)  # type: ignore[arg-type]
        return path
    if path.suffix.lower() not in (".pt", ".pth"):
        raise ConfigError(f"save: use a .png or .pt path, got '{path.name}'.")
    state = {
        "format": PATCH_FORMAT,
        "patch": texture.detach().cpu().clone(),
        "mask": attack.mask.detach().cpu().clone(),  # type: ignore[union-attr]
        "target": target,
        "area": attack.area,
        "shape": attack.shape,
        "image_size": list(attack._geometry()),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def load_patch(attack: PatchGeometry, path: str | Path) -> None:
    """Set ``attack``'s patch from a file written by :func:`save_patch`.

    A ``.pt`` file is exact, sets the image size and must match the attack's shape
    and area; a PNG holds 8-bit values and must have the attack's texture size (its
    alpha channel is for viewing: the mask comes from the attack's shape).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no patch file at {path}.")
    if path.suffix.lower() == ".png":
        patch, _ = load_patch_png(path)  # the alpha channel is for viewing only
        mask = attack.mask
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(
                f"cannot read {path} as a patch: {type(exc).__name__}: {exc}"
            ) from None
        if not isinstance(state, dict) or state.get("format") != PATCH_FORMAT:
            raise CheckpointError(f"{path} is not a patch written by AdversarialPatch.save.")
        if state["shape"] != attack.shape or not math.isclose(state["area"], attack.area):
            raise CheckpointError(
                f"{path} holds a {state['shape']} patch of area {state['area']:g}; this "
                f"attack is a {attack.shape} of area {attack.area:g}."
            )
        patch, mask = state["patch"], state["mask"]
        if attack.image_size is None:
            attack._set_geometry(tuple(state["image_size"]), patch.shape[0])
    if attack.image_size is None:
        raise ConfigError(
            f"cannot tell the image size the PNG patch {path.name} was made for: pass "
            "image_size and channels to AdversarialPatch(...) before load(), or load the "
            ".pt file."
        )
    if patch.shape != attack.patch.shape:  # type: ignore[union-attr]
        raise CheckpointError(
            f"{path} holds a patch of shape {tuple(patch.shape)}; this attack needs "
            f"{tuple(attack.patch.shape)} (same area, shape and image size)."  # type: ignore[union-attr]
        )
    attack.patch = patch.to(attack.device)
    attack.mask = mask.to(attack.device)  # type: ignore[union-attr]
    attack.trained = True


def patch_rgba(patch: torch.Tensor, mask: torch.Tensor | None) -> np.ndarray:
    """The patch as an (R, R, 4) RGBA array for display (alpha: the mask)."""
    rgb = patch.detach().float().clamp(0, 1).cpu()
    if rgb.shape[0] == 1:
        rgb = rgb.expand(3, -1, -1)
    alpha = torch.ones_like(rgb[:1]) if mask is None else mask.detach().float().cpu()
    return torch.cat([rgb, alpha]).permute(1, 2, 0).numpy()


def save_patch_png(patch: torch.Tensor, mask: torch.Tensor | None, path: str | Path) -> Path:
    """Write a patch (C, R, R) in [0, 1] as an 8-bit PNG (grey+alpha or RGBA; alpha = mask)."""
    from PIL import Image

    values = (patch.detach().float().clamp(0, 1).cpu() * 255).round().to(torch.uint8)
    alpha = (
        torch.full_like(values[:1], 255)
        if mask is None
        else (mask.detach().float().clamp(0, 1).cpu() * 255).round().to(torch.uint8)
    )
    array = torch.cat([values, alpha]).permute(1, 2, 0).numpy()
    mode = "LA" if values.shape[0] == 1 else "RGBA"
    Image.fromarray(np.ascontiguousarray(array), mode=mode).save(Path(path))
    return Path(path)


def load_patch_png(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a PNG written by :func:`save_patch_png`: ``(patch (C, R, R), mask (1, R, R))``."""
    from PIL import Image

    try:
        image = Image.open(path)
        image.load()
    except Exception as exc:
        raise CheckpointError(f"cannot read {path} as an image: {exc}") from None
    if image.mode not in ("LA", "RGBA", "L", "RGB"):
        image = image.convert("RGBA")
    array = torch.from_numpy(np.array(image))
    if array.ndim == 2:
        array = array.unsqueeze(-1)
    array = array.permute(2, 0, 1).float() / 255
    if image.mode in ("LA", "RGBA"):
        return array[:-1].contiguous(), array[-1:].contiguous()
    return array.contiguous(), torch.ones_like(array[:1])
