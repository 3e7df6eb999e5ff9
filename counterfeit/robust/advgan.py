"""AdvGAN: a generator that perturbs any image in one forward pass.

Xiao, Li, Zhu, He, Liu & Song, "Generating Adversarial Examples with
Adversarial Networks", IJCAI 2018. A generator ``G`` maps an image ``x`` to a
perturbation ``G(x)``; a discriminator ``D`` tells ``x`` from ``x + G(x)``;
``G`` minimises (their Eq. 5)::

    L = L_adv + alpha L_GAN + beta L_hinge

with ``L_adv`` the Carlini-Wagner loss of the attacked model ``f`` (their
Eq. 4: ``max(Z(x')_y - max_{i != y} Z(x')_i, -kappa)`` untargeted, or with
the roles swapped toward a target ``t``), ``L_GAN`` the adversarial loss of
``D`` and ``L_hinge = E[max(0, ||G(x)||_2 - c)]``. Once trained, attacking a
new image costs one forward pass of ``G``, no gradient of ``f``.

Built on the shared core: the networks from :mod:`gan.nets` blocks
(``conv_block`` and the residual block), ``L_GAN`` from :mod:`gan.losses`
(any registered loss), and training through :class:`gan.Trainer` as a
:class:`gan.TrainingMethod`.

Deviations from the paper:

* the L-inf budget is exact: ``G(x) = eps * tanh(net(x))`` and ``x + G(x)``
  is clipped to [0, 1], so every perturbation lies in the eps-ball (the paper
  bounds it softly with the L2 hinge and clips for its L-inf comparisons).
  The hinge is available (``hinge_weight > 0``) but off by default;
* ``gan_loss`` defaults to least squares (Mao et al. 2017), as in the widely
  used PyTorch re-implementation, rather than the paper's minimax loss
  (``gan_loss="minimax"`` or ``"non-saturating"`` for that); ``adv_weight``
  scales ``L_adv`` (10, as in that re-implementation) instead of weighting
  ``L_GAN`` alone;
* the generator is the paper's (Appendix; from Johnson et al. 2016): c8-c16-c32,
  four residual blocks, u16-u8-c, with BatchNorm; the discriminator is
  C8-C16-C32-FC with LeakyReLU, BatchNorm instead of InstanceNorm;
* the attacked model runs in eval mode and its parameters get no gradient
  (``requires_grad`` is switched off for the step and restored).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.losses import LOSSES, clip_weights_, get_loss, gradient_penalty
from counterfeit.gan.method import StepContext, TrainingMethod, frozen
from counterfeit.gan.nets.blocks import conv_block, output_features
from counterfeit.gan.nets.pixelda import ResidualBlock
from counterfeit.gan.runtime import model_mode
from counterfeit.robust.contract import Attack


class AdvGANGenerator(nn.Module):
    """x (N, C, H, W) in [0, 1] -> a perturbation in [-eps, eps] of the same shape.

    The paper's generator: c8 (3x3), c16 and c32 (stride 2), ``blocks`` residual
    blocks of 32 channels, u16 and u8 (transposed, stride 2), c (3x3), then
    ``eps * tanh``. H and W must be multiples of 4.
    """

    def __init__(self, channels: int = 1, eps: float = 0.3, width: int = 8, blocks: int = 4):
        super().__init__()
        if channels < 1 or width < 1 or blocks < 0:
            raise ConfigError(
                f"AdvGAN generator needs channels >= 1, width >= 1, blocks >= 0; got "
                f"channels={channels}, width={width}, blocks={blocks}."
            )
        self.eps = float(eps)
        w = width
        self.net = nn.Sequential(
            conv_block(channels, w, 3, 1, 1),
            conv_block(w, 2 * w, 4, 2, 1),
            conv_block(2 * w, 4 * w, 4, 2, 1),
            *[ResidualBlock(4 * w) for _ in range(blocks)],
            conv_block(4 * w, 2 * w, 4, 2, 1, transpose=True),
            conv_block(2 * w, w, 4, 2, 1, transpose=True),
            nn.Conv2d(w, channels, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.eps * torch.tanh(self.net(2 * x - 1))


class AdvGANDiscriminator(nn.Module):
    """x (N, C, H, W) in [0, 1] -> one logit per image: C8-C16-C32 (stride 2, LeakyReLU), FC."""

    def __init__(self, channels: int = 1, image_size: int = 28, width: int = 8) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            conv_block(channels, w, 4, 2, 1, norm="none", act="lrelu"),
            conv_block(w, 2 * w, 4, 2, 1, act="lrelu"),
            conv_block(2 * w, 4 * w, 4, 2, 1, act="lrelu"),
            nn.Flatten(),
        )
        self.head = nn.Linear(output_features(self.features, (channels, image_size, image_size)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(2 * x - 1)).squeeze(1)


class AdvGAN(TrainingMethod):
    """Train an AdvGAN generator against ``model`` (Xiao et al. 2018; see the module docstring).

    Train it like any method::

        advgan = AdvGAN(model, eps=0.3, channels=1, image_size=28)
        Trainer(advgan, InfiniteLoader(train, 128), TrainerConfig(max_steps=2000)).fit()
        x_adv = advgan.generate(x)      # one forward pass, |x_adv - x| <= eps

    Args:
        model: the attacked classifier (images in [0, 1] -> logits). It is not
            registered as a submodule: it is neither trained, moved to another
            mode, nor saved in checkpoints.
        eps: the L-inf budget in pixel units (the paper's MNIST bound: 0.3).
        channels, image_size: the images' shape (H = W, a multiple of 4).
        target: a class to aim at (targeted attack), or None (untargeted).
        gan_loss: a name from :data:`gan.losses.LOSSES` (default least squares).
        adv_weight, gan_weight: weights of ``L_adv`` and ``L_GAN`` (alpha).
        hinge_weight, hinge_bound: beta and c of the L2 hinge (off by default).
        kappa: the C&W confidence (the paper: 0).
        lr, betas: Adam for both networks.
        width, blocks: generator/discriminator width and residual blocks.
    """

    progress_metrics = ("loss/g", "loss/d", "success")

    def __init__(
        self,
        model: nn.Module,
        *,
        eps: float = 0.3,
        channels: int = 1,
        image_size: int = 28,
        target: int | None = None,
        gan_loss: str = "least-squares",
        adv_weight: float = 10.0,
        gan_weight: float = 1.0,
        hinge_weight: float = 0.0,
        hinge_bound: float = 1.0,
        kappa: float = 0.0,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.5, 0.999),
        width: int = 8,
        blocks: int = 4,
    ) -> None:
        super().__init__()
        if not callable(model):
            raise ConfigError(f"model must be an nn.Module, got {type(model).__name__}.")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps <= 1:
            raise ConfigError(f"eps must be in (0, 1] (pixel units), got {eps!r}.")
        if channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {channels!r}.")
        if not isinstance(image_size, int) or image_size < 8 or image_size % 4:
            raise ConfigError(
                f"image_size must be a multiple of 4 (>= 8) for AdvGAN's generator, got "
                f"{image_size!r}; pad or resize the images."
            )
        if target is not None and (
            isinstance(target, bool) or not isinstance(target, int) or target < 0
        ):
            raise ConfigError(f"target must be a class index >= 0 or None, got {target!r}.")
        if gan_loss not in LOSSES:
            raise ConfigError(f"unknown gan_loss '{gan_loss}'; choose one of {', '.join(LOSSES)}.")
        for name, value in (
            ("adv_weight", adv_weight),
            ("gan_weight", gan_weight),
            ("hinge_weight", hinge_weight),
            ("hinge_bound", hinge_bound),
            ("kappa", kappa),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}.")
        if not lr > 0:
            raise ConfigError(f"lr must be > 0, got {lr!r}.")
        self.save_hyperparameters(ignore=("model",))
        object.__setattr__(self, "model", model)  # not a submodule: never trained or saved
        self.eps = float(eps)
        self.target = target
        self.loss = get_loss(gan_loss)
        self.weights = dict(adv=adv_weight, gan=gan_weight, hinge=hinge_weight)
        self.hinge_bound = float(hinge_bound)
        self.kappa = float(kappa)
        self.lr, self.betas = float(lr), tuple(betas)
        self.generator = AdvGANGenerator(channels, eps, width, blocks)
        self.discriminator = AdvGANDiscriminator(channels, image_size, width)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "g": torch.optim.Adam(self.generator.parameters(), lr=self.lr, betas=self.betas),
            "d": torch.optim.Adam(self.discriminator.parameters(), lr=self.lr, betas=self.betas),
        }

    # -- attacking ------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Adversarial images ``clip(x + G(x), 0, 1)`` (differentiable)."""
        return (x + self.generator(x)).clamp(0.0, 1.0)

    @torch.no_grad()
    def generate(
        self, x: torch.Tensor, batch_size: int = 1024, eps: float | None = None
    ) -> torch.Tensor:
        """Adversarial images for ``x`` in one forward pass per batch (generator in eval mode).

        Args:
            x: images (N, C, H, W) in [0, 1].
            batch_size: images per generator pass.
            eps: a smaller L-inf budget: the perturbation is clipped to it (projected
                onto that ball). None, or one at least the generator's own: ``clip(x +
                G(x), 0, 1)``.
        """
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 4:
            raise DataError("x must be float images (N, C, H, W) in [0, 1].")
        if eps is not None and (
            isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0
        ):
            raise ConfigError(f"eps must be a number >= 0 (pixel units), got {eps!r}.")
        device = next(self.generator.parameters()).device
        smaller = eps is not None and eps < self.eps
        with model_mode(self.generator, False):
            out = [
                (xb + self.generator(xb).clamp(-eps, eps)).clamp(0.0, 1.0) if smaller else self(xb)
                for xb in (x[s : s + batch_size].to(device) for s in range(0, len(x), batch_size))
            ]
        return torch.cat(out).to(x.device, x.dtype)

    # -- training ---------------------------------------------------------------

    def adversarial_loss(
        self, logits: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(C&W loss of Xiao et al. Eq. 4, per-example success) for logits of ``x + G(x)``."""
        logits = logits.float()
        if self.target is not None:
            if self.target >= logits.shape[1]:
                raise ConfigError(
                    f"target={self.target} but the model has {logits.shape[1]} outputs."
                )
            labels = torch.full_like(labels, self.target)
        own = logits.gather(1, labels.view(-1, 1)).squeeze(1)
        others = logits.scatter(1, labels.view(-1, 1), float("-inf")).max(1).values
        if self.target is None:  # push the true class below the best other class
            loss, success = own - others, logits.argmax(1) != labels
        else:  # pull the target class above every other
            loss, success = others - own, logits.argmax(1) == labels
        return loss.clamp_min(-self.kappa).mean(), success.float()

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        x, labels = batch if isinstance(batch, (tuple, list)) else (batch, None)
        model = self.model
        if isinstance(model, nn.Module):
            _follow(model, x.device)
        with model_mode(model, False), frozen(model):
            if labels is None or bool((labels < 0).any()):
                with torch.no_grad():
                    labels = model(x).argmax(1)
            opt_g, opt_d = ctx.optimizers["g"], ctx.optimizers["d"]
            with ctx.autocast():
                delta = self.generator(x)
                x_adv = (x + delta).clamp(0.0, 1.0)
                d_loss = self.loss.d(self.discriminator(x), self.discriminator(x_adv.detach()))
                if self.loss.gp_weight:
                    d_loss = d_loss + self.loss.gp_weight * gradient_penalty(
                        self.discriminator, x, x_adv
                    )
            opt_d.zero_grad(set_to_none=True)
            ctx.backward(d_loss)
            ctx.optimizer_step(opt_d)
            if self.loss.clip_value:
                clip_weights_(self.discriminator, self.loss.clip_value)
            with ctx.autocast():
                g_gan = self.loss.g(self.discriminator(x_adv))
                adv, success = self.adversarial_loss(model(x_adv), labels)
                hinge = F.relu(delta.float().flatten(1).norm(dim=1) - self.hinge_bound).mean()
                w = self.weights
                g_loss = w["adv"] * adv + w["gan"] * g_gan.float() + w["hinge"] * hinge
            opt_g.zero_grad(set_to_none=True)
            ctx.backward(g_loss)
            ctx.optimizer_step(opt_g)
        return {
            "loss/g": g_loss.detach(),
            "loss/d": d_loss.detach(),
            "loss/adv": adv.detach(),
            "loss/gan": g_gan.detach(),
            "loss/hinge": hinge.detach(),
            "success": success.mean(),
            "linf": delta.detach().abs().amax(),
        }


class AdvGANAttack(Attack):
    """A trained :class:`AdvGAN` under the attack contract of :class:`robust.Attack`.

    One generator pass per batch and no gradient of the attacked model: at each eps
    of the curve, :meth:`AdvGAN.generate` with that eps (below the generator's own
    budget the perturbation is clipped to the smaller ball; at or above it, it is the
    generator's own). The images do not depend on the ``model`` of the call, so
    evaluating another model than the one the AdvGAN was trained against measures
    transfer. Targeted when the AdvGAN is.

    Args:
        advgan: the trained AdvGAN.
    """

    def __init__(self, advgan: AdvGAN) -> None:
        if not isinstance(advgan, AdvGAN):
            raise ConfigError(f"AdvGANAttack needs an AdvGAN, got {type(advgan).__name__}.")
        self.advgan = advgan

    def targets(self, y: torch.Tensor) -> torch.Tensor | None:
        target = self.advgan.target
        return None if target is None else torch.full_like(y, target)

    def __call__(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, budget: float
    ) -> torch.Tensor:
        return self.advgan.generate(x, eps=budget)

    def describe(self) -> str:
        target = "" if self.advgan.target is None else f", target={self.advgan.target}"
        return f"AdvGAN(eps={self.advgan.eps:g}{target})"


def _follow(model: nn.Module, device: torch.device) -> None:
    """Move the attacked model to the batch's device when the Trainer moved the method."""
    for tensor in model.parameters():
        if tensor.device != device:
            model.to(device)
        return
