"""Gradient attacks on image classifiers: FGSM, BIM and PGD (L-inf and L2).

Small functions in the style of cleverhans' PyTorch attacks: each takes a
model that maps images in ``[0, 1]`` (NCHW) to logits and returns adversarial
images of the same shape and dtype. ``eps`` is always in ``[0, 1]`` pixel
units; a model that wants normalized input is wrapped with
:class:`robust.Normalize` so normalization lives inside the model.

Every attack keeps the same contract:

* the perturbation stays inside the eps-ball around ``x`` (up to float
  rounding) and the result inside ``clip``; ``eps=0`` returns a copy of ``x``;
* the model's train/eval mode is restored afterwards and its buffers
  (BatchNorm running statistics) are left untouched; parameters' ``.grad`` are
  never written (gradients are taken with :func:`torch.autograd.grad` with
  respect to the input only); the input tensor is not modified;
* untargeted attacks use the model's own predictions when ``y`` is None, which
  avoids the "label leaking" of Kurakin et al. (2017, "Adversarial Machine
  Learning at Scale"); targeted attacks move toward ``y``;
* bad arguments raise :class:`gan.errors.ConfigError` (settings) or
  :class:`gan.errors.DataError` (tensors) with a message naming the problem;
* it works on any device and under :func:`torch.autocast` (bf16/fp16): the
  loss is computed in float32 and the result keeps ``x``'s dtype.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.runtime import model_mode
from counterfeit.robust.models import checked_logits

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Norm = Literal["inf", "2"]

DEFAULT_EPS = 8 / 255


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = DEFAULT_EPS,
    *,
    targeted: bool = False,
    loss_fn: LossFn | None = None,
    clip: tuple[float, float] | None = (0.0, 1.0),
    true_labels: torch.Tensor | None = None,
    train_mode: bool = False,
    random_start: bool = False,
    step_size: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Fast gradient sign method: ``x + eps * sign(grad_x loss(model(x), y))``.

    Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial
    Examples", ICLR 2015 (Eq. 3). The L-inf attack of one step; the result is
    clipped to ``clip`` (the paper does not clip; pass ``clip=None`` for that).

    With ``random_start`` it is the "FGSM-RS" step of Wong, Rice & Kolter,
    "Fast is better than free", ICLR 2020 (Algorithm 3): ``delta ~ U(-eps, eps)``,
    ``delta += step_size * sign(grad at x + delta)``, projected onto the eps-ball,
    then clipped. As in their algorithm and MNIST code the random start itself is
    not clipped to the image range.

    Args:
        model: maps images in ``[0, 1]`` to logits (N, num_classes).
        x: images (N, C, H, W), float, inside ``clip``.
        y: untargeted: the true labels (None: the model's predictions);
            targeted: the target classes (required).
        eps: L-inf budget in pixel units (default 8/255).
        targeted: move toward ``y`` (descend the loss) instead of away from it.
        loss_fn: ``loss_fn(logits, y)`` returning a scalar or per-example
            losses (summed); default: cross-entropy.
        clip: valid pixel range ``(min, max)``, or None for no clipping.
        true_labels: for targeted attacks, the true labels: a target equal to
            its true label is refused.
        train_mode: run the model in train mode (batch statistics, dropout),
            as adversarial training does; buffers are restored afterwards.
        random_start: start from a uniformly random point of the eps-ball (FGSM-RS).
        step_size: the signed step (default ``eps``; Wong et al. use ``1.25 eps``
            with a random start).
        generator: random generator for the start.

    Returns:
        Adversarial images, same shape, dtype and device as ``x``.
    """
    lo, hi = _check(model, x, eps, clip, targeted, y, true_labels)
    step_size = eps if step_size is None else _check_step_size(step_size)
    if eps == 0:
        return x.detach().clone()
    with _attack_context(model, train_mode):
        y = _labels(model, x, y)
        x0 = x.detach()
        if not random_start:
            grad = _input_gradient(model, x0, y, loss_fn, check_labels=True)
            direction = -grad.sign() if targeted else grad.sign()
            return _clip(x0 + eps * direction, lo, hi).to(x.dtype)
        delta = _uniform_in_ball(x0, eps, "inf", generator)
        grad = _input_gradient(model, x0 + delta, y, loss_fn, check_labels=True)
        step = step_size * (-grad.sign() if targeted else grad.sign())
        return _clip(x0 + _project(delta + step, eps, "inf"), lo, hi).to(x.dtype)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = DEFAULT_EPS,
    *,
    steps: int = 10,
    step_size: float | None = None,
    norm: Norm | float = "inf",
    random_start: bool = True,
    targeted: bool = False,
    loss_fn: LossFn | None = None,
    clip: tuple[float, float] | None = (0.0, 1.0),
    true_labels: torch.Tensor | None = None,
    train_mode: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient descent on the loss, inside an L-inf or L2 eps-ball.

    Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models
    Resistant to Adversarial Attacks", ICLR 2018: a uniform random start in
    the ball, then ``steps`` steps of ``x + step_size * sign(grad)`` (L-inf) or
    ``x + step_size * grad / ||grad||_2`` (L2), each projected back onto the
    ball and ``clip``. The final iterate is returned.

    Defaults: 10 steps of ``2.5 * eps / steps`` (the step-size rule of Madry et
    al.'s code; their MNIST model used 40 steps of 0.01 at eps 0.3, CIFAR-10
    7 steps of 2/255 for training and 20 for evaluation). Pass ``steps`` and
    ``step_size`` to reproduce a particular setting.

    Args:
        steps: number of gradient steps (>= 1).
        step_size: size of each step in pixel units (default ``2.5 * eps / steps``).
        norm: ``"inf"`` or ``"2"`` (also ``float("inf")`` or ``2``); the L2
            ball's radius ``eps`` is the Euclidean norm over (C, H, W).
        random_start: start uniformly inside the ball (Madry et al.) or at ``x``.
        generator: random generator for the start (reproducible attacks).
        The other arguments are as in :func:`fgsm`.
    """
    norm = _norm(norm)
    lo, hi = _check(model, x, eps, clip, targeted, y, true_labels)
    steps, step_size = _iterations(steps, step_size, eps)
    if eps == 0:
        return x.detach().clone()
    with _attack_context(model, train_mode):
        y = _labels(model, x, y)
        x0 = x.detach()
        x_adv = x0
        if random_start:
            x_adv = _clip(x0 + _uniform_in_ball(x0, eps, norm, generator), lo, hi)
        for i in range(steps):
            grad = _input_gradient(model, x_adv, y, loss_fn, check_labels=i == 0)
            step = _steepest_ascent(grad, norm) * step_size
            x_adv = x_adv + (-step if targeted else step)
            x_adv = _clip(x0 + _project(x_adv - x0, eps, norm), lo, hi)
        return x_adv.to(x.dtype)


def bim(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    eps: float = DEFAULT_EPS,
    *,
    steps: int | None = None,
    step_size: float = 1 / 255,
    norm: Norm | float = "inf",
    targeted: bool = False,
    loss_fn: LossFn | None = None,
    clip: tuple[float, float] | None = (0.0, 1.0),
    true_labels: torch.Tensor | None = None,
    train_mode: bool = False,
) -> torch.Tensor:
    """Basic iterative method: repeated small FGSM steps, projected onto the eps-ball.

    Kurakin, Goodfellow & Bengio, "Adversarial Examples in the Physical World",
    ICLR workshop 2017 (arXiv 2016), Sec. 2.2: ``X_{N+1} = Clip_{X,eps}(X_N +
    alpha sign(grad))`` starting at ``X_0 = X``, with the paper's ``alpha = 1``
    (1/255 in pixel units) and ``min(eps + 4, 1.25 eps)`` iterations (eps in
    0-255 units, rounded down). It is :func:`pgd` without the random start.

    Args:
        steps: number of iterations (default: the paper's rule above).
        step_size: alpha in pixel units (default 1/255).
        norm: ``"inf"`` (the paper) or ``"2"``.
        The other arguments are as in :func:`fgsm`.
    """
    if steps is None:
        _check_eps(eps)
        steps = max(1, int(min(eps * 255 + 4, 1.25 * eps * 255)))
    return pgd(
        model,
        x,
        y,
        eps,
        steps=steps,
        step_size=step_size,
        norm=norm,
        random_start=False,
        targeted=targeted,
        loss_fn=loss_fn,
        clip=clip,
        true_labels=true_labels,
        train_mode=train_mode,
    )


def random_targets(
    y: torch.Tensor, num_classes: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A random target class different from each true label (for targeted attacks)."""
    if num_classes < 2:
        raise ConfigError(f"targeted attacks need at least 2 classes, got {num_classes}.")
    shift = torch.randint(1, num_classes, y.shape, generator=generator, device="cpu")
    return (y + shift.to(y.device)) % num_classes


# -- checks ------------------------------------------------------------------


def check_count(name: str, value: int) -> None:
    """Refuse ``value`` unless it is an integer >= 1 (a number of steps, queries, images)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}.")


def _check_eps(eps: float) -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise ConfigError(f"eps must be a number, got {type(eps).__name__}.")
    if not math.isfinite(eps) or eps < 0:
        raise ConfigError(f"eps must be a finite number >= 0 (pixel units in [0, 1]), got {eps}.")


def _check(
    model: nn.Module,
    x: torch.Tensor,
    eps: float,
    clip: tuple[float, float] | None,
    targeted: bool,
    y: torch.Tensor | None,
    true_labels: torch.Tensor | None,
) -> tuple[float | None, float | None]:
    """Validate the arguments every attack shares; returns the clip bounds."""
    if not callable(model):
        raise ConfigError(
            f"model must be an nn.Module (or a callable), got {type(model).__name__}."
        )
    _check_eps(eps)
    lo, hi = None, None
    if clip is not None:
        if len(clip) != 2:
            raise ConfigError(f"clip must be (min, max) or None, got {clip!r}.")
        lo, hi = float(clip[0]), float(clip[1])
        if lo > hi:
            raise ConfigError(f"clip_min must be <= clip_max, got clip=({lo}, {hi}).")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        what = f"a tensor of dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise DataError(
            f"x must be a float tensor of images in [0, 1], got {what}"
            + (" (divide uint8 images by 255)." if isinstance(x, torch.Tensor) else ".")
        )
    if x.ndim < 2 or x.shape[0] == 0:
        raise DataError(f"x must be a non-empty batch (N, ...), got shape {tuple(x.shape)}.")
    if lo is not None and hi is not None:
        low, high = (float(v) for v in torch.aminmax(x.detach()))
        as_x = torch.tensor([lo, hi], dtype=x.dtype).tolist()  # compare in x's precision
        if low < as_x[0] or high > as_x[1]:
            raise DataError(
                f"x has values in [{low:.4g}, {high:.4g}], outside clip=({lo:g}, {hi:g}). "
                "Attacks take images in [0, 1] pixel units: if the model expects normalized "
                "input, pass unnormalized images and wrap the model with "
                "robust.Normalize(model, mean, std)."
            )
    for name, labels in (("y", y), ("true_labels", true_labels)):
        if labels is not None and (
            not isinstance(labels, torch.Tensor) or labels.shape[:1] != x.shape[:1]
        ):
            shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels)
            raise DataError(
                f"{name} must be a tensor with one entry per image of x: x has "
                f"{x.shape[0]} images, {name} has shape {shape}."
            )
    if targeted:
        if y is None:
            raise ConfigError("a targeted attack needs y: the target class of each image.")
        if true_labels is not None:
            same = int((y.to(true_labels.device) == true_labels).sum())
            if same:
                raise ConfigError(
                    f"targeted attack: {same} of {len(y)} targets equal the true label; each "
                    "target must differ from its true label (robust.random_targets draws such "
                    "targets)."
                )
    elif true_labels is not None:
        raise ConfigError("true_labels is only used by targeted attacks; pass the labels as y.")
    return lo, hi


def _norm(norm: Norm | float) -> Norm:
    key = str(norm).lower().lstrip("l")
    if key in ("inf", "2", "2.0"):
        return "inf" if key == "inf" else "2"
    raise ConfigError(f"norm must be 'inf' or '2' (L-inf or L2), got {norm!r}.")


def _iterations(steps: int, step_size: float | None, eps: float) -> tuple[int, float]:
    """Validated (steps, step size); the default step is ``2.5 * eps / steps`` (Madry et al.)."""
    check_count("steps", steps)
    return steps, 2.5 * eps / steps if step_size is None else _check_step_size(step_size)


def _check_step_size(step_size: float) -> float:
    if (
        isinstance(step_size, bool)
        or not isinstance(step_size, (int, float))
        or not math.isfinite(step_size)
        or step_size < 0
    ):
        raise ConfigError(f"step_size must be a finite number >= 0, got {step_size!r}.")
    return float(step_size)


# -- the pieces ---------------------------------------------------------------


@contextlib.contextmanager
def _attack_context(model: nn.Module, train_mode: bool) -> Iterator[None]:
    """Gradients on (even under no_grad), the requested mode, buffers restored."""
    if torch.is_inference_mode_enabled():
        raise ConfigError(
            "attacks need gradients: call them outside torch.inference_mode() "
            "(torch.no_grad() is fine)."
        )
    buffers = list(model.buffers()) if train_mode and isinstance(model, nn.Module) else []
    saved = [b.detach().clone() for b in buffers]
    with torch.enable_grad(), model_mode(model, train_mode):
        try:
            yield
        finally:
            with torch.no_grad():
                for buffer, value in zip(buffers, saved):
                    buffer.copy_(value)


def _labels(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """The labels the loss is taken against: ``y``, or the model's predictions."""
    if y is not None:
        return y.to(x.device)
    with torch.no_grad():
        return checked_logits(model, x.detach()).argmax(1)


def _input_gradient(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn | None,
    check_labels: bool = False,
) -> torch.Tensor:
    """d loss / d x, without touching any parameter's ``.grad``."""
    x = x.detach().requires_grad_(True)
    logits = checked_logits(model, x).float()
    if loss_fn is None:
        if check_labels:
            _check_labels(y, logits.shape[1])
        # A sum, not a mean: per-example gradients do not shrink with the batch size
        # (which matters for fp16); the sign and the L2 direction are unchanged.
        loss = F.cross_entropy(logits, y, reduction="sum")
    else:
        loss = loss_fn(logits, y).sum()
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def _check_labels(y: torch.Tensor, classes: int) -> None:
    if y.is_floating_point() or y.is_complex() or y.ndim != 1:
        raise DataError(
            f"labels must be integer class indices of shape (N,), got dtype {y.dtype} "
            f"and shape {tuple(y.shape)}."
        )
    if bool(((y < 0) | (y >= classes)).any()):
        raise DataError(
            f"labels must lie in [0, {classes - 1}] for a model with {classes} outputs, "
            f"got values in [{int(y.min())}, {int(y.max())}]."
        )


def _steepest_ascent(grad: torch.Tensor, norm: Norm) -> torch.Tensor:
    """The unit-norm step that most increases a linearised loss."""
    if norm == "inf":
        return grad.sign()
    size = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
    return grad / size.view(-1, *([1] * (grad.ndim - 1)))


def _project(delta: torch.Tensor, eps: float, norm: Norm) -> torch.Tensor:
    """Project a perturbation onto the eps-ball."""
    if norm == "inf":
        return delta.clamp(-eps, eps)
    size = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor = (eps / size).clamp(max=1.0)
    return delta * factor.view(-1, *([1] * (delta.ndim - 1)))


def _uniform_in_ball(
    x: torch.Tensor, eps: float, norm: Norm, generator: torch.Generator | None
) -> torch.Tensor:
    """A perturbation drawn uniformly from the eps-ball (per example)."""
    device = generator.device if generator is not None else x.device
    shape = x.shape
    if norm == "inf":
        u = torch.rand(shape, generator=generator, device=device, dtype=torch.float32)
        return ((2 * u - 1) * eps).to(x.device, x.dtype)
    direction = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
    direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1e-12).view(
        -1, *([1] * (x.ndim - 1))
    )
    dims = x[0].numel()
    radius = eps * torch.rand(shape[0], generator=generator, device=device) ** (1.0 / dims)
    return (direction * radius.view(-1, *([1] * (x.ndim - 1)))).to(x.device, x.dtype)


def _clip(x: torch.Tensor, lo: float | None, hi: float | None) -> torch.Tensor:
    return x if lo is None else x.clamp(lo, hi)
