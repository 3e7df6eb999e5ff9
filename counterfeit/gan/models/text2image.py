"""The text-conditional GAN of Reed et al., "Generative Adversarial Text to Image Synthesis"
(ICML 2016), with GAN-CLS and GAN-INT, as a :class:`gan.TrainingMethod`.

The networks are :mod:`gan.nets.text`; the text encoder phi is trained first
(:class:`~gan.models.joint_embedding.JointEmbedding`) and is frozen here, as in the paper.
Algorithm 1 (GAN-CLS, the matching-aware discriminator): with h = phi(t) of the image's
caption and h' of a mismatching caption, s_r = D(x, h), s_w = D(x, h'), s_f = D(G(z, h), h),

    L_D = log s_r + (log(1 - s_w) + log(1 - s_f)) / 2,   L_G = log s_f

(maximised; G's is the non-saturating form, as in the paper). GAN-INT (Sec. 4.3) adds to G's
objective the term for interpolated embeddings beta h_1 + (1 - beta) h_2 of two training
captions, beta = 0.5, which D never sees with a real image. z ~ N(0, I) of 100 dims, Adam
2e-4 with beta1 0.5, batch 64 (Sec. 5).

Deviations: 32 px images by default (the paper's are 64 px); the mismatching caption is
another image's in the batch (rows where that caption happens to describe the image too are
left out of the s_w term); an EMA of G's weights (used for sampling, not in the paper).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from counterfeit.gan.data.captions import describes
from counterfeit.gan.data.vocabulary import Vocabulary, tokenize
from counterfeit.gan.ema import EMA, sampling_network
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.method import StepContext, TrainingMethod, frozen
from counterfeit.gan.models.joint_embedding import pick_captions
from counterfeit.gan.nets.text import TextDiscriminator, TextEncoder, TextGenerator


def interpolate_embeddings(
    first: torch.Tensor, second: torch.Tensor, beta: float | torch.Tensor = 0.5
) -> torch.Tensor:
    """GAN-INT's text input beta * first + (1 - beta) * second (Reed et al. 2016, Eq. 5)."""
    return beta * first + (1 - beta) * second


def gan_cls_d_loss(
    real: torch.Tensor, wrong: torch.Tensor | None, fake: torch.Tensor
) -> torch.Tensor:
    """D's loss (the negated Algorithm 1 objective) from logits of real images with their
    captions, real images with mismatching captions (None: plain conditional GAN, whose
    fake term then has weight 1) and fakes with their captions."""
    real_term = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
    fake_term = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    if wrong is None:
        return real_term + fake_term
    if wrong.numel() == 0:
        wrong_term = fake_term  # no mismatched pair in the batch: the fake term stands in
    else:
        wrong_term = F.binary_cross_entropy_with_logits(wrong, torch.zeros_like(wrong))
    return real_term + 0.5 * (wrong_term + fake_term)


