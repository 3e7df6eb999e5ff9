"""Adversarial training through :class:`gan.Trainer`.

Wong, Rice & Kolter, "Fast is better than free: Revisiting adversarial
training", ICLR 2020: FGSM adversarial training becomes as robust as PGD
training when the FGSM step starts from a uniformly random point of the
eps-ball and uses step ``alpha = 1.25 eps`` (their Algorithm 3, "FGSM-RS"),
trained with a cyclic learning rate (linear up to ``lr`` and back to 0), and
stopped early when it "catastrophically overfits": robustness to PGD on a
held-out batch collapses within a few steps while FGSM accuracy soars.

:class:`AdversarialTraining` trains any classifier with ``method="fgsm-rs"``
(that algorithm), ``"fgsm"`` (Goodfellow et al. 2015, Eq. 6: ``0.5 J(x) +
0.5 J(x + eps sign(grad))``, no random start), ``"trades"`` (Zhang et al.,
"Theoretically Principled Trade-off between Robustness and Accuracy", ICML
2019: ``CE(f(x), y) + beta * KL(f(x) || f(x'))`` with ``x'`` from sign-gradient
ascent on that KL, started at ``x + 0.001 N(0, I)``; their MNIST code: beta 1,
40 steps of 0.01 at eps 0.3) or ``"standard"`` (clean training with the same
optimiser and schedule, the baseline).
:class:`CatastrophicOverfittingStop` is the early stop.

Deviations: FGSM and FGSM-RS examples are made with the model in train mode (as
in Wong et al.'s code) but BatchNorm running statistics are not updated by
the attack's forward passes (only by the training forward pass); TRADES'
inner maximisation runs in eval mode, as in its authors' code. The
catastrophic-overfitting check runs the model in eval mode. TRADES trains
here with the class's optimiser and schedule (Wong et al.'s Adam and cyclic
rate by default), not its authors' SGD with step decays.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.callbacks import CollapseStop
from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.method import StepContext, TrainingMethod
from counterfeit.gan.runtime import model_mode
from counterfeit.robust.attacks import check_count, fgsm, pgd

Method = Literal["standard", "fgsm", "fgsm-rs", "trades"]
METHODS: tuple[str, ...] = ("standard", "fgsm", "fgsm-rs", "trades")


class AdversarialTraining(TrainingMethod):
    """Train ``model`` on adversarial examples (or clean images, ``method="standard"``).

    Args:
        model: a classifier taking images in [0, 1] and returning logits.
        method: ``"fgsm-rs"`` (Wong et al. 2020), ``"fgsm"`` (Goodfellow et al.
            2015), ``"trades"`` (Zhang et al. 2019) or ``"standard"``.
        eps: the L-inf training budget in pixel units (Wong et al.'s MNIST: 0.3).
        step_size: FGSM-RS step alpha (default ``1.25 * eps``, the paper's); for
            TRADES the inner step (default ``eps / 30``: 0.01 at eps 0.3, its MNIST code).
        trades_beta: TRADES' beta (1 / lambda; its MNIST code: 1, CIFAR-10: 6).
        trades_steps: TRADES' inner steps (its MNIST code: 40; CIFAR-10: 10).
        fgsm_weight: Goodfellow's alpha, the clean term's weight (paper: 0.5).
        optimizer: ``"adam"`` (Wong et al.'s MNIST) or ``"sgd"`` (their CIFAR-10).
        lr: the peak learning rate (MNIST: 5e-3 with Adam; CIFAR-10: 0.2 with SGD).
        momentum, weight_decay: SGD settings (CIFAR-10: 0.9, 5e-4).
        lr_schedule: ``"cyclic"`` (0 -> ``lr`` at ``lr_peak`` of training -> 0,
            stepped every step) or ``"constant"``.
        lr_peak: where the cycle peaks, as a fraction of training (their MNIST
            code: 0.4; CIFAR-10: 0.5).
        clip: the valid pixel range.

    ``model(x)`` (and ``self(x)``) return logits; ``self.model`` is what to export.
    """

    progress_metrics = ("loss", "acc/train")

    def __init__(
        self,
        model: nn.Module,
        *,
        method: Method = "fgsm-rs",
        eps: float = 0.3,
        step_size: float | None = None,
        fgsm_weight: float = 0.5,
        trades_beta: float = 1.0,
        trades_steps: int = 40,
        optimizer: Literal["adam", "sgd"] = "adam",
        lr: float = 5e-3,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        lr_schedule: Literal["cyclic", "constant"] = "cyclic",
        lr_peak: float = 0.5,
        clip: tuple[float, float] = (0.0, 1.0),
    ) -> None:
        super().__init__()
        if method not in METHODS:
            raise ConfigError(f"unknown method '{method}'; choose one of {', '.join(METHODS)}.")
        if not 0 <= eps <= 1:
            raise ConfigError(f"eps must be in [0, 1] (pixel units), got {eps}.")
        if optimizer not in ("adam", "sgd"):
            raise ConfigError(f"unknown optimizer '{optimizer}'; use 'adam' or 'sgd'.")
        if lr_schedule not in ("cyclic", "constant"):
            raise ConfigError(f"unknown lr_schedule '{lr_schedule}'; use 'cyclic' or 'constant'.")
        if not 0 < lr_peak < 1:
            raise ConfigError(f"lr_peak must be in (0, 1), got {lr_peak}.")
        if not 0 <= fgsm_weight <= 1:
            raise ConfigError(f"fgsm_weight must be in [0, 1], got {fgsm_weight}.")
        if lr <= 0:
            raise ConfigError(f"lr must be > 0, got {lr}.")
        if trades_beta < 0:
            raise ConfigError(f"trades_beta must be >= 0, got {trades_beta}.")
        check_count("trades_steps", trades_steps)
        self.save_hyperparameters(ignore=("model",))
        self.model = model
        self.method = method
        self.eps = float(eps)
        default_step = self.eps / 30 if method == "trades" else 1.25 * self.eps
        self.step_size = default_step if step_size is None else float(step_size)
        self.trades_beta, self.trades_steps = float(trades_beta), trades_steps
        self.fgsm_weight = fgsm_weight
        self.clip = clip
        self.optimizer_kind, self.lr, self.momentum = optimizer, lr, momentum
        self.weight_decay, self.lr_schedule, self.lr_peak = weight_decay, lr_schedule, lr_peak

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        if self.optimizer_kind == "adam":
            opt = torch.optim.Adam(
                self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay
            )
        else:
            opt = torch.optim.SGD(
                self.model.parameters(),
                lr=self.lr,
                momentum=self.momentum,
                weight_decay=self.weight_decay,
            )
        return {"model": opt}

    def configure_schedulers(self, optimizers, total_steps: int) -> dict:
        if self.lr_schedule == "constant":
            return {}
        return {"model": cyclic_lr(optimizers["model"], total_steps, self.lr_peak)}

    def adversarial_examples(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training inputs of one step: FGSM-RS, FGSM or (standard) the clean images."""
        if self.method == "fgsm-rs":
            # Wong et al. 2020, Alg. 3: delta ~ U(-eps, eps), one step of alpha * sign(grad),
            # projected onto the eps-ball, then clipped to the image range.
            return fgsm(
                self.model,
                x,
                y,
                self.eps,
                random_start=True,
                step_size=self.step_size,
                clip=self.clip,
                train_mode=True,
            )
        if self.method == "fgsm":
            return fgsm(self.model, x, y, self.eps, clip=self.clip, train_mode=True)
        if self.method == "trades":
            return self.trades_examples(x)
        return x

    def trades_examples(self, x: torch.Tensor) -> torch.Tensor:
        """TRADES' inner maximisation: ``trades_steps`` sign steps of ``step_size`` up
        ``KL(f(x) || f(x'))`` from ``x + 0.001 N(0, I)``, projected onto the eps-ball and
        clipped (Zhang et al. 2019, Alg. 1; their ``trades.py``), in eval mode."""
        x = x.detach()
        lo, hi = self.clip
        with torch.enable_grad(), model_mode(self.model, False):
            with torch.no_grad():
                clean = F.softmax(self.model(x).float(), dim=1)
            x_adv = x + 0.001 * torch.randn_like(x)
            for _ in range(self.trades_steps):
                x_adv = x_adv.detach().requires_grad_(True)
                divergence = F.kl_div(
                    F.log_softmax(self.model(x_adv).float(), dim=1), clean, reduction="sum"
                )
                (grad,) = torch.autograd.grad(divergence, x_adv)
                x_adv = x_adv.detach() + self.step_size * grad.sign()
                x_adv = torch.minimum(torch.maximum(x_adv, x - self.eps), x + self.eps)
                x_adv = x_adv.clamp(lo, hi)
        return x_adv.detach()

    def train_step(self, batch, ctx: StepContext) -> dict[str, torch.Tensor]:
        """One step on ``(images, labels)``."""
        x, y = batch
        if ctx.step == 0 and bool((y < 0).any()):
            raise DataError("adversarial training needs labelled images; this data has none.")
        optimizer = ctx.optimizers["model"]
        with ctx.autocast():
            x_adv = self.adversarial_examples(x, y)
            if self.method == "trades":
                logits = self.model(x)
                clean = F.log_softmax(logits.float(), dim=1)
                robust = F.kl_div(
                    F.log_softmax(self.model(x_adv).float(), dim=1),
                    clean,
                    reduction="batchmean",
                    log_target=True,
                )
                loss = F.cross_entropy(logits.float(), y) + self.trades_beta * robust
            else:
                logits = self.model(x_adv)
                loss = F.cross_entropy(logits.float(), y)
            if self.method == "fgsm":
                clean = F.cross_entropy(self.model(x).float(), y)
                loss = self.fgsm_weight * clean + (1 - self.fgsm_weight) * loss
        optimizer.zero_grad(set_to_none=True)
        ctx.backward(loss)
        ctx.optimizer_step(optimizer)
        return {"loss": loss.detach(), "acc/train": (logits.argmax(1) == y).float().mean()}


def cyclic_lr(
    optimizer: torch.optim.Optimizer, total_steps: int, peak: float = 0.5
) -> torch.optim.lr_scheduler.LambdaLR:
    """Triangular one-cycle schedule: 0 -> base lr at ``peak`` of training -> 0.

    As in Wong et al.'s code (after Smith & Topin 2018), step ``t`` uses the
    factor at ``(t + 1) / total_steps``, so the first step already moves and
    the last one uses a learning rate of 0.
    """
    points = [0.0, peak, 1.0]
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: float(np.interp((step + 1) / total_steps, points, [0.0, 1.0, 0.0])),
    )


class CatastrophicOverfittingStop(CollapseStop):
    """Stop adversarial training when PGD accuracy on a held-out batch collapses.

    Wong et al. 2020, Sec. 5.2 and their code's ``--early-stop``: every
    ``every`` steps, run PGD (``steps`` steps of ``eps / 4`` with a random
    start; their CIFAR-10 check: 5 steps of 2/255 at eps 8/255) on a fixed
    batch; when robust accuracy falls by more than ``drop`` (0.2) since the
    previous check, restore the weights of that previous check and stop
    (:class:`gan.callbacks.CollapseStop` with PGD accuracy as the score).

    Args:
        x, y: the held-out batch (images in [0, 1], labels); keep it out of training.
        eps: the attack budget (the training eps).
        every: check interval in steps (e.g. once per epoch).
        steps, step_size, drop: the check's PGD and the collapse threshold.
        seed: seeds PGD's random start, so each check draws the same start.

    Its state (the last accuracy and weights) is part of the Trainer's checkpoint,
    as :class:`gan.callbacks.CollapseStop`'s.
    """

    reason = "catastrophic overfitting"

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        every: int,
        *,
        steps: int = 5,
        step_size: float | None = None,
        drop: float = 0.2,
        seed: int = 0,
    ) -> None:
        super().__init__(
            None,
            every,
            drop=drop,
            name="heldout/pgd_accuracy",
            what="PGD accuracy on the held-out batch",
        )
        if len(x) != len(y) or len(x) == 0:
            raise DataError(
                f"the held-out batch needs images and one label each, got {len(x)} and {len(y)}."
            )
        self.x, self.y = x, y
        self.eps = eps
        self.steps = steps
        self.step_size = eps / 4 if step_size is None else step_size
        self.seed = seed

    def robust_accuracy(self, model: nn.Module) -> float:
        """PGD accuracy of ``model`` on the held-out batch (in eval mode)."""
        device = next(model.parameters()).device
        x, y = self.x.to(device), self.y.to(device)
        generator = torch.Generator(device).manual_seed(self.seed)
        x_adv = pgd(
            model,
            x,
            y,
            self.eps,
            steps=self.steps,
            step_size=self.step_size,
            generator=generator,
        )
        with model_mode(model, False), torch.no_grad():
            return float((model(x_adv).argmax(1) == y).float().mean())

    def measure(self, method: TrainingMethod) -> float:
        return self.robust_accuracy(method)
