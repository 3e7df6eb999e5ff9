"""Progressive GAN (Karras, Aila, Laine & Lehtinen, "Progressive Growing of GANs for
Improved Quality, Stability, and Variation", ICLR 2018) as a :class:`gan.TrainingMethod`.

Training starts at 4 x 4 and adds a level (twice the size) at a time (Sec. 3): each new
level fades in over ``fade_images`` real images (its weight ``alpha`` rising linearly from 0
to 1) and is then trained alone for ``stable_images`` (the paper: 800k and 800k). D sees the
real images at the current size (average-pooled), blended during a fade-in with their half-
size version upsampled, as G's output is (Sec. 3, App. A.1). The networks are
:mod:`gan.nets.progan` (equalized learning rate, pixel norm, minibatch stddev).

The loss is WGAN-GP (lambda 10) with the epsilon-drift term ``0.001 * E[D(x)^2]`` that keeps
D's output near zero (App. A.1); one D step per G step; Adam with learning rate 0.001, betas
(0, 0.99), eps 1e-8, its state reset at every phase boundary as the authors' code does;
samples from an exponential moving average of G (decay 0.999, App. A.1).

The schedule is counted in images: :attr:`images_seen` is a buffer, so a checkpoint taken in
the middle of a fade-in resumes at the same ``alpha`` and gives the numbers of an
uninterrupted run. Deviations: one batch size for every level (the paper lowers it as the
size grows, to fit GPU memory).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.callbacks import Callback
from counterfeit.gan.ema import EMA, sampling_network
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.losses import gradient_penalty
from counterfeit.gan.method import StepContext, TrainingMethod, frozen
from counterfeit.gan.models._common import split_batch
from counterfeit.gan.nets.progan import ProGANDiscriminator, ProGANGenerator
from counterfeit.gan.plots import save_image_grid
from counterfeit.gan.runtime import model_mode


@dataclass(frozen=True)
class Phase:
    """Where training stands: the ``level`` (size ``4 * 2 ** level``), the new block's weight
    ``alpha``, and the phase's index (0: 4 x 4; then a fade-in and a stable phase per level)."""

    level: int
    alpha: float
    index: int

    @property
    def size(self) -> int:
        return 4 * 2**self.level