class TextToImageGAN(TrainingMethod):
    """Reed et al.'s text-conditional DCGAN (GAN, GAN-CLS, GAN-INT, GAN-INT-CLS).

    Args:
        vocabulary: the words of the frozen text encoder (as trained by JointEmbedding).
        fixed_captions: the captions of the sample grids (each drawn with 8 fixed z).
        image_size, channels: the images'.
        latent_dim: z's size (100).
        text_dim: phi's output size; the text encoder's word_dim, hidden and max_length
            must match the trained one's.
        compressed: phi(t)'s size after the compression layer in G and D (128).
        width: DCGAN width (64 at 32 px: 256-128-64 channels).
        matching_aware: GAN-CLS's third term (real image, wrong text).
        interpolation: GAN-INT's beta; None: no interpolation term.
        lr, betas: Adam's (2e-4, (0.5, 0.999)).
        ema_decay: G's weight average; None: off.
        seed: of the fixed grid's z.
    """

    progress_metrics = ("d_loss", "g_loss")

    def __init__(
        self,
        vocabulary: list[str],
        fixed_captions: list[str],
        image_size: int = 32,
        channels: int = 3,
        latent_dim: int = 100,
        text_dim: int = 128,
        word_dim: int = 64,
        hidden: int = 128,
        max_length: int = 24,
        compressed: int = 128,
        width: int = 64,
        matching_aware: bool = True,
        interpolation: float | None = 0.5,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        ema_decay: float | None = 0.999,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not fixed_captions:
            raise ConfigError("TextToImageGAN needs at least one caption for its sample grids.")
        if interpolation is not None and not 0 <= interpolation <= 1:
            raise ConfigError(f"GAN-INT's beta must be in [0, 1], got {interpolation}.")
        self.save_hyperparameters()
        self.vocabulary = Vocabulary(vocabulary)
        self.fixed_captions = list(fixed_captions)
        self.latent_dim, self.max_length = latent_dim, max_length
        self.matching_aware, self.interpolation = matching_aware, interpolation
        self.lr, self.betas = lr, tuple(betas)
        self.text_encoder = TextEncoder(len(self.vocabulary), text_dim, word_dim, hidden)
        self.text_encoder.requires_grad_(False)
        self.generator = TextGenerator(
            image_size, channels, latent_dim, text_dim, compressed, width
        )
        self.discriminator = TextDiscriminator(image_size, channels, text_dim, compressed, width)
        self.g_ema = EMA(self.generator, ema_decay) if ema_decay is not None else None
        fixed = torch.Generator().manual_seed(seed)
        self.register_buffer("fixed_z", torch.randn(8, latent_dim, generator=fixed))

    def use_text_encoder(self, encoder: TextEncoder) -> None:
        """Copy in the trained (joint-embedding) text encoder phi; it stays frozen."""
        self.text_encoder.load_state_dict(encoder.state_dict())

    def train(self, mode: bool = True) -> TextToImageGAN:
        super().train(mode)
        self.text_encoder.eval()  # frozen: no dropout or state changes while G and D train
        return self

    # -- text and sampling ---------------------------------------------------------------

    def encode(self, texts: list[str]) -> torch.Tensor:
        """phi(t) of each caption (N, text_dim)."""
        for text in texts:
            if not any(w in self.vocabulary.index for w in tokenize(text)):
                raise ConfigError(
                    f"no word of the caption {text!r} is known to the text encoder; it knows "
                    f"e.g. {', '.join(self.vocabulary.words[2:14])}."
                )
        tokens = self.vocabulary.encode(texts, self.max_length).to(self.fixed_z.device)
        with torch.no_grad():
            return self.text_encoder(tokens)

    def generate(self, z: torch.Tensor, text: torch.Tensor, ema: bool = True) -> torch.Tensor:
        """Images in [0, 1] from z (N, latent_dim) and text embeddings (N, text_dim)."""
        return sampling_network(self.generator, self.g_ema, ema)(z, text)

    def sample_texts(
        self, texts: list[str], generator: torch.Generator | None = None, ema: bool = True
    ) -> torch.Tensor:
        """One image per caption in ``texts``, each from fresh z."""
        where = generator.device if generator is not None else self.fixed_z.device
        z = torch.randn(len(texts), self.latent_dim, generator=generator, device=where)
        return self.generate(z.to(self.fixed_z.device), self.encode(texts), ema)

    def sample(
        self, n: int, generator: torch.Generator | None = None, ema: bool = True
    ) -> torch.Tensor:
        """``n`` images of the grid captions in turn."""
        captions = [self.fixed_captions[i % len(self.fixed_captions)] for i in range(n)]
        return self.sample_texts(captions, generator, ema)

    def fixed_samples(self, ema: bool = True) -> torch.Tensor:
        """A row of 8 fixed z per grid caption (up to 8 captions): same z, same column."""
        captions = self.fixed_captions[:8]
        text = self.encode(captions).repeat_interleave(len(self.fixed_z), 0)
        return self.generate(self.fixed_z.repeat(len(captions), 1), text, ema)

    def interpolation_grid(self, first: str, second: str, steps: int = 8) -> torch.Tensor:
        """GAN-INT's walk (Reed et al. 2016, Fig. 8): one z per row, the text embedding moving
        from ``first`` to ``second`` in ``steps`` images."""
        a, b = self.encode([first, second])
        beta = torch.linspace(1, 0, steps, device=a.device)[:, None]
        text = interpolate_embeddings(a, b, beta).repeat(len(self.fixed_z), 1)
        z = self.fixed_z.repeat_interleave(steps, 0)
        return self.generate(z, text)

    # -- training ------------------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        def adam(module):
            return torch.optim.Adam(module.parameters(), lr=self.lr, betas=self.betas)

        return {"g": adam(self.generator), "d": adam(self.discriminator)}

    def train_step(self, batch: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        real, tokens, stated, shown = batch
        n = real.shape[0]
        if n < 2:
            raise ConfigError("GAN-CLS needs batches of at least 2 images (a wrong caption).")
        tokens, stated = pick_captions(tokens, stated)
        with torch.no_grad():
            text = self.text_encoder(tokens)
        other = torch.roll(torch.arange(n, device=real.device), 1)
        mismatched = ~describes(stated[other], shown).diagonal()
        g, d = self.generator, self.discriminator
        opt_d, opt_g = ctx.optimizers["d"], ctx.optimizers["g"]
        z = torch.randn(n, self.latent_dim, device=real.device)
        with ctx.autocast():
            fake = g(z, text)
            s_real, s_fake = d(real, text), d(fake.detach(), text)
            s_wrong = d(real[mismatched], text[other][mismatched]) if self.matching_aware else None
            d_loss = gan_cls_d_loss(s_real, s_wrong, s_fake)
        opt_d.zero_grad(set_to_none=True)
        ctx.backward(d_loss)
        ctx.optimizer_step(opt_d)
        with frozen(d):
            with ctx.autocast():
                g_loss = F.binary_cross_entropy_with_logits(
                    d(fake, text), torch.ones(n, device=real.device)
                )
                if self.interpolation is not None:
                    mixed = interpolate_embeddings(text, text[other], self.interpolation)
                    z_mixed = torch.randn(n, self.latent_dim, device=real.device)
                    s_mixed = d(g(z_mixed, mixed), mixed)
                    g_loss = g_loss + F.binary_cross_entropy_with_logits(
                        s_mixed, torch.ones_like(s_mixed)
                    )
            opt_g.zero_grad(set_to_none=True)
            ctx.backward(g_loss)
            ctx.optimizer_step(opt_g)
        if self.g_ema is not None:
            self.g_ema.update(g)
        metrics = {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}
        metrics["d_real"] = torch.sigmoid(s_real.detach()).mean()
        metrics["d_fake"] = torch.sigmoid(s_fake.detach()).mean()
        if s_wrong is not None and s_wrong.numel():
            metrics["d_wrong"] = torch.sigmoid(s_wrong.detach()).mean()
        return metrics
