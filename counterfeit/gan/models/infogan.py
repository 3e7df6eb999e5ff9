"""InfoGAN (Chen et al., NeurIPS 2016) as a :class:`gan.TrainingMethod`.

G's input is incompressible noise z plus latent codes c: categorical codes
(one-hot) and continuous codes, all independent. A recognition network Q,
sharing D's body, predicts the codes from G(z, c); the variational lower
bound on the mutual information I(c; G(z, c)) is maximised by minimising

    L_I = sum_k CE(Q_k(G(z, c)), c_k)  +  lambda_cont * sum_j NLL_Gauss(c_j | Q_j(G(z, c)))

and the full objectives are ``L_D + lambda * L_I`` for D and Q (one
optimizer) and ``L_G + lambda * L_I`` for G (Eq. 6 of the paper), with the
non-saturating GAN loss. MNIST defaults (paper Sec. 5, Appendix C.1, and the
authors' ``openai/InfoGAN`` launcher): 62 noise variables, one 10-way
categorical code, two continuous codes c ~ U(-1, 1), lambda = 1, Adam with
learning rates 2e-4 (D, Q) and 1e-3 (G) and beta1 0.5, batch 128 (the
recipe's). The authors' code draws z ~ U(-1, 1) and fixes the Gaussian
posterior's standard deviation to 1 (``fix_std=True``); ``learn_std=True``
instead lets Q predict it (the paper's "exponential transformation").

Deviations: (1) the G step reuses the D step's generated batch
(``g_batch="reuse"``). The authors' trainer draws fresh noise and codes for it
(two ``sess.run`` calls per update; ``g_batch="fresh"``), which the paper does
not mention; measured on full MNIST (docs/archive/benchmarks-notebook.md), fresh draws ended 6 and
16 points lower in categorical-code cluster accuracy on two seeds. (2) G's
weights are also averaged (:class:`gan.ema.EMA`) for sampling. (3) Optionally
(``q_ema_decay``) D and Q's weights are averaged too, and that average labels real
images in :meth:`InfoGAN.predict_categorical`; training never reads it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F

from counterfeit.gan.ema import EMA, sampling_network
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.losses import minimax_d, non_saturating_g
from counterfeit.gan.method import StepContext, TrainingMethod, frozen
from counterfeit.gan.models._common import random_labels, sample_latent, split_batch
from counterfeit.gan.nets.infogan import LEAK, InfoGANDiscriminator, InfoGANGenerator
from counterfeit.gan.runtime import model_mode


class InfoGAN(TrainingMethod):
    """InfoGAN with categorical and continuous codes, a Q head on D's body, EMA sampling.

    Args:
        image_size: a multiple of 4 (28 for MNIST).
        channels: image channels.
        noise_dim: size of the incompressible noise z (62).
        categorical: number of categories of each categorical code ((10,)).
        continuous: number of continuous codes, each U(-1, 1) (2).
        info_weight: lambda, the weight of the mutual-information term (1).
        continuous_weight: extra factor on the continuous codes' NLL (1, the authors'
            launcher; the paper advises a smaller lambda for continuous codes, but 0.1
            ended 2 and 8 points lower on full MNIST: docs/archive/benchmarks-notebook.md).
        lr_g, lr_d: Adam learning rates of G and of D with Q (1e-3, 2e-4).
        betas: Adam betas ((0.5, 0.999)).
        learn_std: Q predicts the continuous codes' standard deviation (else fixed to 1).
        g_batch: "reuse" (default): the G step reuses the D step's generated batch;
            "fresh": it draws new noise and codes, as the authors' trainer does.
        leak: negative slope of D's and Q's lReLUs (the paper's 0.1; the authors'
            code 0.01).
        ema_decay: decay of the generator's weight average; None disables it.
        q_ema_decay: decay of a weight average of D and Q, used only to label images
            (:meth:`predict_categorical`); None (default) labels with the last iterate.
        n_fixed: fixed latent vectors kept for sample grids and traversals.
        seed: seed of the fixed latent vectors.
    """

    progress_metrics = ("d_loss", "g_loss", "mi_loss")

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 1,
        noise_dim: int = 62,
        categorical: Sequence[int] = (10,),
        continuous: int = 2,
        info_weight: float = 1.0,
        continuous_weight: float = 1.0,
        lr_g: float = 1e-3,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        learn_std: bool = False,
        g_batch: Literal["fresh", "reuse"] = "reuse",
        leak: float = LEAK,
        ema_decay: float | None = 0.999,
        q_ema_decay: float | None = None,
        n_fixed: int = 100,
        seed: int = 0,
    ) -> None:
        super().__init__()
        categorical = tuple(int(k) for k in categorical)
        if any(k < 2 for k in categorical) or continuous < 0 or noise_dim < 0:
            raise ConfigError(
                f"InfoGAN needs categorical codes of >= 2 categories, continuous >= 0 and "
                f"noise_dim >= 0; got categorical={list(categorical)}, continuous={continuous}, "
                f"noise_dim={noise_dim}."
            )
        if not categorical and not continuous:
            raise ConfigError("InfoGAN needs at least one latent code (categorical or continuous).")
        if min(lr_g, lr_d) <= 0 or info_weight < 0 or continuous_weight < 0:
            raise ConfigError("InfoGAN's learning rates must be > 0 and its weights >= 0.")
        if g_batch not in ("fresh", "reuse"):
            raise ConfigError(f"g_batch must be 'fresh' or 'reuse', got '{g_batch}'.")
        self.save_hyperparameters()
        self.g_batch = g_batch
        self.noise_dim = noise_dim
        self.categorical = categorical
        self.continuous = continuous
        self.info_weight = info_weight
        self.continuous_weight = continuous_weight
        self.lr_g, self.lr_d, self.betas = lr_g, lr_d, tuple(betas)
        self.learn_std = learn_std
        q_features = sum(categorical) + continuous * (2 if learn_std else 1)
        self.generator = InfoGANGenerator(self.latent_features, image_size, channels)
        self.discriminator = InfoGANDiscriminator(q_features, image_size, channels, leak)
        self.g_ema = EMA(self.generator, ema_decay) if ema_decay is not None else None
        self.q_ema = EMA(self.discriminator, q_ema_decay) if q_ema_decay is not None else None
        noise, codes, cont = self.sample_codes(n_fixed, torch.Generator().manual_seed(seed))
        self.register_buffer("fixed_noise", noise)
        self.register_buffer("fixed_codes", codes)
        self.register_buffer("fixed_continuous", cont)

    @property
    def latent_features(self) -> int:
        """Width of G's input: noise, one-hot categorical codes, continuous codes."""
        return self.noise_dim + sum(self.categorical) + self.continuous

    # -- latent codes ----------------------------------------------------------------

    def sample_codes(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Noise (n, noise_dim) ~ U(-1, 1), category indices (n, n_categorical), continuous
        codes (n, continuous) ~ U(-1, 1)."""
        noise = sample_latent(n, self.noise_dim, "uniform", device, generator)
        codes = [random_labels(n, k, device, generator) for k in self.categorical]
        indices = torch.stack(codes, 1) if codes else torch.zeros(n, 0, dtype=torch.long)
        cont = sample_latent(n, self.continuous, "uniform", device, generator)
        return noise, indices.to(device), cont

    def latent(self, noise: torch.Tensor, codes: torch.Tensor, cont: torch.Tensor) -> torch.Tensor:
        """G's input vector from noise, category indices and continuous codes."""
        one_hots = [
            F.one_hot(codes[:, i], k).to(noise.dtype) for i, k in enumerate(self.categorical)
        ]
        return torch.cat([noise, *one_hots, cont.to(noise.dtype)], dim=1)

    def information_loss(
        self, q: torch.Tensor, codes: torch.Tensor, cont: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(lambda * L_I, summed categorical cross-entropy, summed continuous Gaussian NLL)."""
        q = q.float()
        ce = q.new_zeros(())
        offset = 0
        for i, k in enumerate(self.categorical):
            ce = ce + F.cross_entropy(q[:, offset : offset + k], codes[:, i])
            offset += k
        nll = q.new_zeros(())
        if self.continuous:
            mean = q[:, offset : offset + self.continuous]
            if self.learn_std:
                log_std = q[:, offset + self.continuous :].clamp(-5, 5)
                var = log_std.mul(2).exp()
            else:
                var = torch.ones_like(mean)
            nll = F.gaussian_nll_loss(mean, cont, var, reduction="none").sum(1).mean()
        return self.info_weight * (ce + self.continuous_weight * nll), ce, nll

    # -- sampling ----------------------------------------------------------------

    def sampler(self, ema: bool = True) -> torch.nn.Module:
        """The generator used for samples: the weight average when ``ema`` and kept."""
        return sampling_network(self.generator, self.g_ema, ema)

    def generate(
        self, noise: torch.Tensor, codes: torch.Tensor, cont: torch.Tensor, ema: bool = True
    ) -> torch.Tensor:
        """Images in [0, 1] from noise, category indices and continuous codes."""
        return self.sampler(ema)(self.latent(noise, codes, cont))

    def sample(
        self, n: int, generator: torch.Generator | None = None, ema: bool = True
    ) -> torch.Tensor:
        """``n`` images in [0, 1] from freshly drawn noise and codes."""
        return self.generate(*self.sample_codes(n, generator, self.fixed_noise.device), ema=ema)

    def traversal(
        self,
        kind: Literal["categorical", "continuous"] = "categorical",
        index: int = 0,
        rows: int = 10,
        values: Sequence[float] | None = None,
        ema: bool = True,
    ) -> torch.Tensor:
        """A latent-traversal grid (paper Fig. 2): each row keeps its noise and other codes
        fixed, the columns vary one code: every category of categorical code ``index``,
        or ``values`` (default -2 to 2 in 10 steps, as the paper) of continuous code
        ``index``. Returns (rows * columns, C, H, W), row-major."""
        count = len(self.categorical) if kind == "categorical" else self.continuous
        if kind not in ("categorical", "continuous") or not 0 <= index < count:
            raise ConfigError(f"InfoGAN has {count} {kind} code(s); there is no code {index}.")
        rows = min(rows, self.fixed_noise.shape[0])
        if kind == "categorical":
            columns = torch.arange(self.categorical[index], device=self.fixed_noise.device)
        else:
            columns = torch.tensor(
                list(values) if values is not None else torch.linspace(-2, 2, 10).tolist(),
                device=self.fixed_noise.device,
            )
        cols = len(columns)
        noise = self.fixed_noise[:rows].repeat_interleave(cols, 0)
        codes = self.fixed_codes[:rows].repeat_interleave(cols, 0).clone()
        cont = self.fixed_continuous[:rows].repeat_interleave(cols, 0).clone()
        if kind == "categorical":
            codes[:, index] = columns.repeat(rows)
        else:
            cont[:, index] = columns.repeat(rows).to(cont.dtype)
        return self.generate(noise, codes, cont, ema)

    @torch.no_grad()
    def predict_categorical(
        self, images: torch.Tensor, index: int = 0, batch_size: int = 500, average: bool = True
    ) -> torch.Tensor:
        """Q's most likely category of categorical code ``index`` for each image (eval mode),
        from the weight average of D and Q when ``average`` and one is kept."""
        if not 0 <= index < len(self.categorical):
            raise ConfigError(f"InfoGAN has {len(self.categorical)} categorical code(s).")
        offset = sum(self.categorical[:index])
        net = self.q_ema.module if average and self.q_ema is not None else self.discriminator
        device = self.fixed_noise.device
        out = []
        with model_mode(net, False):
            for chunk in images.split(batch_size):
                _, q = net(chunk.to(device))
                out.append(q[:, offset : offset + self.categorical[index]].argmax(1).cpu())
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)

    # -- training ----------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {
            "g": torch.optim.Adam(self.generator.parameters(), lr=self.lr_g, betas=self.betas),
            "d": torch.optim.Adam(self.discriminator.parameters(), lr=self.lr_d, betas=self.betas),
        }

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        real, _ = split_batch(batch)
        noise, codes, cont = self.sample_codes(real.shape[0], device=real.device)
        d, g = self.discriminator, self.generator
        opt_d, opt_g = ctx.optimizers["d"], ctx.optimizers["g"]
        reuse = self.g_batch == "reuse"
        with ctx.autocast():
            with torch.set_grad_enabled(reuse):
                fake = g(self.latent(noise, codes, cont))
            d_real, _ = d(real)
            d_fake, q_fake = d(fake.detach())
            gan_d = minimax_d(d_real, d_fake)
            info_d, ce, nll = self.information_loss(q_fake, codes, cont)
        opt_d.zero_grad(set_to_none=True)
        ctx.backward(gan_d + info_d)
        ctx.optimizer_step(opt_d)
        with frozen(d):
            with ctx.autocast():
                if not reuse:  # the authors' trainer: a fresh draw for the G step
                    noise, codes, cont = self.sample_codes(real.shape[0], device=real.device)
                    fake = g(self.latent(noise, codes, cont))
                d_fake_g, q_fake_g = d(fake)
                gan_g = non_saturating_g(d_fake_g)
                info_g, _, _ = self.information_loss(q_fake_g, codes, cont)
            opt_g.zero_grad(set_to_none=True)
            ctx.backward(gan_g + info_g)
            ctx.optimizer_step(opt_g)
        if self.g_ema is not None:
            self.g_ema.update(g)
        if self.q_ema is not None:
            self.q_ema.update(d)
        entropy = sum(math.log(k) for k in self.categorical)
        return {
            "d_loss": gan_d.detach(),
            "g_loss": gan_g.detach(),
            "mi_loss": info_d.detach(),
            "mi_categorical": entropy - ce.detach(),
            "continuous_nll": nll.detach(),
        }