def growth_phase(images_seen: int, levels: int, fade_images: int, stable_images: int) -> Phase:
    """The phase after ``images_seen`` real images: 4 x 4 for ``stable_images``, then for each
    level a fade-in of ``fade_images`` (alpha = the fraction of it done) and a stable phase;
    after the top level's, its stable phase goes on."""
    if images_seen < stable_images:
        return Phase(0, 1.0, 0)
    seen = images_seen - stable_images
    per_level = fade_images + stable_images
    level = min(1 + seen // per_level, levels - 1)
    into = seen - (level - 1) * per_level
    if level == 0 or into >= fade_images:
        return Phase(level, 1.0, 2 * level)
    return Phase(level, into / fade_images, 2 * level - 1)


class ProGAN(TrainingMethod):
    """Progressive GAN, unconditional.

    Args:
        image_size: the final size (4 times a power of two; 32 for padded MNIST).
        channels: image channels.
        latent_dim: z's size (512).
        fmap_base, fmap_max: feature maps per level (8192, 512: 512 at every level to 32 px).
        fade_images, stable_images: real images per fade-in and per stable phase (800k each).
        lr, betas: Adam's (0.001, (0, 0.99)).
        gp_weight: WGAN-GP's lambda (10).
        drift: the epsilon-drift weight (0.001).
        group_size: the minibatch-stddev group (4).
        ema_decay: G's weight average for sampling (0.999; None: sample from G).
        n_fixed: fixed latents for sample grids.
        seed: of the fixed latents.
    """

    progress_metrics = ("d_loss", "g_loss", "level", "alpha")

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 1,
        latent_dim: int = 512,
        fmap_base: int = 8192,
        fmap_max: int = 512,
        fade_images: int = 800_000,
        stable_images: int = 800_000,
        lr: float = 0.001,
        betas: tuple[float, float] = (0.0, 0.99),
        gp_weight: float = 10.0,
        drift: float = 0.001,
        group_size: int = 4,
        ema_decay: float | None = 0.999,
        n_fixed: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if fade_images < 1 or stable_images < 1 or lr <= 0 or n_fixed < 1:
            raise ConfigError(
                f"ProGAN needs fade_images, stable_images, n_fixed >= 1 and lr > 0; got "
                f"{fade_images}, {stable_images}, {n_fixed}, {lr}."
            )
        self.save_hyperparameters()
        self.image_size, self.latent_dim = image_size, latent_dim
        self.fade_images, self.stable_images = fade_images, stable_images
        self.lr, self.betas = lr, tuple(betas)
        self.gp_weight, self.drift = gp_weight, drift
        self.generator = ProGANGenerator(image_size, channels, latent_dim, fmap_base, fmap_max)
        self.discriminator = ProGANDiscriminator(
            image_size, channels, fmap_base, fmap_max, group_size
        )
        self.levels = self.generator.levels
        self.g_ema = EMA(self.generator, ema_decay) if ema_decay is not None else None
        fixed = torch.Generator().manual_seed(seed)
        self.register_buffer("fixed_z", torch.randn(n_fixed, latent_dim, generator=fixed))
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.long))
        self.register_buffer("phase_index", torch.zeros((), dtype=torch.long))

    # -- the schedule ------------------------------------------------------------

    def phase(self, images_seen: int | None = None) -> Phase:
        """The phase after ``images_seen`` real images (None: where training stands)."""
        seen = int(self.images_seen) if images_seen is None else images_seen
        return growth_phase(seen, self.levels, self.fade_images, self.stable_images)

    @property
    def images_to_full_size(self) -> int:
        """Real images until the top level has faded in completely."""
        return self.stable_images + (self.levels - 1) * (self.fade_images + self.stable_images)

    # -- sampling ----------------------------------------------------------------

    def sampler(self, ema: bool = True) -> nn.Module:
        """The generator used for samples: the weight average when ``ema`` and kept."""
        return sampling_network(self.generator, self.g_ema, ema)

    def generate(
        self, z: torch.Tensor, ema: bool = True, full_size: bool = True, phase: Phase | None = None
    ) -> torch.Tensor:
        """Images in [0, 1] from ``z`` at ``phase`` (None: the current one); ``full_size``
        upsamples them (nearest) to ``image_size``, so scores compare like with like at every
        phase."""
        phase = self.phase() if phase is None else phase
        images = self.sampler(ema)(z, phase.level, phase.alpha).add(1).div(2).clamp(0, 1)
        if full_size and phase.size < self.image_size:
            images = F.interpolate(images, size=self.image_size, mode="nearest")
        return images

    def sample(
        self, n: int, generator: torch.Generator | None = None, ema: bool = True
    ) -> torch.Tensor:
        """``n`` images in [0, 1] at ``image_size`` from fresh z ~ N(0, I)."""
        device = self.fixed_z.device
        where = generator.device if generator is not None else device
        z = torch.randn(n, self.latent_dim, generator=generator, device=where).to(device)
        return self.generate(z, ema)

    def fixed_samples(
        self, ema: bool = True, full_size: bool = False, phase: Phase | None = None
    ) -> torch.Tensor:
        """Images from the fixed latents at the phase's own size, for sample grids."""
        return self.generate(self.fixed_z, ema, full_size, phase)

    # -- training ----------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        adam = dict(lr=self.lr, betas=self.betas, eps=1e-8)
        return {
            "g": torch.optim.Adam(self.generator.parameters(), **adam),
            "d": torch.optim.Adam(self.discriminator.parameters(), **adam),
        }

    def real_at(self, images: torch.Tensor, phase: Phase) -> torch.Tensor:
        """Real images in [-1, 1] at the phase's size; during a fade-in blended with their
        half-size version, upsampled, by ``1 - alpha`` (as G's output is)."""
        x = images * 2 - 1
        if phase.size < x.shape[-1]:
            x = F.adaptive_avg_pool2d(x, phase.size)
        if phase.alpha < 1.0:
            low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
            x = torch.lerp(low, x, phase.alpha)
        return x

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        images, _ = split_batch(batch)
        if images.shape[-1] != self.image_size:
            raise ConfigError(
                f"ProGAN was built for {self.image_size} px images; the data has "
                f"{images.shape[-1]} px (set data.pad or image_size to match)."
            )
        n, device = images.shape[0], images.device
        phase = self.phase()
        if phase.index != int(self.phase_index):  # a new phase: fresh Adam moments
            for optimizer in ctx.optimizers.values():
                optimizer.state.clear()
            self.phase_index.fill_(phase.index)
        g, d = self.generator, self.discriminator
        opt_d, opt_g = ctx.optimizers["d"], ctx.optimizers["g"]
        level, alpha = phase.level, phase.alpha
        real = self.real_at(images, phase)
        with ctx.autocast():
            with torch.no_grad():
                fake = g(torch.randn(n, self.latent_dim, device=device), level, alpha)
            d_real, d_fake = d(real, level, alpha).float(), d(fake, level, alpha).float()
            penalty = gradient_penalty(lambda x: d(x, level, alpha), real, fake)
            d_loss = (
                d_fake.mean()
                - d_real.mean()
                + self.gp_weight * penalty
                + self.drift * d_real.pow(2).mean()
            )
        opt_d.zero_grad(set_to_none=True)
        ctx.backward(d_loss)
        ctx.optimizer_step(opt_d)
        with frozen(d):
            with ctx.autocast():
                fake = g(torch.randn(n, self.latent_dim, device=device), level, alpha)
                g_loss = -d(fake, level, alpha).float().mean()
            opt_g.zero_grad(set_to_none=True)
            ctx.backward(g_loss)
            ctx.optimizer_step(opt_g)
        if self.g_ema is not None:
            self.g_ema.update(g)
        self.images_seen += n
        return {
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            "wasserstein": (d_real.mean() - d_fake.mean()).detach(),
            "gp": penalty.detach(),
            "level": torch.tensor(float(level)),
            "alpha": torch.tensor(alpha),
        }


