"""DANN: domain-adversarial training of neural networks.

Ganin, Ustinova, Ajakan, Germain, Larochelle, Laviolette, Marchand, Lempitsky,
"Domain-Adversarial Training of Neural Networks", JMLR 17(59):1-35, 2016.

A feature extractor G_f feeds a label predictor G_y (trained on labelled
source images) and, through a gradient reversal layer, a domain classifier
G_d (trained to tell source from target). Minimising the domain loss through
the reversal *maximises* it for G_f, so features become domain-invariant
while staying discriminative. The objective (Eq. 18 of the paper) is

    E = 1/n sum_i L_y(x_i^s) - lambda * (1/n sum_i L_d(x_i^s) + 1/n' sum_j L_d(x_j^t))

which we implement as ``L_y + L_d(source) + L_d(target)`` (each a batch mean)
with the reversal layer supplying ``-lambda``.

Defaults are the paper's (Sec. 5.2.2): the MNIST architecture, SGD with
momentum 0.9, ``mu_p = 0.01 / (1 + 10 p)^0.75``, ``lambda_p = 2 / (1 + exp(-10 p)) - 1``,
batches of 64 source + 64 target images, mean subtraction as the only
preprocessing. The same class trains the two baselines the paper reports:
``mode="source-only"`` (no domain loss) and ``mode="target-only"`` (trained on
labelled target images: the "train on target" upper bound), and DANN's successors on the
same classifier, optimiser and schedule, each with its adaptation loss in its own module:

- ``"cdan"`` / ``"cdan+e"``: conditional adversarial networks, Long et al. 2018
  (:mod:`counterfeit.adapt.cdan`): the domain classifier reads the multilinear map of
  features and predictions (randomized with ``cdan_randomized``), with DANN's lambda
  schedule; ``+e`` weights examples by prediction certainty.
- ``"mcc"``: minimum class confusion, Jin et al. 2020 (:mod:`counterfeit.adapt.mcc`), no
  adversary.
- ``"mdd"``: margin disparity discrepancy, Zhang et al. 2019 (:mod:`counterfeit.adapt.mdd`):
  an adversarial head of the label predictor's shape behind a reversal layer.

A deviation for all three: their papers train digits nets with their own optimiser
settings (and MDD with a bottleneck layer); here the methods differ only in their
adaptation loss, so one recipe compares them at one budget. ``trade_off`` scales each
one's adaptation loss (their papers' trade-off, 1; DANN's has ``domain_weight``).

Optional, off by default (the paper evaluates the last iterate): an exponential
moving average of the classifier's weights (``ema_decay``; Polyak and Juditsky
1992; Izmailov et al. 2018, "Averaging Weights Leads to Wider Optima"). The
adversarial game makes target accuracy swing by several points between
consecutive evaluations; the average follows the same training run and smooths
those swings. Training never reads it; evaluation and export do.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.adapt.cdan import (
    RANDOM_DIM,
    ConditionalAdversary,
    conditional_domain_loss,
    entropy_weights,
)
from counterfeit.adapt.grl import dann_lambda, grad_reverse
from counterfeit.adapt.mcc import TEMPERATURE, mcc_loss
from counterfeit.adapt.mdd import (
    MARGIN,
    WIDTH,
    mdd_bottleneck,
    mdd_coefficient,
    mdd_loss,
)
from counterfeit.gan.ema import EMA
from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.method import StepContext, TrainingMethod
from counterfeit.gan.nets.backbones import build_backbone
from counterfeit.gan.nets.blocks import mlp

Mode = Literal["dann", "source-only", "target-only", "cdan", "cdan+e", "mcc", "mdd"]
MODES: tuple[str, ...] = ("dann", "source-only", "target-only", "cdan", "cdan+e", "mcc", "mdd")


class DANN(TrainingMethod):
    """Domain-adversarial network (Ganin et al., JMLR 2016) and its baselines.

    Args:
        in_shape: (C, H, W) of the images (both domains).
        num_classes: number of labels.
        mode: ``"dann"``, ``"source-only"``, ``"target-only"``, ``"cdan"``, ``"cdan+e"``,
            ``"mcc"`` or ``"mdd"``.
        backbone: a name from :data:`gan.nets.backbones.BACKBONES`; the label
            predictor and domain classifier take that backbone's paper widths.
        backbone_weights: local state_dict for pretrained backbones (ResNets); an
            initialisation only, left out of :attr:`hparams` (checkpoints hold the weights).
        input_mean: per-channel mean subtracted from the [0, 1] input (the paper's
            preprocessing); default 0.5 per channel.
        lr, momentum, weight_decay: SGD settings (paper: 0.01, 0.9, 0).
        lr_schedule: ``"dann"`` (``lr / (1 + alpha p)^beta``) or ``"constant"``.
        alpha, beta: the learning-rate annealing constants (paper: 10, 0.75).
        gamma: the lambda schedule's constant (paper: 10).
        lambda_max: scale of the adaptation factor (paper: 1).
        domain_weight: weight of DANN's domain loss ``L_d(source) + L_d(target)`` (1: Eq. 18;
            0.5: the mean over the combined source + target batch, as in Caffe-style code).
        trade_off: weight of CDAN's, MCC's (``mu``) or MDD's adaptation loss (their papers: 1).
        ema_decay: keep an exponential moving average of the feature extractor and
            label predictor with this decay, and classify with it in eval mode
            (None: off, the paper).
        cdan_randomized: CDAN's randomized multilinear map (Eq. 7) instead of the full one.
        cdan_random_dim: its output size (1024).
        mcc_temperature: MCC's ``T`` (Jin et al.: 2.5).
        mdd_margin: MDD's ``gamma`` (4).
        mdd_width: width of MDD's bottleneck and of its heads' hidden layer (1024).

    ``model(x)`` returns class logits, so a trained DANN is an ordinary
    classifier for evaluation, attacks and export (:meth:`classifier`). In eval
    mode it uses the weight average when one is kept; in train mode, the live weights.
    """

    progress_metrics = (
        "loss/class",
        "loss/domain",
        "loss/mcc",
        "loss/mdd",
        "acc/train",
        "acc/domain",
    )

    def __init__(
        self,
        in_shape: tuple[int, int, int] = (3, 28, 28),
        num_classes: int = 10,
        *,
        mode: Mode = "dann",
        backbone: str = "ganin-mnist",
        backbone_weights: str | Path | None = None,
        input_mean: Sequence[float] | None = None,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        lr_schedule: Literal["dann", "constant"] = "dann",
        alpha: float = 10.0,
        beta: float = 0.75,
        gamma: float = 10.0,
        lambda_max: float = 1.0,
        domain_weight: float = 1.0,
        ema_decay: float | None = None,
        trade_off: float = 1.0,
        cdan_randomized: bool = False,
        cdan_random_dim: int = RANDOM_DIM,
        mcc_temperature: float = TEMPERATURE,
        mdd_margin: float = MARGIN,
        mdd_width: int = WIDTH,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ConfigError(f"unknown DANN mode '{mode}'; choose one of {', '.join(MODES)}.")
        if lr_schedule not in ("dann", "constant"):
            raise ConfigError(f"unknown lr_schedule '{lr_schedule}'; use 'dann' or 'constant'.")
        self.save_hyperparameters(ignore=("backbone_weights",))
        self.in_shape = tuple(in_shape)
        self.num_classes = num_classes
        self.mode = mode
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.lr_schedule, self.alpha, self.beta = lr_schedule, alpha, beta
        self.gamma, self.lambda_max, self.domain_weight = gamma, lambda_max, domain_weight
        self.trade_off = trade_off
        self.mcc_temperature, self.mdd_margin = mcc_temperature, mdd_margin
        self.features, n_features, spec = build_backbone(
            backbone, self.in_shape, mean=input_mean, weights=backbone_weights
        )
        label_hidden: tuple[int, ...] = spec.label_hidden
        if mode == "mdd":  # MDD's bottleneck and heads (module docstring of adapt.mdd)
            self.features = nn.Sequential(self.features, mdd_bottleneck(n_features, mdd_width))
            n_features, label_hidden = mdd_width, (mdd_width,)
        self.label_predictor = mlp(
            n_features, label_hidden, num_classes, dropout=0.5 if mode == "mdd" else 0.0
        )
        self.domain_classifier = mlp(n_features, spec.domain_hidden, 1) if mode == "dann" else None
        self.conditional_adversary = (
            ConditionalAdversary(
                n_features,
                num_classes,
                spec.domain_hidden,
                randomized=cdan_randomized,
                random_dim=cdan_random_dim,
            )
            if mode in ("cdan", "cdan+e")
            else None
        )
        self.adversarial_head = (
            mlp(n_features, label_hidden, num_classes, dropout=0.5) if mode == "mdd" else None
        )
        self.n_features = n_features
        self.average = EMA(self.last_iterate(), ema_decay) if ema_decay is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for images in [0, 1] (from the weight average in eval mode, if kept)."""
        if self.average is not None and not self.training:
            return self.average(x)
        return self.label_predictor(self.features(x))

    def last_iterate(self) -> nn.Sequential:
        """The live classifier (feature extractor + label predictor), the one being trained."""
        return nn.Sequential(self.features, self.label_predictor)

    def evaluated_nets(self) -> tuple[nn.Module, nn.Module]:
        """(feature extractor, label predictor) as evaluated: the averaged copies, if kept."""
        if self.average is not None:
            features, label_predictor = self.average.module
            return features, label_predictor
        return self.features, self.label_predictor

    def classifier(self) -> nn.Sequential:
        """The deployable classifier (the evaluated nets, sharing weights with this model)."""
        return nn.Sequential(*self.evaluated_nets())

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "model": torch.optim.SGD(
                self.parameters(),
                lr=self.lr,
                momentum=self.momentum,
                weight_decay=self.weight_decay,
            )
        }

    def configure_schedulers(self, optimizers, total_steps: int) -> dict:
        if self.lr_schedule == "constant":
            return {}
        alpha, beta = self.alpha, self.beta
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizers["model"], lambda step: (1.0 + alpha * step / total_steps) ** -beta
        )
        return {"model": schedule}

    def train_step(self, batch, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        """One SGD step. ``batch`` is ``((x_source, y_source), (x_target, y_target))``."""
        (xs, ys), (xt, yt) = batch
        optimizer = ctx.optimizers["model"]
        with ctx.autocast():
            if self.mode == "dann":
                lambda_ = self.lambda_max * dann_lambda(ctx.progress, self.gamma)
                losses = self.losses(xs, ys, xt, lambda_)
            elif self.mode == "source-only":
                losses = self.supervised_losses(xs, ys)
            elif self.mode in ("cdan", "cdan+e"):
                lambda_ = self.lambda_max * dann_lambda(ctx.progress, self.gamma)
                losses = self.cdan_losses(xs, ys, xt, lambda_)
            elif self.mode == "mcc":
                losses = self.mcc_losses(xs, ys, xt)
            elif self.mode == "mdd":
                losses = self.mdd_losses(xs, ys, xt, mdd_coefficient(ctx.step))
            else:
                if ctx.step == 0 and bool((yt < 0).any()):
                    raise DataError(
                        "mode 'target-only' trains on target labels, but the target domain is "
                        "unlabeled."
                    )
                losses = self.supervised_losses(xt, yt)
        optimizer.zero_grad(set_to_none=True)
        ctx.backward(losses["loss"])
        ctx.optimizer_step(optimizer)
        if self.average is not None:
            self.average.update(self.last_iterate())
        return {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in losses.items()}

    def supervised_losses(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self(x)
        loss = F.cross_entropy(logits.float(), y)
        return {"loss": loss, "loss/class": loss, "acc/train": _accuracy(logits, y)}

    def cdan_losses(
        self, xs: torch.Tensor, ys: torch.Tensor, xt: torch.Tensor, lambda_: float
    ) -> dict[str, torch.Tensor | float]:
        """Source cross-entropy plus the conditional domain loss (Long et al. 2018, Eq. 6;
        entropy-weighted, Eq. 9, in mode ``cdan+e``)."""
        _check_shapes(xs, xt)
        n_source = xs.shape[0]
        features = self.features(torch.cat([xs, xt]))
        logits = self.label_predictor(features)
        class_loss = F.cross_entropy(logits[:n_source].float(), ys)
        domain_logits = self.conditional_adversary(features, logits, lambda_)
        weights = None
        if self.mode == "cdan+e":
            weights = entropy_weights(F.softmax(logits.detach().float(), 1), n_source)
        domain_loss = conditional_domain_loss(domain_logits, n_source, weights)
        domain_correct = torch.cat([domain_logits[:n_source] > 0, domain_logits[n_source:] < 0])
        return {
            "loss": class_loss + self.trade_off * domain_loss,
            "loss/class": class_loss,
            "loss/domain": domain_loss,
            "acc/train": _accuracy(logits[:n_source], ys),
            "acc/domain": domain_correct.float().mean(),
            "lambda": lambda_,
        }

    def mdd_losses(
        self, xs: torch.Tensor, ys: torch.Tensor, xt: torch.Tensor, coefficient: float
    ) -> dict[str, torch.Tensor | float]:
        """Source cross-entropy plus the adversarial head's disparity loss, its gradient
        reversed by ``coefficient`` into the features (Zhang et al. 2019)."""
        _check_shapes(xs, xt)
        n_source = xs.shape[0]
        features = self.features(torch.cat([xs, xt]))
        logits = self.label_predictor(features)
        adversary = self.adversarial_head(grad_reverse(features, coefficient))
        class_loss = F.cross_entropy(logits[:n_source].float(), ys)
        disparity = mdd_loss(
            logits[:n_source],
            adversary[:n_source],
            logits[n_source:],
            adversary[n_source:],
            self.mdd_margin,
        )
        return {
            "loss": class_loss + self.trade_off * disparity,
            "loss/class": class_loss,
            "loss/mdd": disparity,
            "acc/train": _accuracy(logits[:n_source], ys),
            "lambda": coefficient,
        }

    def mcc_losses(
        self, xs: torch.Tensor, ys: torch.Tensor, xt: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Source cross-entropy plus ``trade_off`` (``mu``) times the target batch's class
        confusion (Jin et al. 2020, Eq. 8)."""
        _check_shapes(xs, xt)
        logits = self.label_predictor(self.features(torch.cat([xs, xt])))
        source_logits, target_logits = logits[: xs.shape[0]], logits[xs.shape[0] :]
        class_loss = F.cross_entropy(source_logits.float(), ys)
        confusion = mcc_loss(target_logits, self.mcc_temperature)
        return {
            "loss": class_loss + self.trade_off * confusion,
            "loss/class": class_loss,
            "loss/mcc": confusion,
            "acc/train": _accuracy(source_logits, ys),
        }

    def losses(
        self, xs: torch.Tensor, ys: torch.Tensor, xt: torch.Tensor, lambda_: float
    ) -> dict[str, torch.Tensor | float]:
        """The DANN objective on one source and one target batch (Eq. 18)."""
        _check_shapes(xs, xt)
        features = self.features(torch.cat([xs, xt]))
        n_source = xs.shape[0]
        logits = self.label_predictor(features[:n_source])
        class_loss = F.cross_entropy(logits.float(), ys)
        domain_logits = self.domain_classifier(grad_reverse(features, lambda_)).squeeze(1).float()
        source_d, target_d = domain_logits[:n_source], domain_logits[n_source:]
        domain_loss = F.binary_cross_entropy_with_logits(
            source_d, torch.zeros_like(source_d)
        ) + F.binary_cross_entropy_with_logits(target_d, torch.ones_like(target_d))
        domain_correct = torch.cat([source_d < 0, target_d > 0]).float().mean()
        return {
            "loss": class_loss + self.domain_weight * domain_loss,
            "loss/class": class_loss,
            "loss/domain": domain_loss,
            "acc/train": _accuracy(logits, ys),
            "acc/domain": domain_correct,
            "lambda": lambda_,
        }


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(1) == labels).float().mean()


def _check_shapes(xs: torch.Tensor, xt: torch.Tensor) -> None:
    if xs.shape[1:] != xt.shape[1:]:
        raise DataError(
            f"source images have shape {tuple(xs.shape[1:])} but target images "
            f"{tuple(xt.shape[1:])}; both domains must share (C, H, W)."
        )
