"""Measuring a patch: targeted success beside a random-noise control, through robust.evaluate.

:class:`PatchAttack` puts an :class:`robust.AdversarialPatch` under the attack
contract (:class:`robust.Attack`), so :func:`robust.evaluate` measures it beside
any other attack; :func:`evaluate_patch` is the patch's own measurement (the
trained patch, a random-noise control at the same placements, a curve over
areas) made that way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import torch
from torch import nn

from counterfeit.gan.errors import DataError
from counterfeit.gan.runtime import model_mode
from counterfeit.robust.batches import as_pair, drop_class, split_batch
from counterfeit.robust.contract import Attack
from counterfeit.robust.evaluate import evaluate
from counterfeit.robust.models import checked_logits
from counterfeit.robust.patch.geometry import Placement, fraction, int_at_least
from counterfeit.robust.patch.io import patch_rgba
from counterfeit.robust.report import RobustnessReport


class PatchUnderTest(Protocol):
    """What the measurement reads of a :class:`robust.AdversarialPatch`.

    A protocol, so this module does not import the attack that calls it
    (``AdversarialPatch.evaluate`` and ``.figure`` wrap :func:`evaluate_patch` and
    :func:`patch_figure`); :class:`PatchGeometry` provides all but the model and
    the target.
    """

    model: nn.Module
    target: int
    area: float
    scale: tuple[float, float]
    shape: str
    seed: int
    device: torch.device
    mask: torch.Tensor | None

    def apply(
        self,
        images: torch.Tensor,
        placement: Placement | None = None,
        *,
        patch: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Any: ...

    def sample_placement(
        self, n: int, generator: torch.Generator | None = None, scale: float | None = None
    ) -> Placement: ...

    def _texture(self, patch: torch.Tensor | None) -> torch.Tensor: ...

    def _check_fits(self, area: float, scale_max: float | None = None) -> None: ...

    def _check_images(self, images: torch.Tensor, name: str) -> None: ...


PATCH, CONTROL = "patch", "control"
FIXED_SCALE = " fixed-scale"


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
        report: the :class:`robust.RobustnessReport` these numbers come from (its
            images are the ``trials`` passes over the ``n`` images).
    """

    target: int
    area: float
    n: int
    success: float
    control: float
    clean_target: float
    curve: list[tuple[float, float, float]] = field(default_factory=list)
    trials: int = 1
    report: RobustnessReport | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The numbers as plain values (without the report)."""
        out = asdict(replace(self, report=None))
        out.pop("report")
        return out

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


class PatchAttack(Attack):
    """An adversarial patch under the attack contract of :class:`robust.Attack`.

    Targeted (toward the patch's target class), with the patch's area as its
    budget. Each call pastes the patch on every image at a random placement: at
    each of ``areas`` with the fixed scale that gives that area (random location
    and rotation), or, without ``areas``, at the patch's own area with the scales
    and rotations it was trained with. Every budget draws its placements from its
    own generator, reseeded by :meth:`reset`, so two PatchAttacks evaluated with
    the same seed paste their textures at the same places.

    Args:
        patch: an :class:`robust.AdversarialPatch` (trained or loaded unless
            ``texture`` is given).
        areas: fractions of the image to show the patch at; None: its own area.
        texture: a texture (C, R, R) in [0, 1] to paste instead of the patch's own
            (a random-noise control, or an untrained patch).
    """

    budget = "area"

    def __init__(
        self,
        patch: PatchUnderTest,
        *,
        areas: Sequence[float] | None = None,
        texture: torch.Tensor | None = None,
    ) -> None:
        self.patch = patch
        self.texture = patch._texture(texture)
        self.fixed_scale = areas is not None
        if areas is None:
            self.budgets = (patch.area,)
        else:
            self.budgets = tuple(dict.fromkeys(fraction(a, "areas") for a in areas))
            for area in self.budgets:
                patch._check_fits(area, scale_max=1.0)
        self._generators: dict[float, torch.Generator] = {}
        self.reset(patch.seed + 1)

    def reset(self, seed: int) -> None:
        self._generators = {b: torch.Generator().manual_seed(seed) for b in self.budgets}

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        return torch.full_like(y, self.patch.target)

    @torch.no_grad()
    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, budget: float
    ) -> torch.Tensor:
        scale = math.sqrt(budget / self.patch.area) if self.fixed_scale else None
        placement = self.patch.sample_placement(len(x), self._generators[budget], scale=scale)
        return self.patch.apply(x, placement, patch=self.texture)

    def describe(self) -> str:
        scales = "fixed scale" if self.fixed_scale else f"scales {self.patch.scale}"
        return f"patch(target={self.patch.target}, {self.patch.shape}, {scales})"


def evaluate_patch(
    attack: PatchUnderTest,
    data: Any,
    *,
    n: int | None = 1000,
    areas: Sequence[float] | None = None,
    trials: int = 1,
    batch_size: int = 256,
    seed: int | None = None,
) -> PatchEvaluation:
    """Targeted success of ``attack``'s patch beside a random-noise control, by robust.evaluate.

    The first ``n`` labelled images not of the target class are read in their
    order, ``trials`` times, ``batch_size`` at a time; :func:`robust.evaluate`
    measures the patch and a control patch of uniform noise (same shape and mask,
    at exactly the same placements), each as a :class:`PatchAttack`, and with
    ``areas`` both again at a fixed scale per area.

    Args:
        attack: a trained (or loaded) :class:`robust.AdversarialPatch`.
        data: labelled images: an ImageTensors, ``(images, labels)`` or an iterable
            of ``(images, labels)`` batches.
        n: evaluate at most this many images (None: all).
        areas: also show the patch at each of these areas: the success-vs-area curve.
        trials: random placements per image.
        batch_size: images per batch.
        seed: placements and control noise (default: the attack's seed + 1).

    Returns:
        The :class:`PatchEvaluation`, with the report it comes from.
    """
    trials = int_at_least(trials, 1, "trials")
    batch_size = int_at_least(batch_size, 1, "batch_size")
    x_all, y_all = _labelled(data, n, exclude=attack.target)
    attack._check_images(x_all, "data images")
    texture = attack._texture(None)
    seed = attack.seed + 1 if seed is None else int(seed)
    noise = torch.rand(texture.shape, generator=torch.Generator().manual_seed(seed + 10_007))
    noise = noise.to(texture.device)
    attacks = {PATCH: PatchAttack(attack), CONTROL: PatchAttack(attack, texture=noise)}
    if areas:
        attacks[PATCH + FIXED_SCALE] = PatchAttack(attack, areas=areas)
        attacks[CONTROL + FIXED_SCALE] = PatchAttack(attack, areas=areas, texture=noise)
    passes = [
        (x_all[start : start + batch_size], y_all[start : start + batch_size])
        for _ in range(trials)
        for start in range(0, len(x_all), batch_size)
    ]
    with model_mode(attack.model, False):  # as during fit: eval mode, without a warning
        report = evaluate(
            attack.model,
            passes,
            attacks,
            eps=[0.0],
            corruptions=None,
            batch_size=batch_size,
            device=attack.device,
            seed=seed,
        )
    curves = report.curves
    curve = []
    for area in areas or ():
        at = {
            name: dict(zip(curves[name].budgets, curves[name].targeted_success))
            for name in (PATCH + FIXED_SCALE, CONTROL + FIXED_SCALE)
        }
        area = fraction(area, "areas")
        curve.append((area, at[PATCH + FIXED_SCALE][area], at[CONTROL + FIXED_SCALE][area]))
    return PatchEvaluation(
        attack.target,
        attack.area,
        len(x_all),
        curves[PATCH].targeted_success[0],
        curves[CONTROL].targeted_success[0],
        curves[PATCH].clean_success,
        curve,
        trials,
        report,
    )


@torch.no_grad()
def patch_figure(
    attack: PatchUnderTest, images: torch.Tensor, labels: torch.Tensor | None, seed: int
):
    """The patch and ``images`` with it pasted, titled with the model's predictions.

    Titles are red where the prediction is the target (the attack succeeded).
    """
    import matplotlib.pyplot as plt

    attack._check_images(images, "images")
    patched = attack.apply(images.to(attack.device), generator=torch.Generator().manual_seed(seed))
    with model_mode(attack.model, False):
        clean = checked_logits(attack.model, images.to(attack.device)).argmax(1).cpu()
        pred = checked_logits(attack.model, patched).argmax(1).cpu()
    n = len(images)
    cols = min(n, 8)
    rows = 2 * math.ceil(n / cols)
    fig = plt.figure(figsize=(1.3 * (cols + 1), 1.45 * rows))
    grid = fig.add_gridspec(rows, cols + 1)
    ax = fig.add_subplot(grid[0:2, 0])
    ax.imshow(patch_rgba(attack._texture(None), attack.mask), interpolation="nearest")
    ax.set_title(f"patch -> {attack.target}", fontsize=8)
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
            colour = "red" if k == 1 and int(p) == attack.target else "black"
            ax.set_title(
                f"{'patched' if k else 'clean'}: {int(p)}{truth}", fontsize=7, color=colour
            )
            ax.axis("off")
    fig.tight_layout()
    return fig


def _labelled(data: Any, n: int | None, exclude: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` labelled images whose class is not ``exclude``."""
    no_labels = DataError(
        "evaluate needs labels: images of the target class must be left out of the success "
        "rate. Pass (images, labels) or a labelled dataset."
    )
    pair = as_pair(data)
    if pair is not None:
        x, y = pair
        if y is None:
            raise no_labels
        x, y = drop_class(x, y, exclude)
    elif isinstance(data, Iterable):
        xs, ys, count = [], [], 0
        for batch in data:
            bx, by = split_batch(batch)
            if by is None:
                raise no_labels
            bx, by = drop_class(bx, by, exclude)
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
