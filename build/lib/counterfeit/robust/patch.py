"""Adversarial patches: one universal sticker that makes a classifier see a chosen class.

Brown, Mané, Roy, Abadi & Gilmer, "Adversarial Patch", NIPS 2017 workshop
(arXiv 1712.09665). A patch ``p`` is trained to maximise the expected
log-probability of a target class ``t`` over images ``x``, locations ``l``
and transformations ``T`` (their Eq. 2, expectation over transformation,
Athalye et al. 2018)::

    p* = argmax_p  E_{x ~ X, t ~ T, l ~ L} [ log Pr(t | A(p, x, l, t)) ]

where ``A`` pastes the transformed patch onto the image. Here the patch
operator ``A`` is differentiable placement with affine grids
(:func:`torch.nn.functional.affine_grid` / :func:`grid_sample`): every image
of a batch gets its own random scale, rotation and location, the patch and
its mask are resampled bilinearly into the image frame, and the result is
``(1 - mask) * x + mask * patch``. The placed mask always lies wholly inside
the image (locations are drawn among those where the scaled, rotated patch
fits), and pasted images stay in [0, 1].

Deviations from the paper, all options:

* ``parameterization="sigmoid"`` (default) optimises unconstrained logits and
  uses ``sigmoid(logits)`` as the patch; the paper clips a directly
  optimised patch to the image range (``"clip"``, also available).
* ``loss="ce"`` is the paper's ``-log Pr(t | ·)``; ``loss="margin"`` is the
  Carlini-Wagner style ``max(max_{j != t} z_j - z_t, -kappa)`` on logits,
  which stops pushing on images that are already fooled with margin
  ``kappa`` and spends the gradient on the others.
* ``loss="probability"`` maximises ``E[Pr(t | ·)]`` instead of its log: a
  smooth surrogate of the success rate itself. Its gradient fades on placements
  that are already fooled *and* on hopeless ones (a small patch far from the
  digit), so the patch is shaped for the placements it can still win. On
  Wong et al.'s MNIST CNN at area 0.3 it raised targeted success by 5-11
  points over cross-entropy (three seeds), on pooled CNNs by 0-4
  (docs/benchmarks.md). Its gradient is tiny while Pr(t) is near 0 on every
  placement (RMS 1e-13 for target 1 on a global-average-pooling MNIST CNN),
  which Adam would swamp with its ``eps``; see the next item.
* With Adam, the gradient is multiplied by one constant, fixed at the first
  step, that gives it unit RMS. Adam's steps do not depend on the gradient's
  scale except through ``eps`` (1e-8), and a gradient far below ``eps`` left
  the patch where it started: targets 1 and 7 at area 0.3 on that CNN ended at
  0.000 with the probability loss, and reach 0.46 and 0.75 with the scaling
  (cross-entropy: 0.40 and 0.63). Where gradients are larger than ``eps`` the
  scaling changes next to nothing.
* ``lr_schedule="cosine"`` (default) anneals Adam's learning rate to 0 over
  the run; the paper does not state a schedule.
* Images whose true class is the target are left out of training batches and
  of the evaluation (they teach nothing and would inflate the success rate).
* The placed mask is thresholded at 0.5 after resampling (a crisp edge, as a
  printed sticker has), and the patch is composited with the mask-weighted
  average of its texels; the paper does not describe its resampling.
* Rotations are drawn from ``[-rotation, rotation]`` degrees and scales from
  ``scale`` (a factor on the patch's side at its nominal ``area``); the paper
  draws scales so the patch covers a range of image fractions.

:class:`AdversarialPatch` works for any classifier that maps images in
[0, 1] (NCHW) to logits, including :class:`robust.Normalize`-wrapped ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from counterfeit.gan.errors import CheckpointError, ConfigError, DataError
from counterfeit.robust.attacks import model_mode
from torch import nn
from tqdm.auto import tqdm

Shape = Literal["circle", "square"]
PATCH_FORMAT = "counterfeit-patch-1"


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


@dataclass
class PatchEvaluation:
    """Targeted success of a patch beside a random-noise control patch of the same size.

    Attributes:
        target: the target class.
        area: the patch's nominal area (fraction of the image).
        n: images evaluated (none of them of the target class).
        success: fraction whose top-1 prediction is the target with the patch.
        control: the same with a patch of uniform random noise (same shape, size, places).
        clean_target: fraction predicted as the target without any patch.
        curve: ``[(area, success, control), ...]``: the trained patch shown at each area.
        trials: random placements per image.
    """

    target: int
    area: float
    n: int
    success: float
    control: float
    clean_target: float
    curve: list[tuple[float, float, float]] = field(default_factory=list)
    trials: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def metrics(self, prefix: str = "") -> dict[str, float]:
        out = {
            f"{prefix}success": self.success,
            f"{prefix}control": self.control,
            f"{prefix}clean_target": self.clean_target,
        }
        for area, success, control in self.curve:
            out[f"{prefix}success@{area:g}"] = success
            out[f"{prefix}control@{area:g}"] = control
        return out

    def curve_figure(self, title: str | None = None):
        """Success against patch area, beside the control (a matplotlib figure)."""
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.4))
        if self.curve:
            areas = [a for a, _, _ in self.curve]
            ax.plot(areas, [s for _, s, _ in self.curve], "o-", label="adversarial patch")
            ax.plot(areas, [c for _, _, c in self.curve], "s--", label="random-noise patch")
        ax.axvline(self.area, color="grey", lw=0.8, ls=":", label="trained area")
        ax.set_xlabel("patch area (fraction of the image)")
        ax.set_ylabel(f"targeted success (top-1 = {self.target})")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(title or f"adversarial patch, target {self.target}")
        fig.tight_layout()
        return fig


class AdversarialPatch:
    """A universal, targeted adversarial patch trained with expectation over transformation.

    Brown et al., "Adversarial Patch", 2017 (see the module docstring for the
    objective and the deviations). Typical use::

        attack = AdversarialPatch(model, target=3, area=0.2, steps=500)
        attack.fit(train_images)                 # ImageTensors, (x, y) or a DataLoader
        report = attack.evaluate(test_images, areas=[0.05, 0.1, 0.2, 0.3])
        patched = attack.apply(x)                # random placements, differentiable
        attack.save("patch.png"); attack.save("patch.pt")

    Args:
        model: maps images in [0, 1] (N, C, H, W) to logits; left unchanged
            (eval mode during the attack, mode restored, no ``.grad`` written).
        target: the class the patch should make the model predict.
        shape: ``"circle"`` (the paper's) or ``"square"``.
        area: the patch's area at scale 1, as a fraction of the image (0, 1).
        scale: ``(min, max)`` factors on the patch's side drawn per image.
        rotation: largest rotation in degrees (drawn from ``[-rotation, rotation]``).
        location: ``"random"`` (anywhere the patch fits), ``"center"``, or a
            fixed centre ``(row, col)`` in pixels.
        optimizer: ``"adam"`` (Kingma & Ba) or ``"sgd"``.
        lr: the learning rate (on logits for ``"sigmoid"``, on values for ``"clip"``).
        lr_schedule: ``"cosine"`` (annealed to 0) or ``"constant"``.
        parameterization: ``"sigmoid"`` or ``"clip"`` (the paper's).
        loss: ``"ce"`` (the paper's log-probability), ``"margin"`` (C&W) or
            ``"probability"`` (the target's softmax probability).
        kappa: the margin loss's confidence (logit units).
        steps: optimisation steps (one batch each).
        batch_size: images per step.
        image_size: ``(H, W)`` (or one int) of the images; None: taken from the data.
        channels: channels of the patch; None: taken from the data.
        seed: seeds the initial patch, the batches and the placements.
        device: where to optimise; None: the model's device.
        progress: show a tqdm progress bar during :meth:`fit`.
    """

    def __init__(
        self,
        model: nn.Module,
        target: int,
        *,
        shape: Shape = "circle",
        area: float = 0.1,
        scale: tuple[float, float] = (0.8, 1.2),
        rotation: float = 22.5,
        location: Literal["random", "center"] | tuple[float, float] = "random",
        optimizer: Literal["adam", "sgd"] = "adam",
        lr: float = 0.1,
        lr_schedule: Literal["cosine", "constant"] = "cosine",
        parameterization: Literal["sigmoid", "clip"] = "sigmoid",
        loss: Literal["ce", "margin", "probability"] = "ce",
        kappa: float = 5.0,
        steps: int = 500,
        batch_size: int = 64,
        image_size: int | tuple[int, int] | None = None,
        channels: int | None = None,
        seed: int = 0,
        device: torch.device | str | None = None,
        progress: bool = True,
    ) -> None:
        if not callable(model):
            raise ConfigError(f"model must be an nn.Module, got {type(model).__name__}.")
        self.model = model
        self.target = _int_at_least(target, 0, "target")
        if shape not in ("circle", "square"):
            raise ConfigError(f"shape must be 'circle' or 'square', got {shape!r}.")
        self.shape: Shape = shape
        self.area = _fraction(area, "area")
        if (
            not isinstance(scale, (tuple, list))
            or len(scale) != 2
            or not all(_is_number(s) for s in scale)
            or not 0 < scale[0] <= scale[1]
        ):
            raise ConfigError(f"scale must be (min, max) with 0 < min <= max, got {scale!r}.")
        self.scale = (float(scale[0]), float(scale[1]))
        if not _is_number(rotation) or not 0 <= rotation <= 180:
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
            and all(_is_number(v) for v in location)
        ):
            raise ConfigError(
                f"location must be 'random', 'center' or (row, col) pixels, got {location!r}."
            )
        self.location = location if isinstance(location, str) else tuple(map(float, location))
        if optimizer not in ("adam", "sgd"):
            raise ConfigError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}.")
        if lr_schedule not in ("cosine", "constant"):
            raise ConfigError(f"lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}.")
        if parameterization not in ("sigmoid", "clip"):
            raise ConfigError(
                f"parameterization must be 'sigmoid' or 'clip', got {parameterization!r}."
            )
        if loss not in ("ce", "margin", "probability"):
            raise ConfigError(f"loss must be 'ce', 'margin' or 'probability', got {loss!r}.")
        if not _is_number(lr) or lr <= 0:
            raise ConfigError(f"lr must be a number > 0, got {lr!r}.")
        if not _is_number(kappa) or kappa < 0:
            raise ConfigError(f"kappa must be a number >= 0, got {kappa!r}.")
        self.optimizer, self.lr, self.lr_schedule = optimizer, float(lr), lr_schedule
        self.parameterization, self.loss, self.kappa = parameterization, loss, float(kappa)
        self.steps = _int_at_least(steps, 1, "steps")
        self.batch_size = _int_at_least(batch_size, 1, "batch_size")
        self.seed = int(seed)
        self.device = torch.device(device) if device is not None else _model_device(model)
        self.progress = progress
        self.image_size: tuple[int, int] | None = None
        self.channels: int | None = None
        self.patch: torch.Tensor | None = None  # (C, R, R) in [0, 1]
        self.mask: torch.Tensor | None = None  # (1, R, R)
        self.history: list[float] = []
        self.trained = False  # True once fit() or load() has set the patch
        if image_size is not None or channels is not None:
            self._set_geometry(image_size, channels)

    # -- geometry ---------------------------------------------------------------

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
            area = _fraction(area, "area")
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

    # -- training ----------------------------------------------------------------

    def fit(self, data: Any) -> AdversarialPatch:
        """Optimise the patch over ``data`` (Brown et al. 2017, Eq. 2, by Adam or SGD).

        Args:
            data: an :class:`gan.data.ImageTensors`, a tuple ``(images, labels)``, a
                tensor of images, or an iterable of ``(images, labels)`` batches (a
                DataLoader; cycled). Images of the target class are left out when
                labels are known.

        Returns:
            ``self``; the loss per step is in ``self.history``.
        """
        generator = torch.Generator().manual_seed(self.seed)
        batches = _batches(data, self.batch_size, generator, exclude=self.target)
        first = next(batches)
        self._check_images(first[0], "data images")
        if self.parameterization == "sigmoid":
            values = self.patch.clamp(1e-3, 1 - 1e-3)  # type: ignore[union-attr]
            param = torch.logit(values).detach().clone().requires_grad_(True)
        else:
            param = self.patch.detach().clone().requires_grad_(True)  # type: ignore[union-attr]
        if self.optimizer == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam([param], lr=self.lr)
        else:
            opt = torch.optim.SGD([param], lr=self.lr, momentum=0.9)
        schedule = (
            torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.steps)
            if self.lr_schedule == "cosine"
            else None
        )
        mask = self.mask.to(self.device)  # type: ignore[union-attr]
        side = self.side()
        self.history = []
        bar = tqdm(range(self.steps), desc=f"patch -> {self.target}", disable=not self.progress)
        with torch.enable_grad(), model_mode(self.model, False):
            batch = first
            for step in bar:
                if step:
                    batch = next(batches)
                x = batch[0].to(self.device)
                placement = self.sample_placement(x.shape[0], generator)
                patch = torch.sigmoid(param) if self.parameterization == "sigmoid" else param
                patched, _ = place_patch(x, patch, mask, side, placement)
                logits = _logits(self.model, patched)
                loss = self._loss(logits)
                (grad,) = torch.autograd.grad(loss, param)
                if not torch.isfinite(grad).all():
                    raise DataError(
                        f"the patch gradient became NaN/inf at step {step + 1}; lower lr "
                        f"(now {self.lr:g}) or check the model's outputs."
                    )
                if step == 0:
                    grad_scale = self._gradient_scale(grad)
                param.grad = grad * grad_scale
                opt.step()
                opt.zero_grad(set_to_none=True)
                if schedule is not None:
                    schedule.step()
                if self.parameterization == "clip":
                    with torch.no_grad():
                        param.clamp_(0.0, 1.0)
                self.history.append(float(loss.detach()))
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{self.history[-1]:.4g}", refresh=False)
        with torch.no_grad():
            final = torch.sigmoid(param) if self.parameterization == "sigmoid" else param
            self.patch = final.detach().clamp(0.0, 1.0)
        self.trained = True
        return self

    def _gradient_scale(self, first_grad: torch.Tensor) -> float:
        """The constant that gives Adam's first gradient unit RMS (1 for SGD or a zero
        gradient), at most 1e15 so that squared gradients stay finite in float32."""
        rms = float(first_grad.double().pow(2).mean().sqrt())
        if self.optimizer != "adam" or rms == 0.0:
            return 1.0
        return min(1.0 / rms, 1e15)

    def _loss(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.target >= logits.shape[1]:
            raise ConfigError(
                f"target={self.target} but the model has {logits.shape[1]} outputs "
                f"(classes 0-{logits.shape[1] - 1})."
            )
        target = torch.full((logits.shape[0],), self.target, device=logits.device)
        if self.loss == "ce":
            return F.cross_entropy(logits, target)
        if self.loss == "probability":
            return -F.softmax(logits, 1)[:, self.target].mean()
        own = logits[:, self.target]
        others = logits.clone()
        others[:, self.target] = float("-inf")
        return (others.max(1).values - own).clamp_min(-self.kappa).mean()

    # -- evaluation ----------------------------------------------------------------

    @torch.no_grad()
    def evaluate(
        self,
        data: Any,
        *,
        n: int | None = 1000,
        areas: Sequence[float] | None = None,
        trials: int = 1,
        batch_size: int = 256,
        seed: int | None = None,
    ) -> PatchEvaluation:
        """Targeted success of the patch beside a random-noise control of the same size.

        Each image (none of the target class) gets ``trials`` random placements
        from the training distribution; the control patch (uniform noise, same
        shape and mask) is shown at exactly the same placements.

        Args:
            data: labelled images, as for :meth:`fit` (labels are required).
            n: evaluate at most this many images (None: all).
            areas: also show the trained patch at each of these areas (fixed scale,
                random location and rotation): the success-vs-area curve.
            trials: random placements per image.
            seed: placements and control noise (default: the attack's seed + 1).
        """
        trials = _int_at_least(trials, 1, "trials")
        batch_size = _int_at_least(batch_size, 1, "batch_size")
        x_all, _ = _labelled(data, n, exclude=self.target)
        self._check_images(x_all, "data images")
        texture = self._texture(None)
        seed = self.seed + 1 if seed is None else int(seed)
        noise = torch.rand(texture.shape, generator=torch.Generator().manual_seed(seed + 10_007))
        noise = noise.to(texture.device)

        def rates(area: float | None) -> tuple[float, float]:
            generator = torch.Generator().manual_seed(seed)
            hits = torch.zeros(2)
            with model_mode(self.model, False):
                for _ in range(trials):
                    for start in range(0, len(x_all), batch_size):
                        x = x_all[start : start + batch_size].to(self.device)
                        if area is None:
                            placement = self.sample_placement(len(x), generator)
                        else:
                            factor = math.sqrt(area / self.area)
                            placement = self.sample_placement(len(x), generator, scale=factor)
                        for i, candidate in enumerate((texture, noise)):
                            patched = self.apply(x, placement, patch=candidate)
                            hits[i] += int(
                                (_logits(self.model, patched).argmax(1) == self.target).sum()
                            )
            total = trials * len(x_all)
            return float(hits[0]) / total, float(hits[1]) / total

        success, control = rates(None)
        with model_mode(self.model, False):
            clean = sum(
                int(
                    (
                        _logits(self.model, x_all[s : s + batch_size].to(self.device)).argmax(1)
                        == self.target
                    ).sum()
                )
                for s in range(0, len(x_all), batch_size)
            ) / len(x_all)
        curve = []
        for area in areas or ():
            area = _fraction(area, "areas")
            self._check_fits(area, scale_max=1.0)
            curve.append((float(area), *rates(area)))
        return PatchEvaluation(
            self.target, self.area, len(x_all), success, control, clean, curve, trials
        )

    # -- saving ----------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the patch: ``.png`` (8-bit, the mask as alpha: print it) or ``.pt`` (exact)."""
        texture = self._texture(None)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() == ".png":
            save_patch_png(texture, self.mask, path)  # type: ignore[arg-type]
            return path
        if path.suffix.lower() not in (".pt", ".pth"):
            raise ConfigError(f"save: use a .png or .pt path, got '{path.name}'.")
        state = {
            "format": PATCH_FORMAT,
            "patch": texture.detach().cpu().clone(),
            "mask": self.mask.detach().cpu().clone(),  # type: ignore[union-attr]
            "target": self.target,
            "area": self.area,
            "shape": self.shape,
            "image_size": list(self._geometry()),
        }
        tmp = path.with_name(path.name + ".tmp")
        torch.save(state, tmp)
        tmp.replace(path)
        return path

    def load(self, path: str | Path) -> AdversarialPatch:
        """Load a patch written by :meth:`save` (``.pt``: exact; ``.png``: 8-bit values).

        A ``.pt`` file sets the image size and checks that shape and area match
        this attack; a PNG must have this attack's texture size (its alpha channel,
        the mask, is for viewing: the mask comes from the attack's shape).
        """
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"no patch file at {path}.")
        if path.suffix.lower() == ".png":
            patch, _ = load_patch_png(path)  # the alpha channel is for viewing only
            mask = self.mask
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise CheckpointError(
                    f"cannot read {path} as a patch: {type(exc).__name__}: {exc}"
                ) from None
            if not isinstance(state, dict) or state.get("format") != PATCH_FORMAT:
                raise CheckpointError(f"{path} is not a patch written by AdversarialPatch.save.")
            if state["shape"] != self.shape or not math.isclose(state["area"], self.area):
                raise CheckpointError(
                    f"{path} holds a {state['shape']} patch of area {state['area']:g}; this "
                    f"attack is a {self.shape} of area {self.area:g}."
                )
            patch, mask = state["patch"], state["mask"]
            if self.image_size is None:
                self._set_geometry(tuple(state["image_size"]), patch.shape[0])
        if self.image_size is None:
            raise ConfigError(
                f"cannot tell the image size the PNG patch {path.name} was made for: pass "
                "image_size and channels to AdversarialPatch(...) before load(), or load the "
                ".pt file."
            )
        if patch.shape != self.patch.shape:  # type: ignore[union-attr]
            raise CheckpointError(
                f"{path} holds a patch of shape {tuple(patch.shape)}; this attack needs "
                f"{tuple(self.patch.shape)} (same area, shape and image size)."  # type: ignore[union-attr]
            )
        self.patch = patch.to(self.device)
        self.mask = mask.to(self.device)  # type: ignore[union-attr]
        self.trained = True
        return self

    # -- figures --------------------------------------------------------------------

    @torch.no_grad()
    def figure(self, images: torch.Tensor, labels: torch.Tensor | None = None, seed: int = 0):
        """The patch and the images with it pasted, titled with the model's predictions.

        Titles are red where the prediction is the target (the attack succeeded).
        """
        import matplotlib.pyplot as plt

        self._check_images(images, "images")
        patched = self.apply(images.to(self.device), generator=torch.Generator().manual_seed(seed))
        with model_mode(self.model, False):
            clean = _logits(self.model, images.to(self.device)).argmax(1).cpu()
            pred = _logits(self.model, patched).argmax(1).cpu()
        n = len(images)
        cols = min(n, 8)
        rows = 2 * math.ceil(n / cols)
        fig = plt.figure(figsize=(1.3 * (cols + 1), 1.45 * rows))
        grid = fig.add_gridspec(rows, cols + 1)
        ax = fig.add_subplot(grid[0:2, 0])
        ax.imshow(_rgba(self._texture(None), self.mask), interpolation="nearest")
        ax.set_title(f"patch -> {self.target}", fontsize=8)
        ax.axis("off")
        for i in range(n):
            r, c = divmod(i, cols)
            for k, (image, p) in enumerate(((images[i], clean[i]), (patched[i], pred[i]))):
                ax = fig.add_subplot(grid[2 * r + k, c + 1])
                shown = image.detach().float().clamp(0, 1).cpu().numpy()
                if shown.shape[0] == 1:
                    ax.imshow(shown[0], cmap="gray", vmin=0, vmax=1)
                else:
                    ax.imshow(shown.transpose(1, 2, 0))
                truth = f" (true {int(labels[i])})" if labels is not None and k == 0 else ""
                colour = "red" if k == 1 and int(p) == self.target else "black"
                ax.set_title(
                    f"{'patched' if k else 'clean'}: {int(p)}{truth}", fontsize=7, color=colour
                )
                ax.axis("off")
        fig.tight_layout()
        return fig


# -- patch files --------------------------------------------------------------------------


def _rgba(patch: torch.Tensor, mask: torch.Tensor | None) -> np.ndarray:
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


# -- helpers ------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fraction(value: Any, name: str) -> float:
    if not _is_number(value) or not 0 < value < 1:
        raise ConfigError(f"{name} must be a fraction of the image in (0, 1), got {value!r}.")
    return float(value)


def _int_at_least(value: Any, low: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def _model_device(model: nn.Module) -> torch.device:
    if isinstance(model, nn.Module):
        for tensor in model.parameters():
            return tensor.device
        for tensor in model.buffers():
            return tensor.device
    return torch.device("cpu")


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != x.shape[0]:
        got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise DataError(f"the model must return logits (N, num_classes); it returned {got}.")
    return out


def _as_pair(data: Any) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """(images, labels) for in-memory data, None for a generic iterable of batches."""
    if hasattr(data, "get_batch") and hasattr(data, "labels"):
        x, y = data.get_batch(torch.arange(len(data)))
        return x, (y if bool((y >= 0).any()) else None)
    if isinstance(data, torch.Tensor):
        return data, None
    if (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and isinstance(data[0], torch.Tensor)
        and (data[1] is None or isinstance(data[1], torch.Tensor))
    ):
        return data[0], data[1]
    return None


def _split(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        labels = batch[1] if len(batch) > 1 and isinstance(batch[1], torch.Tensor) else None
        return batch[0], labels
    raise DataError(
        f"data batches must be images or (images, labels) tensors, got {type(batch).__name__}."
    )


def _drop(x: torch.Tensor, y: torch.Tensor | None, exclude: int) -> tuple:
    if y is None:
        return x, y
    keep = y.cpu() != exclude
    return x[keep], y[keep]


def _batches(
    data: Any, batch_size: int, generator: torch.Generator, exclude: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """An endless stream of random training batches without the excluded class."""
    pair = _as_pair(data)
    if pair is not None:
        x, y = _drop(*pair, exclude)
        if len(x) == 0:
            raise DataError(f"no training images left after dropping the target class {exclude}.")
        while True:
            idx = torch.randint(len(x), (batch_size,), generator=generator)
            yield x[idx], (None if y is None else y[idx])
    if not isinstance(data, Iterable):
        raise DataError(
            "data must be an ImageTensors, (images, labels), an image tensor or an iterable of "
            f"batches, got {type(data).__name__}."
        )
    while True:
        produced = False
        for batch in data:
            x, y = _drop(*_split(batch), exclude)
            if len(x):
                produced = True
                yield x, y
        if not produced:
            raise DataError("data produced no usable batch (empty, or only target-class images).")


def _labelled(data: Any, n: int | None, exclude: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` labelled images whose class is not ``exclude``."""
    no_labels = DataError(
        "evaluate needs labels: images of the target class must be left out of the success "
        "rate. Pass (images, labels) or a labelled dataset."
    )
    pair = _as_pair(data)
    if pair is not None:
        x, y = pair
        if y is None:
            raise no_labels
        x, y = _drop(x, y, exclude)
    elif isinstance(data, Iterable):
        xs, ys, count = [], [], 0
        for batch in data:
            bx, by = _split(batch)
            if by is None:
                raise no_labels
            bx, by = _drop(bx, by, exclude)
            xs.append(bx)
            ys.append(by)
            count += len(bx)
            if n is not None and count >= n:
                break
        if not xs:
            raise DataError("data produced no batches to evaluate on.")
        x, y = torch.cat(xs), torch.cat(ys)
    else:
        raise DataError(f"cannot read images from {type(data).__name__}.")
    if n is not None:
        x, y = x[:n], y[:n]
    if len(x) == 0:
        raise DataError(f"no evaluation images left after dropping the target class {exclude}.")
    return x, y
