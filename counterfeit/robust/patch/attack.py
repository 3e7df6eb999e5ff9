"""Adversarial patches: one universal sticker that makes a classifier see a chosen class.

Brown, Mané, Roy, Abadi & Gilmer, "Adversarial Patch", NIPS 2017 workshop
(arXiv 1712.09665). A patch ``p`` is trained to maximise the expected
log-probability of a target class ``t`` over images ``x``, locations ``l``
and transformations ``T`` (their Eq. 2, expectation over transformation,
Athalye et al. 2018)::

    p* = argmax_p  E_{x ~ X, t ~ T, l ~ L} [ log Pr(t | A(p, x, l, t)) ]

where ``A`` pastes the transformed patch onto the image: differentiable
placement with affine grids (:mod:`robust.patch.geometry`), each image of a
batch with its own random scale, rotation and location.

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
  (docs/results.md). Its gradient is tiny while Pr(t) is near 0 on every
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

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.runtime import model_mode
from counterfeit.robust.batches import as_pair, drop_class, split_batch
from counterfeit.robust.models import checked_logits, model_device
from counterfeit.robust.patch.evaluation import PatchEvaluation, evaluate_patch, patch_figure
from counterfeit.robust.patch.geometry import (
    Location,
    PatchGeometry,
    Shape,
    int_at_least,
    is_number,
    place_patch,
)
from counterfeit.robust.patch.io import load_patch, save_patch


class AdversarialPatch(PatchGeometry):
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
        location: Location = "random",
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
        self.target = int_at_least(target, 0, "target")
        super().__init__(
            shape=shape,
            area=area,
            scale=scale,
            rotation=rotation,
            location=location,
            seed=seed,
            device=torch.device(device) if device is not None else model_device(model),
        )
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
        if not is_number(lr) or lr <= 0:
            raise ConfigError(f"lr must be a number > 0, got {lr!r}.")
        if not is_number(kappa) or kappa < 0:
            raise ConfigError(f"kappa must be a number >= 0, got {kappa!r}.")
        self.optimizer, self.lr, self.lr_schedule = optimizer, float(lr), lr_schedule
        self.parameterization, self.loss, self.kappa = parameterization, loss, float(kappa)
        self.steps = int_at_least(steps, 1, "steps")
        self.batch_size = int_at_least(batch_size, 1, "batch_size")
        self.progress = progress
        self.history: list[float] = []
        if image_size is not None or channels is not None:
            self._set_geometry(image_size, channels)

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
        batches = _training_batches(data, self.batch_size, generator, exclude=self.target)
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
                logits = checked_logits(self.model, patched)
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
        shape and mask) is shown at exactly the same placements. Measured by
        :func:`robust.evaluate` through :func:`robust.evaluate_patch`; the report is
        the result's ``report``.

        Args:
            data: labelled images, as for :meth:`fit` (labels are required).
            n: evaluate at most this many images (None: all).
            areas: also show the trained patch at each of these areas (fixed scale,
                random location and rotation): the success-vs-area curve.
            trials: random placements per image.
            seed: placements and control noise (default: the attack's seed + 1).
        """
        return evaluate_patch(
            self, data, n=n, areas=areas, trials=trials, batch_size=batch_size, seed=seed
        )

    # -- saving ----------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the patch: ``.png`` (8-bit, the mask as alpha: print it) or ``.pt`` (exact)."""
        return save_patch(self, path, self.target)

    def load(self, path: str | Path) -> AdversarialPatch:
        """Load a patch written by :meth:`save` (``.pt``: exact; ``.png``: 8-bit values).

        A ``.pt`` file sets the image size and checks that shape and area match
        this attack; a PNG must have this attack's texture size (its alpha channel,
        the mask, is for viewing: the mask comes from the attack's shape).
        """
        load_patch(self, path)
        return self

    # -- figures --------------------------------------------------------------------

    def figure(self, images: torch.Tensor, labels: torch.Tensor | None = None, seed: int = 0):
        """The patch and the images with it pasted, titled with the model's predictions.

        Titles are red where the prediction is the target (the attack succeeded).
        """
        return patch_figure(self, images, labels, seed)


def _training_batches(
    data: Any, batch_size: int, generator: torch.Generator, exclude: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """An endless stream of random training batches without the excluded class."""
    pair = as_pair(data)
    if pair is not None:
        x, y = drop_class(*pair, exclude)
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
            x, y = drop_class(*split_batch(batch), exclude)
            if len(x):
                produced = True
                yield x, y
        if not produced:
            raise DataError("data produced no usable batch (empty, or only target-class images).")
