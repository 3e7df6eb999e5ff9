"""CycleGAN (Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017) as a :class:`gan.TrainingMethod`,
with CyCADA's optional semantic-consistency loss (Hoffman et al., ICML 2018, Eq. 4).

Two generators, ``g_ab``: A -> B and ``g_ba``: B -> A (:class:`ResnetGenerator`),
and two PatchGAN discriminators with InstanceNorm, ``d_b`` on B-domain images
(real b vs G_AB(a)) and ``d_a`` on A-domain images (real a vs G_BA(b)).
(The authors' code calls them D_A and D_B the other way round.) Images are in
[0, 1] at the method's boundary and in [-1, 1] inside, as in the paper; the L1
terms are measured in [-1, 1], as in the authors' code.

One step on ``(a_batch, b_batch)`` (labels, if any, are ignored: unpaired) is the
authors' ``optimize_parameters``: first one Adam step on both generators,

    L_G = L_LS(D_B(G_AB(a)), 1) + L_LS(D_A(G_BA(b)), 1)
          + lambda_cyc (|G_BA(G_AB(a)) - a|_1 + |G_AB(G_BA(b)) - b|_1)
          + lambda_idt lambda_cyc (|G_AB(b) - b|_1 + |G_BA(a) - a|_1)
          [+ lambda_sem L_sem]

with L_LS(x, t) = mean((x - t)^2) (LSGAN, Mao et al. 2017, Sec. 4 of the paper)
and D frozen; then one Adam step on both discriminators, each on real images and
on generated images drawn through its :class:`gan.image_pool.ImagePool` of 50,
with the objective halved ("we divide the objective by 2 while optimizing D"):

    L_D_B = 0.5 [mean((D_B(b) - 1)^2) + mean(D_B(pool_B(G_AB(a)))^2)]

which is :func:`gan.losses.least_squares_d` exactly (its 1/2 factors); the G term
is twice :func:`gan.losses.least_squares_g`. Defaults are the paper's:
lambda_cyc = 10, identity weight 0.5 lambda_cyc (Sec. 5.2 / the code's
``lambda_identity=0.5``; only when A and B have the same channels), pools of 50,
Adam lr 2e-4 with betas (0.5, 0.999), the learning rate constant for the first
half of training and then linearly decayed to 0 (100 + 100 epochs in the paper;
here ``decay_start`` in steps, or as a fraction of the run), weights N(0, 0.02),
batch 1 (a recipe setting).

Semantic consistency (CyCADA, Eq. 4), off by default: with a frozen classifier
f_S pre-trained on the source domain A,

    L_sem = CE(f_S(G_AB(a)), argmax f_S(a)) + CE(f_S(G_BA(b)), argmax f_S(b))

added to L_G with weight ``semantic_weight``; f_S gets no gradient and no
optimizer (its weights are buffers-in-spirit: frozen parameters, always in eval
mode, checkpointed with the method). It needs A and B of one shape.

Deviations: (1) lengths and the decay are counted in steps, not epochs; (2) the
image pool draws from torch's RNG (so that resumes are exact); (3) the G and D
updates of one step reuse the G forward pass, as in the authors' code; (4) the
``small`` preset is not the paper's architecture (see :data:`PRESETS`).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.image_pool import ImagePool
from counterfeit.gan.losses import get_loss
from counterfeit.gan.method import StepContext, TrainingMethod, frozen
from counterfeit.gan.nets.backbones import digits_classifier
from counterfeit.gan.nets.patchgan import PatchGANDiscriminator, patchgan_layers_for
from counterfeit.gan.nets.resnet_generator import ResnetGenerator, resnet_blocks_for
from counterfeit.gan.runtime import follows_input_device
from counterfeit.gan.schedules import linear_decay

Preset = Literal["paper", "small"]

PRESETS: dict[str, dict[str, Any]] = {
    # The paper's networks (ngf = ndf = 64, 6 / 9 residual blocks by size) and batch 1.
    "paper": {
        "generator_width": 64,
        "generator_blocks": None,
        "discriminator_width": 64,
        "batch_size": 1,
    },
    # For 2 CPU cores: half the width (a quarter of the multiply-adds per layer), half the
    # residual blocks of the 128-px setting, half D's width, batch 4. Same losses, weights,
    # pool and schedule. Measured on 28-px RGB digits, one torch thread: 0.52 s per step at
    # batch 4 (7.7 images/s) vs 0.95 s at batch 8 (8.4 images/s) and 0.89 s for the paper
    # preset at batch 1 (1.1 images/s): batch 4 gives twice the updates per minute of
    # batch 8 for ~8% fewer images per second.
    "small": {
        "generator_width": 32,
        "generator_blocks": 3,
        "discriminator_width": 32,
        "batch_size": 4,
    },
}


class _FrozenClassifier(nn.Module):
    """Wraps f_S: no gradients into its weights, always in eval mode."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.net.requires_grad_(False)
        self.net.eval()

    def train(self, mode: bool = True) -> _FrozenClassifier:
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CycleGAN(TrainingMethod):
    """CycleGAN with the paper's defaults and CyCADA's optional semantic loss.

    Args:
        shape_a, shape_b: (C, H, W) of domain A (the source) and domain B (the target);
            H and W must match and be divisible by 4.
        preset: ``"paper"`` or ``"small"`` (:data:`PRESETS`); the width/block arguments
            below override it.
        generator_width, generator_blocks: ngf and residual blocks (None: by image size,
            :func:`gan.nets.resnet_generator.resnet_blocks_for`).
        discriminator_width, discriminator_layers: ndf and PatchGAN depth (None: by image
            size, :func:`gan.nets.patchgan.patchgan_layers_for`; 3 = 70x70 from 128 px).
        cycle_weight: lambda_cyc (10).
        identity_weight: identity loss weight relative to lambda_cyc (None: 0.5 when A and B
            have the same channels, else 0; a positive value with different channels is an
            error).
        pool_size: generated images kept per direction for D (50; 0 disables the pools).
        lr, beta1: Adam's (2e-4, 0.5) for both generators and both discriminators.
        decay_start: where the linear decay of the learning rate to 0 starts: a step
            count (int) or a fraction of the run (float in [0, 1]; 0.5 as in the paper).
        semantic_weight: CyCADA's semantic-consistency weight (0: off, the paper's CycleGAN).
        semantic_classifier: f_S, a classifier pre-trained on domain A (images in [0, 1]);
            its weights are copied into a :func:`digits_classifier` of ``semantic_backbone``
            (so checkpoints hold them; it is left out of :attr:`hparams`). May be given later with
            :meth:`set_semantic_classifier`; training with ``semantic_weight > 0`` refuses
            to start without one.
        num_classes, semantic_backbone: f_S's classes and architecture.
    """

    progress_metrics = ("loss/g", "loss/cycle", "loss/d_a", "loss/d_b")

    def __init__(
        self,
        shape_a: tuple[int, int, int] = (3, 32, 32),
        shape_b: tuple[int, int, int] = (3, 32, 32),
        *,
        preset: Preset = "paper",
        generator_width: int | None = None,
        generator_blocks: int | None = None,
        discriminator_width: int | None = None,
        discriminator_layers: int | None = None,
        cycle_weight: float = 10.0,
        identity_weight: float | None = None,
        pool_size: int = 50,
        lr: float = 2e-4,
        beta1: float = 0.5,
        decay_start: int | float = 0.5,
        semantic_weight: float = 0.0,
        semantic_classifier: nn.Module | None = None,
        num_classes: int = 10,
        semantic_backbone: str = "ganin-mnist",
    ) -> None:
        super().__init__()
        if preset not in PRESETS:
            raise ConfigError(
                f"unknown CycleGAN preset '{preset}'; choose one of {', '.join(PRESETS)}."
            )
        shape_a, shape_b = _shape(shape_a, "shape_a"), _shape(shape_b, "shape_b")
        if shape_a[1:] != shape_b[1:]:
            raise ConfigError(
                f"CycleGAN needs domains A and B of one image size; got shape_a {shape_a} and "
                f"shape_b {shape_b} (C, H, W). Load both at one data.image_size."
            )
        size = shape_a[1]
        if shape_a[1] % 4 or shape_a[2] % 4:
            raise ConfigError(
                f"CycleGAN's generator downsamples twice, so H and W must be divisible by 4; "
                f"got {shape_a[1:]} (e.g. use 28 or 32 px digits)."
            )
        same_channels = shape_a[0] == shape_b[0]
        if identity_weight is None:
            identity_weight = 0.5 if same_channels else 0.0
        if identity_weight and not same_channels:
            raise ConfigError(
                f"identity_weight {identity_weight} needs domains with the same channels "
                f"(G_AB(b) must be comparable with b); got {shape_a[0]} and {shape_b[0]}. "
                "Set identity_weight to 0 or load both domains with the same channels."
            )
        for key, value in (
            ("cycle_weight", cycle_weight),
            ("identity_weight", identity_weight),
            ("semantic_weight", semantic_weight),
            ("lr", lr),
        ):
            if value < 0 or (key == "lr" and value == 0):
                raise ConfigError(
                    f"CycleGAN's {key} must be {'> 0' if key == 'lr' else '>= 0'}, got {value}."
                )
        if not 0 <= beta1 < 1:
            raise ConfigError(f"CycleGAN's beta1 must lie in [0, 1), got {beta1}.")
        if isinstance(decay_start, bool) or not isinstance(decay_start, (int, float)):
            raise ConfigError(
                f"decay_start must be a step count or a fraction, got {decay_start!r}."
            )
        if isinstance(decay_start, float) and not 0.0 <= decay_start <= 1.0:
            raise ConfigError(
                f"decay_start {decay_start} as a fraction of the run must lie in [0, 1]; "
                "give an int for a step count."
            )
        if isinstance(decay_start, int) and decay_start < 0:
            raise ConfigError(f"decay_start must be >= 0 steps, got {decay_start}.")
        if semantic_weight and shape_a != shape_b:
            raise ConfigError(
                f"the semantic loss applies f_S to both domains, so they need one shape; got "
                f"shape_a {shape_a} and shape_b {shape_b}."
            )
        sizes = {k: v for k, v in PRESETS[preset].items() if k != "batch_size"}
        for key, value in (
            ("generator_width", generator_width),
            ("generator_blocks", generator_blocks),
            ("discriminator_width", discriminator_width),
        ):
            if value is not None:
                sizes[key] = value
        if sizes["generator_blocks"] is None:
            sizes["generator_blocks"] = resnet_blocks_for(size)
        sizes["discriminator_layers"] = (
            discriminator_layers if discriminator_layers is not None else patchgan_layers_for(size)
        )
        self.save_hyperparameters(ignore=("semantic_classifier",), **sizes)
        self.shape_a, self.shape_b = shape_a, shape_b
        self.preset = preset
        self.num_classes = num_classes
        self.cycle_weight, self.identity_weight = cycle_weight, identity_weight
        self.semantic_weight, self.semantic_backbone = semantic_weight, semantic_backbone
        self.lr, self.beta1, self.decay_start = lr, beta1, decay_start
        gw, gb = sizes["generator_width"], sizes["generator_blocks"]
        dw, dl = sizes["discriminator_width"], sizes["discriminator_layers"]
        self.g_ab = ResnetGenerator(shape_a[0], shape_b[0], gw, gb)
        self.g_ba = ResnetGenerator(shape_b[0], shape_a[0], gw, gb)
        self.d_a = PatchGANDiscriminator(shape_a[0], dw, dl, norm="instance")
        self.d_b = PatchGANDiscriminator(shape_b[0], dw, dl, norm="instance")
        self.pool_a = ImagePool(pool_size, shape_a)
        self.pool_b = ImagePool(pool_size, shape_b)
        self.lsgan = get_loss("least-squares")
        self.semantic: _FrozenClassifier | None = None
        self.register_buffer("semantic_ready", torch.tensor(False))
        if semantic_weight:
            self.semantic = _FrozenClassifier(
                digits_classifier(shape_a, num_classes, semantic_backbone)
            )
            if semantic_classifier is not None:
                self.set_semantic_classifier(semantic_classifier)

    # -- construction helpers ----------------------------------------------------

    @property
    def source_shape(self) -> tuple[int, int, int]:
        """(C, H, W) that :meth:`translate` takes (domain A), for ``counterfeit translate``."""
        return self.shape_a

    @property
    def receptive_field(self) -> int:
        """Pixels of the input one PatchGAN logit sees (70 for 3 layers)."""
        return self.d_a.receptive_field

    def set_semantic_classifier(self, classifier: nn.Module) -> None:
        """Copy a trained f_S (same architecture as :func:`digits_classifier`) in and freeze it."""
        if self.semantic is None:
            raise ConfigError(
                "this CycleGAN has semantic_weight 0, so it has no semantic classifier to set."
            )
        try:
            self.semantic.net.load_state_dict(classifier.state_dict())
        except RuntimeError as exc:
            raise ConfigError(
                "the semantic classifier must have the architecture of "
                f"digits_classifier({self.shape_a}, {self.num_classes}, "
                f"'{self.semantic_backbone}'): {str(exc).splitlines()[0]}"
            ) from None
        self.semantic.net.requires_grad_(False)
        self.semantic_ready.fill_(True)

    # -- inference -----------------------------------------------------------------

    @torch.no_grad()
    @follows_input_device
    def translate(self, x: torch.Tensor) -> torch.Tensor:
        """A -> B: images of domain A in [0, 1] to domain B's style, in [0, 1]."""
        _check(x, self.shape_a, "domain-A (source)")
        return (self.g_ab(x * 2 - 1) + 1) / 2

    @torch.no_grad()
    @follows_input_device
    def translate_back(self, x: torch.Tensor) -> torch.Tensor:
        """B -> A: images of domain B in [0, 1] to domain A's style, in [0, 1]."""
        _check(x, self.shape_b, "domain-B (target)")
        return (self.g_ba(x * 2 - 1) + 1) / 2

    @torch.no_grad()
    def cycle_grid(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Rows: a | G_AB(a) | G_BA(G_AB(a)) | b | G_BA(b) | G_AB(G_BA(b)), in [0, 1] (grey
        rows repeated to the colour domain's channels); ``nrow`` = len(a) = len(b)."""
        ab = self.translate(a)
        aba = self.translate_back(ab)
        ba = self.translate_back(b)
        bab = self.translate(ba)
        rows = [a, ab, aba, b, ba, bab]
        channels = max(r.shape[1] for r in rows)
        return torch.cat([r.expand(-1, channels, -1, -1) for r in rows]).float()

    # -- training --------------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        adam = dict(lr=self.lr, betas=(self.beta1, 0.999))
        g_params = list(self.g_ab.parameters()) + list(self.g_ba.parameters())
        d_params = list(self.d_a.parameters()) + list(self.d_b.parameters())
        return {"g": torch.optim.Adam(g_params, **adam), "d": torch.optim.Adam(d_params, **adam)}

    def decay_start_step(self, total_steps: int) -> int:
        """``decay_start`` in steps for a run of ``total_steps``."""
        start = self.decay_start
        return round(start * total_steps) if isinstance(start, float) else int(start)

    def configure_schedulers(
        self, optimizers: dict[str, torch.optim.Optimizer], total_steps: int
    ) -> dict[str, Any]:
        start = self.decay_start_step(total_steps)
        return {name: linear_decay(opt, total_steps, start) for name, opt in optimizers.items()}

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        """One G update (both generators) then one D update (both discriminators)."""
        real_a, real_b = self._split(batch)
        if self.semantic is not None and not bool(self.semantic_ready):
            raise ConfigError(
                "semantic_weight > 0 but no trained semantic classifier was given; pass "
                "semantic_classifier= (f_S trained on domain A) or call set_semantic_classifier()."
            )
        a, b = real_a * 2 - 1, real_b * 2 - 1
        lam, lam_idt = self.cycle_weight, self.identity_weight * self.cycle_weight
        opt_g, opt_d = ctx.optimizers["g"], ctx.optimizers["d"]
        metrics: dict[str, torch.Tensor] = {}

        # G step: D_A and D_B frozen.
        with frozen(self.d_a, self.d_b):
            with ctx.autocast():
                fake_b = self.g_ab(a)
                rec_a = self.g_ba(fake_b)
                fake_a = self.g_ba(b)
                rec_b = self.g_ab(fake_a)
                gan_ab = 2 * self.lsgan.g(self.d_b(fake_b).float())
                gan_ba = 2 * self.lsgan.g(self.d_a(fake_a).float())
                cycle_a = F.l1_loss(rec_a.float(), a)
                cycle_b = F.l1_loss(rec_b.float(), b)
                g_loss = gan_ab + gan_ba + lam * (cycle_a + cycle_b)
                if lam_idt:
                    idt_b = F.l1_loss(self.g_ab(b).float(), b)
                    idt_a = F.l1_loss(self.g_ba(a).float(), a)
                    g_loss = g_loss + lam_idt * (idt_a + idt_b)
                    metrics["loss/idt_a"], metrics["loss/idt_b"] = idt_a.detach(), idt_b.detach()
                if self.semantic is not None:
                    semantic = self.semantic_loss(real_a, real_b, fake_b, fake_a)
                    g_loss = g_loss + self.semantic_weight * semantic
                    metrics["loss/semantic"] = semantic.detach()
            opt_g.zero_grad(set_to_none=True)
            ctx.backward(g_loss)
            ctx.optimizer_step(opt_g)

        # D step: each D on real images and on generated ones from its pool, halved.
        pooled_b = self.pool_b.query(fake_b.float())
        pooled_a = self.pool_a.query(fake_a.float())
        with ctx.autocast():
            d_b_loss = self.lsgan.d(self.d_b(b).float(), self.d_b(pooled_b).float())
            d_a_loss = self.lsgan.d(self.d_a(a).float(), self.d_a(pooled_a).float())
        opt_d.zero_grad(set_to_none=True)
        ctx.backward(d_a_loss + d_b_loss)
        ctx.optimizer_step(opt_d)
        return {
            "loss/g": g_loss.detach(),
            "loss/gan_ab": gan_ab.detach(),
            "loss/gan_ba": gan_ba.detach(),
            "loss/cycle_a": cycle_a.detach(),
            "loss/cycle_b": cycle_b.detach(),
            "loss/cycle": (cycle_a + cycle_b).detach(),
            "loss/d_a": d_a_loss.detach(),
            "loss/d_b": d_b_loss.detach(),
            **metrics,
        }

    def semantic_loss(
        self,
        real_a: torch.Tensor,
        real_b: torch.Tensor,
        fake_b: torch.Tensor,
        fake_a: torch.Tensor,
    ) -> torch.Tensor:
        """CyCADA Eq. 4: CE(f_S(G_AB(a)), argmax f_S(a)) + CE(f_S(G_BA(b)), argmax f_S(b)).

        ``real_*`` in [0, 1]; ``fake_*`` are the generators' outputs in [-1, 1].
        """
        if self.semantic is None:
            raise ConfigError("this CycleGAN has no semantic classifier (semantic_weight is 0).")
        with torch.no_grad():
            label_a = self.semantic(real_a).argmax(1)
            label_b = self.semantic(real_b).argmax(1)
        logits_ab = self.semantic((fake_b + 1) / 2).float()
        logits_ba = self.semantic((fake_a + 1) / 2).float()
        return F.cross_entropy(logits_ab, label_a) + F.cross_entropy(logits_ba, label_b)

    def _split(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise ConfigError(
                "a CycleGAN batch is (domain-A batch, domain-B batch), e.g. from "
                f"ZipLoader(InfiniteLoader(a), InfiniteLoader(b)); got {type(batch).__name__}"
                + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
            )
        a, b = (x[0] if isinstance(x, (tuple, list)) else x for x in batch)
        _check(a, self.shape_a, "domain-A")
        _check(b, self.shape_b, "domain-B")
        return a, b


def _shape(shape: Any, key: str) -> tuple[int, int, int]:
    try:
        out = tuple(int(v) for v in shape)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or min(out) < 1:
        raise ConfigError(f"CycleGAN's {key} must be (C, H, W) with positive sizes, got {shape!r}.")
    return out  # type: ignore[return-value]


def _check(x: Any, shape: tuple[int, int, int], name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != shape:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ConfigError(
            f"CycleGAN was built for {name} images of shape (N, {shape[0]}, {shape[1]}, "
            f"{shape[2]}) in [0, 1], got {got}; rebuild it with the data's shapes."
        )