class PhaseGridCallback(Callback):
    """A grid of the fixed latents' images at the end of every growth phase, at that phase's
    own size (``phase{index}_{size}px_{fade|stable}.png`` in ``out_dir`` and the tracker's
    ``samples/``, and in :attr:`grids` by that name), and one at the end of training.
    Checks the phase after every step."""

    every = 1

    def __init__(self, out_dir: str | Path | None = None, tracker: Any = None) -> None:
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.tracker = tracker
        self.last: Phase | None = None
        self.written: list[Path] = []
        self.grids: dict[str, torch.Tensor] = {}

    def state_dict(self) -> dict[str, Any]:
        return {"last": None if self.last is None else astuple(self.last)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last = None if state.get("last") is None else Phase(*state["last"])

    def on_step(self, trainer: Any, step: int) -> None:
        method = trainer.method
        assert isinstance(method, ProGAN)
        now, before = method.phase(), self.last or method.phase(0)
        if now.index != before.index:
            self._write(method, before)
        self.last = now

    def on_end(self, trainer: Any) -> None:
        method = trainer.method
        assert isinstance(method, ProGAN)
        self._write(method, method.phase())

    def _write(self, method: ProGAN, phase: Phase) -> None:
        kind = "fade" if phase.index % 2 else "stable"
        name = f"phase{phase.index}_{phase.size}px_{kind}.png"
        with model_mode(method, False), torch.no_grad():
            images = method.fixed_samples(phase=phase).float().cpu()
        self.grids[name.removesuffix(".png")] = images
        nrow = max(1, int(len(images) ** 0.5))
        if self.out_dir is not None:
            self.written.append(save_image_grid(images, self.out_dir / name, nrow))
        if self.tracker is not None:
            self.tracker.log_image_grid(images, name, "samples", nrow)
