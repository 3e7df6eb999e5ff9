"""Where a patch lands: placements, the patch's footprint, and pasting it onto images.

The patch operator of Brown et al., "Adversarial Patch", 2017 (arXiv 1712.09665)
as differentiable placement with affine grids
(:func:`torch.nn.functional.affine_grid` / :func:`grid_sample`): every image of
a batch gets its own random scale, rotation and location, the patch and its mask
are resampled bilinearly into the image frame, and the result is
``(1 - mask) * x + mask * patch``. The placed mask always lies wholly inside the
image (locations are drawn among those where the scaled, rotated patch fits),
and pasted images stay in [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from counterfeit.gan.errors import ConfigError, DataError

Shape = Literal["circle", "square"]
Location = Literal["random", "center"] | tuple[float, float]


@dataclass
class Placement:
    """Where and how each image of a batch gets the patch.

    Attributes:
        scale: (N,) factor on the patch's side (1: the nominal ``area``).
        angle: (N,) rotation in radians (counter-clockwise).
        centre: (N, 2) the patch centre as ``(dx, dy)`` pixels from the image centre.
    """

    scale: torch.Tensor
    angle: torch.Tensor
    centre: torch.Tensor

    def to(self, device: torch.device | str) -> Placement:
        return Placement(self.scale.to(device), self.angle.to(device), self.centre.to(device))


def patch_side(area: float, shape: Shape, height: int, width: int) -> float:
    """The patch's side (a circle's diameter) in pixels so that it covers ``area`` of the image."""
    pixels = area * height * width
    return math.sqrt(pixels) if shape == "square" else 2 * math.sqrt(pixels / math.pi)


def patch_mask(resolution: int, shape: Shape) -> torch.Tensor:
    """The patch's footprint on its ``resolution`` x ``resolution`` texture: (1, R, R) in [0, 1].

    A square fills the texture. A circle is anti-aliased: each texel holds its signed
    distance to the inscribed circle (in texels) mapped to [0, 1], so the 0.5 level of
    the bilinearly resampled mask is the circle itself.
    """
    if shape == "square":
        return torch.ones(1, resolution, resolution)
    centres = (torch.arange(resolution, dtype=torch.float32) * 2 + 1) / resolution - 1
    v, u = torch.meshgrid(centres, centres, indexing="ij")
    radius = (u**2 + v**2).sqrt()
    return ((1 - radius) * resolution / 2 + 0.5).clamp(0, 1).unsqueeze(0)


def place_patch(
    images: torch.Tensor,
    patch: torch.Tensor,
    mask: torch.Tensor,
    side: float,
    placement: Placement,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste ``patch`` onto each image at its own scale, rotation and location.

    Differentiable with respect to ``patch`` (and ``images``). The patch
    texture (C, R, R) spans ``side * scale`` image pixels; it is resampled into
    the image frame with an affine grid and bilinear interpolation. The placed
    mask is the resampled mask thresholded at 0.5 (a crisp edge, as a printed
    sticker has); inside it the pixel is the mask-weighted bilinear average of
    the patch, so pasted values are convex combinations of patch values.

    Args:
        images: (N, C, H, W) in [0, 1].
        patch: (C, R, R) or (1, R, R) texture in [0, 1], or (N, C, R, R): one texture per
            image (a per-image patch, e.g. to bound what a universal one can reach).
        mask: (1, R, R) footprint in [0, 1] (see :func:`patch_mask`).
        side: the patch's side in image pixels at scale 1.
        placement: per-image scale, angle and centre.

    Returns:
        ``(patched images (N, C, H, W), placed masks (N, 1, H, W) in {0, 1})``.
    """
    n, channels, height, width = images.shape
    dtype, device = images.dtype, images.device
    scale = placement.scale.to(device, dtype)
    angle = placement.angle.to(device, dtype)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Output (image) normalized coords -> pixels from the centre -> undo translation,
    # rotation and scale -> patch-texture normalized coords ([-1, 1] spans `side * scale`).
    k = 2.0 / (side * scale)  # (N,)
    rot = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], 1)  # R(-angle)
    linear = rot * k.view(-1, 1, 1)
    half = torch.tensor([width / 2.0, height / 2.0], device=device, dtype=dtype)
    linear = linear * half.view(1, 1, 2)
    centre = placement.centre.to(device, dtype)
    shift = -(rot @ centre.unsqueeze(-1)).squeeze(-1) * k.view(-1, 1)
    theta = torch.cat([linear, shift.unsqueeze(-1)], dim=2)  # (N, 2, 3)
    if patch.ndim == 4 and patch.shape[0] != n:
        raise DataError(f"{patch.shape[0]} per-image patches for {n} images.")
    mask = mask.to(device, dtype)
    textures = (
        patch.to(dtype) if patch.ndim == 4 else patch.to(dtype).unsqueeze(0).expand(n, -1, -1, -1)
    )
    texture = torch.cat([textures * mask, mask.expand(n, -1, -1, -1)], 1)
    grid = F.affine_grid(theta, [n, texture.shape[1], height, width], align_corners=False)
    placed = F.grid_sample(
        texture,
        grid,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    weight = placed[:, -1:]
    inside = (weight >= 0.5).to(dtype)
    content = placed[:, :-1] / weight.clamp_min(1e-6) * inside
    if content.shape[1] != channels:
        content = content.expand(-1, channels, -1, -1)
    return images * (1 - inside) + content, inside


class PatchGeometry:
    """A patch texture and where it lands: its shape, area, scales, rotations and locations.

    The base of :class:`robust.AdversarialPatch`. It holds the texture ``patch``
    ((C, R, R) in [0, 1]) and its footprint ``mask`` ((1, R, R)), made once the
    images' size is known, draws placements where the patch fits wholly
    (:meth:`sample_placement`) and pastes it there (:meth:`apply`).

    Args:
        shape: ``"circle"`` (the paper's) or ``"square"``.
        area: the patch's area at scale 1, as a fraction of the image (0, 1).
        scale: ``(min, max)`` factors on the patch's side drawn per image.
        rotation: largest rotation in degrees (drawn from ``[-rotation, rotation]``).
        location: ``"random"`` (anywhere the patch fits), ``"center"``, or a
            fixed centre ``(row, col)`` in pixels.
        seed: seeds the initial (uniform random) texture.
        device: where the texture lives.
    """

    def __init__(
        self,
        *,
        shape: Shape,
        area: float,
        scale: tuple[float, float],
        rotation: float,
        location: Location,
        seed: int,
        device: torch.device,
    ) -> None:
        if shape not in ("circle", "square"):
            raise ConfigError(f"shape must be 'circle' or 'square', got {shape!r}.")
        self.shape: Shape = shape
        self.area = fraction(area, "area")
        if (
            not isinstance(scale, (tuple, list))
            or len(scale) != 2
            or not all(is_number(s) for s in scale)
            or not 0 < scale[0] <= scale[1]
        ):
            raise ConfigError(f"scale must be (min, max) with 0 < min <= max, got {scale!r}.")
        self.scale = (float(scale[0]), float(scale[1]))
        if not is_number(rotation) or not 0 <= rotation <= 180:
            raise ConfigError(f"rotation must be in [0, 180] degrees, got {rotation!r}.")
        self.rotation = float(rotation)
        if isinstance(location, str):
            if location not in ("random", "center"):
                raise ConfigError(
                    f"location must be 'random', 'center' or (row, col) pixels, got {location!r}."
                )
        elif not (
            isinstance(location, (tuple, list))
            and len(location) == 2
            and all(is_number(v) for v in location)
        ):
            raise ConfigError(
                f"location must be 'random', 'center' or (row, col) pixels, got {location!r}."
            )
        self.location = location if isinstance(location, str) else tuple(map(float, location))
        self.seed = int(seed)
        self.device = device
        self.image_size: tuple[int, int] | None = None
        self.channels: int | None = None
        self.patch: torch.Tensor | None = None  # (C, R, R) in [0, 1]
        self.mask: torch.Tensor | None = None  # (1, R, R)
        self.trained = False  # True once the texture is trained or loaded

    def _set_geometry(self, image_size: int | tuple[int, int] | None, channels: int | None) -> None:
        if image_size is None or channels is None:
            raise ConfigError(
                "give both image_size and channels, or neither (taken from the data)."
            )
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if len(size) != 2 or not all(isinstance(s, int) and s >= 4 for s in size):
            raise ConfigError(
                f"image_size must be an int or (H, W) of ints >= 4, got {image_size!r}."
            )
        if channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {channels!r}.")
        self.image_size = (int(size[0]), int(size[1]))
        self.channels = int(channels)
        self._check_fits(self.area)
        if self.patch is None:
            resolution = max(2, math.ceil(self.side()))
            self.mask = patch_mask(resolution, self.shape).to(self.device)
            generator = torch.Generator().manual_seed(self.seed)
            self.patch = torch.rand(channels, resolution, resolution, generator=generator).to(
                self.device
            )

    def side(self, area: float | None = None) -> float:
        """The patch's side (circle: diameter) in pixels at scale 1 for ``area`` (default: its own)."""
        height, width = self._geometry()
        return patch_side(self.area if area is None else area, self.shape, height, width)

    def _geometry(self) -> tuple[int, int]:
        if self.image_size is None:
            raise ConfigError(
                "the patch has no image size yet: call fit(data) first, or pass image_size and "
                "channels to AdversarialPatch(...)."
            )
        return self.image_size

    def _extent_factor(self, angle: torch.Tensor | float) -> torch.Tensor | float:
        """Half-extent of the rotated patch over half its side (1 for a circle)."""
        if self.shape == "circle":
            return 1.0 if isinstance(angle, float) else torch.ones_like(angle)
        if isinstance(angle, float):
            return abs(math.cos(angle)) + abs(math.sin(angle))
        return angle.cos().abs() + angle.sin().abs()

    def _footprint(self, side: Any) -> Any:
        """The side of the placed (thresholded) mask's footprint, with half a texel to spare
        for resampling; with a half-pixel margin for the pixel centres, a footprint that fits
        never touches the border pixels."""
        resolution = max(2, math.ceil(self.side())) if self.patch is None else self.patch.shape[-1]
        return side * (1 + 1 / resolution)

    def _max_extent_factor(self) -> float:
        if self.shape == "circle":
            return 1.0
        worst = math.radians(min(self.rotation, 45.0))
        return math.cos(worst) + math.sin(worst)

    def _check_fits(self, area: float, scale_max: float | None = None) -> None:
        height, width = self._geometry()
        scale_max = self.scale[1] if scale_max is None else scale_max
        span = self._footprint(self.side(area) * scale_max) * self._max_extent_factor() + 1
        if span > min(height, width):
            raise ConfigError(
                f"a {self.shape} patch of area {area:g} at scale {scale_max:g} and rotation up to "
                f"{self.rotation:g} degrees spans {span:.1f} px and does not fit in a "
                f"{height}x{width} image: lower area, scale or rotation"
                + (" (or use shape='circle')." if self.shape == "square" else ".")
            )
        if not isinstance(self.location, str):
            row, col = self.location
            half = span / 2
            if not (half <= row <= height - half and half <= col <= width - half):
                raise ConfigError(
                    f"location={self.location}: a patch spanning {span:.1f} px centred there "
                    f"leaves the {height}x{width} image; choose a centre at least {half:.1f} px "
                    "from every edge."
                )

    def sample_placement(
        self,
        n: int,
        generator: torch.Generator | None = None,
        scale: float | tuple[float, float] | None = None,
        angle: float | None = None,
    ) -> Placement:
        """Draw ``n`` placements: scale, rotation and a location where the patch fits wholly.

        Args:
            scale: a fixed scale, a ``(min, max)`` range, or None for the attack's own range.
            angle: a fixed rotation in degrees, or None for ``[-rotation, rotation]``.
        """
        height, width = self._geometry()
        lo, hi = (
            self.scale if scale is None else (scale if isinstance(scale, tuple) else (scale,) * 2)
        )
        u = torch.rand(n, 4, generator=generator)
        scales = lo + (hi - lo) * u[:, 0]
        angles = math.radians(self.rotation) * (2 * u[:, 1] - 1)
        if angle is not None:
            angles = torch.full((n,), math.radians(angle))
        if self.location == "random":
            half = self._footprint(self.side() * scales) / 2 * self._extent_factor(angles) + 0.5
            room_x = (width / 2 - half).clamp_min(0)
            room_y = (height / 2 - half).clamp_min(0)
            centre = torch.stack([(2 * u[:, 2] - 1) * room_x, (2 * u[:, 3] - 1) * room_y], 1)
        elif self.location == "center":
            centre = torch.zeros(n, 2)
        else:
            row, col = self.location
            centre = torch.tensor([[col + 0.5 - width / 2, row + 0.5 - height / 2]]).expand(n, 2)
        return Placement(scales, angles, centre)

    # -- applying ----------------------------------------------------------------

    def apply(
        self,
        images: torch.Tensor,
        placement: Placement | None = None,
        *,
        patch: torch.Tensor | None = None,
        area: float | None = None,
        generator: torch.Generator | None = None,
        return_mask: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Paste the patch onto ``images`` (random placements unless ``placement`` is given).

        Differentiable with respect to ``patch`` (default: the trained patch).

        Args:
            images: (N, C, H, W) in [0, 1], the size the patch was made for.
            placement: per-image scale, angle and centre; None: drawn with ``generator``.
            patch: a texture (C, R, R) in [0, 1] to paste instead of the trained one.
            area: show the patch at this area instead of its own (fixed scale; placements
                are drawn for it).
            return_mask: also return the placed masks (N, 1, H, W).
        """
        self._check_images(images, "images")
        texture = self._texture(patch)
        side = self.side()
        if area is not None:
            area = fraction(area, "area")
            factor = math.sqrt(area / self.area)
            self._check_fits(area, scale_max=1.0)
            if placement is None:
                placement = self.sample_placement(images.shape[0], generator, scale=factor)
        if placement is None:
            placement = self.sample_placement(images.shape[0], generator)
        if placement.scale.shape[0] != images.shape[0]:
            raise DataError(
                f"placement is for {placement.scale.shape[0]} images but images has "
                f"{images.shape[0]}."
            )
        mask = self.mask.to(images.device)  # type: ignore[union-attr]
        patched, placed = place_patch(images, texture.to(images.device), mask, side, placement)
        return (patched, placed) if return_mask else patched

    def _texture(self, patch: torch.Tensor | None) -> torch.Tensor:
        if self.patch is None or (patch is None and not self.trained):
            raise ConfigError("no patch yet: call fit(data) or load(path) first.")
        if patch is None:
            return self.patch
        if not isinstance(patch, torch.Tensor) or patch.shape != self.patch.shape:
            got = tuple(patch.shape) if isinstance(patch, torch.Tensor) else type(patch).__name__
            raise DataError(
                f"patch must be a tensor of shape {tuple(self.patch.shape)}, got {got}."
            )
        return patch

    def _check_images(self, images: torch.Tensor, name: str) -> None:
        if (
            not isinstance(images, torch.Tensor)
            or not images.is_floating_point()
            or images.ndim != 4
        ):
            what = (
                f"dtype {images.dtype}, shape {tuple(images.shape)}"
                if isinstance(images, torch.Tensor)
                else type(images).__name__
            )
            raise DataError(f"{name} must be float images (N, C, H, W) in [0, 1], got {what}.")
        if self.image_size is None:
            self._set_geometry((images.shape[2], images.shape[3]), images.shape[1])
        if tuple(images.shape[2:]) != self.image_size or images.shape[1] != self.channels:
            raise DataError(
                f"{name} have shape {tuple(images.shape[1:])} but the patch was made for "
                f"({self.channels}, {self.image_size[0]}, {self.image_size[1]}) images."
            )


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fraction(value: Any, name: str) -> float:
    """``value`` as a fraction of the image in (0, 1), else a ConfigError naming ``name``."""
    if not is_number(value) or not 0 < value < 1:
        raise ConfigError(f"{name} must be a fraction of the image in (0, 1), got {value!r}.")
    return float(value)


def int_at_least(value: Any, low: int, name: str) -> int:
    """``value`` as an integer >= ``low``, else a ConfigError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)
