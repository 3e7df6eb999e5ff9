"""Networks of the text-conditional GAN (Reed et al., "Generative Adversarial Text to Image
Synthesis", ICML 2016, Sec. 3.1 and Fig. 2) and its text encoder.

* :class:`TextEncoder` phi: token ids -> a text embedding. Reed et al. use a char-CNN-RNN
  (1,024-d) pre-trained with the structured joint embedding of Reed et al. (CVPR 2016);
  here a word-level bidirectional GRU (deviation: the captions' vocabulary is closed and
  small, so words are the natural unit), mean-pooled over the words, 128-d.
* :class:`TextGenerator`: phi(t) compressed by a fully connected layer to 128 dims with a
  leaky ReLU (slope 0.2), concatenated to z, then the DCGAN generator
  (:class:`~gan.nets.dcgan.DCGANGenerator`).
* :class:`TextDiscriminator`: DCGAN's stride-2 convolutions down to 4 x 4, where phi(t),
  compressed the same way by D's own layer, is replicated spatially and concatenated in
  depth; a 1 x 1 convolution (BatchNorm, leaky ReLU) and a 4 x 4 convolution give the logit.
"""

from __future__ import annotations

import torch
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.nets.blocks import init_normal_
from counterfeit.gan.nets.dcgan import DCGANDiscriminator, DCGANGenerator


class TextEncoder(nn.Module):
    """Token ids (N, L) (0: padding) -> text embeddings (N, out_dim)."""

    def __init__(self, vocab_size: int, out_dim: int = 128, word_dim: int = 64, hidden: int = 128):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.rnn = nn.GRU(word_dim, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, out_dim)
        self.out_dim = out_dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 2:
            raise ConfigError(
                f"the text encoder takes token ids (N, L), got {tuple(tokens.shape)}."
            )
        mask = (tokens != 0).unsqueeze(-1).float()
        states, _ = self.rnn(self.embed(tokens))
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.out(pooled)


def _compress(text_dim: int, compressed: int) -> nn.Sequential:
    """Reed et al. 2016, Sec. 3.1: a fully connected layer to a small dimension, leaky ReLU."""
    return nn.Sequential(nn.Linear(text_dim, compressed), nn.LeakyReLU(0.2))


class TextGenerator(nn.Module):
    """(z (N, latent_dim), text embeddings (N, text_dim)) -> images (N, C, S, S) in [0, 1]."""

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        latent_dim: int = 100,
        text_dim: int = 128,
        compressed: int = 128,
        width: int = 64,
    ) -> None:
        super().__init__()
        self.latent_dim, self.text_dim = latent_dim, text_dim
        self.compress = _compress(text_dim, compressed)
        self.body = DCGANGenerator(image_size, channels, latent_dim + compressed, width)
        init_normal_(self.compress)

    def forward(self, z: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        if z.shape[1:] != (self.latent_dim,) or text.shape != (z.shape[0], self.text_dim):
            raise ConfigError(
                f"the generator takes z (N, {self.latent_dim}) and text (N, {self.text_dim}), got "
                f"{tuple(z.shape)} and {tuple(text.shape)}."
            )
        return self.body(torch.cat([z, self.compress(text)], dim=1))


class TextDiscriminator(nn.Module):
    """(images (N, C, S, S) in [0, 1], text embeddings (N, text_dim)) -> logits (N,)."""

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        text_dim: int = 128,
        compressed: int = 128,
        width: int = 64,
    ) -> None:
        super().__init__()
        self.body = DCGANDiscriminator(image_size, channels, width).net[:-1]
        hidden = self.body[-1][0].out_channels
        self.compress = _compress(text_dim, compressed)
        self.joint = nn.Sequential(
            nn.Conv2d(hidden + compressed, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.LeakyReLU(0.2),
            nn.Conv2d(hidden, 1, 4, 1, 0),
        )
        init_normal_(self)

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        x = self.body(images.mul(2).sub(1))
        t = self.compress(text)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return self.joint(torch.cat([x, t], dim=1)).flatten()
