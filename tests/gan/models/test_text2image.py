"""Reed et al.'s text-conditional GAN: GAN-CLS's three terms, GAN-INT's interpolation, the
text encoder's joint embedding learning captions."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from counterfeit.gan.data.captions import describes, render_captioned_digits
from counterfeit.gan.data.loaders import InfiniteLoader
from counterfeit.gan.data.vocabulary import CaptionTokens, Vocabulary
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.method import StepContext
from counterfeit.gan.metrics.text import r_precision
from counterfeit.gan.models import JointEmbedding, TextToImageGAN
from counterfeit.gan.models.joint_embedding import joint_embedding_loss, pick_captions
from counterfeit.gan.models.text2image import gan_cls_d_loss, interpolate_embeddings
from counterfeit.gan.train import Trainer, TrainerConfig


def test_gan_cls_d_loss_weights_real_one_and_wrong_and_fake_a_half_each():
    real, wrong, fake = torch.tensor([1.5, -0.3]), torch.tensor([0.4]), torch.tensor([-2.0, 0.7])

    def log_sigmoid_mean(x):
        return torch.log(torch.sigmoid(x)).mean()

    expected = -(
        log_sigmoid_mean(real) + 0.5 * (log_sigmoid_mean(-wrong) + log_sigmoid_mean(-fake))
    )
    assert torch.isclose(gan_cls_d_loss(real, wrong, fake), expected)
    plain = -(log_sigmoid_mean(real) + log_sigmoid_mean(-fake))
    assert torch.isclose(gan_cls_d_loss(real, None, fake), plain)


def test_interpolated_embeddings_lie_between_their_endpoints():
    a, b = torch.randn(5, 8), torch.randn(5, 8)
    for beta in (0.0, 0.25, 0.5, 1.0):
        mixed = interpolate_embeddings(a, b, beta)
        assert bool((mixed >= torch.minimum(a, b) - 1e-6).all())
        assert bool((mixed <= torch.maximum(a, b) + 1e-6).all())
    assert torch.equal(interpolate_embeddings(a, b, 1.0), a)
    assert torch.allclose((a - interpolate_embeddings(a, b, 0.25)).norm(), 0.75 * (a - b).norm())


@pytest.fixture(scope="module")
def tiny():
    data = render_captioned_digits(64, size=16, seed=0, captions_per_image=2)
    vocabulary = Vocabulary.from_captions([c for row in data.captions for c in row])
    return data, vocabulary, CaptionTokens(data, vocabulary, 12)


def _gan(vocabulary, **kwargs):
    return TextToImageGAN(
        vocabulary.words, ["a red 7"], 16, 3, latent_dim=6, text_dim=8, word_dim=6, hidden=5,
        max_length=12, compressed=4, width=4, ema_decay=None, **kwargs,
    )  # fmt: skip


def test_one_step_matches_algorithm_1_by_hand(tiny):
    """D's loss: real with its caption, real with another image's caption (where that caption
    does not describe it) and fake with its caption, 1 : 1/2 : 1/2; G's loss: the fake's plus
    GAN-INT's term at beta 0.5 (Reed et al. 2016, Alg. 1 and Eq. 5)."""
    _, vocabulary, tokens = tiny
    gan = _gan(vocabulary)
    before = copy.deepcopy(gan)
    batch = tokens.get_batch(torch.arange(8))
    ctx = StepContext.single_process(gan.configure_optimizers(), 1)
    torch.manual_seed(5)
    metrics = gan.train_step(batch, ctx)

    torch.manual_seed(5)
    real, ids, stated, shown = batch
    ids, stated = pick_captions(ids, stated)
    text = before.text_encoder(ids).detach()
    other = torch.roll(torch.arange(8), 1)
    mismatched = ~describes(stated[other], shown).diagonal()
    assert 0 < int(mismatched.sum()) <= 8
    z = torch.randn(8, 6)
    fake = before.generator(z, text)
    d = before.discriminator
    s_real, s_fake = d(real, text), d(fake, text)
    s_wrong = d(real[mismatched], text[other][mismatched])
    bce = F.binary_cross_entropy_with_logits
    d_loss = bce(s_real, torch.ones(8)) + 0.5 * (
        bce(s_wrong, torch.zeros_like(s_wrong)) + bce(s_fake, torch.zeros(8))
    )
    assert math.isclose(metrics["d_loss"].item(), d_loss.item(), rel_tol=1e-5)
    assert math.isclose(
        metrics["d_wrong"].item(), torch.sigmoid(s_wrong).mean().item(), rel_tol=1e-5
    )
    assert gan.text_encoder.embed.weight.equal(before.text_encoder.embed.weight)  # phi frozen


def test_without_cls_and_int_d_sees_no_wrong_caption_and_g_one_term(tiny):
    _, vocabulary, tokens = tiny
    plain = _gan(vocabulary, matching_aware=False, interpolation=None)
    calls = []
    plain.discriminator.register_forward_hook(lambda m, i, o: calls.append(len(o)))
    ctx = StepContext.single_process(plain.configure_optimizers(), 1)
    metrics = plain.train_step(tokens.get_batch(torch.arange(8)), ctx)
    assert calls == [8, 8, 8] and "d_wrong" not in metrics  # real, fake (D); fake (G)
    full = _gan(vocabulary)
    calls.clear()
    full.discriminator.register_forward_hook(lambda m, i, o: calls.append(len(o)))
    full.train_step(
        tokens.get_batch(torch.arange(8)),
        StepContext.single_process(full.configure_optimizers(), 1),
    )
    assert len(calls) == 5  # real, fake, wrong (D); fake, interpolated (G)


def test_a_caption_of_unknown_words_is_a_clear_error(tiny):
    gan = _gan(tiny[1])
    with pytest.raises(ConfigError, match="no word of the caption 'zebra crossing'"):
        gan.sample_texts(["zebra crossing"])
    assert gan.sample_texts(["a red 7 zebra"]).shape == (1, 3, 16, 16)  # one known word suffices


def test_the_walk_between_two_captions_starts_and_ends_at_them(tiny):
    gan = _gan(tiny[1]).eval()
    with torch.no_grad():
        walk = gan.interpolation_grid("a red 7", "a blue 3", steps=4)
        ends = gan.generate(gan.fixed_z, gan.encode(["a red 7"]).expand(8, -1))
    assert walk.shape == (32, 3, 16, 16)
    assert torch.allclose(walk[0::4], ends, atol=1e-6)


def test_joint_embedding_loss_is_zero_past_the_margin_and_pulls_matches_together():
    images = torch.eye(3)
    assert joint_embedding_loss(images, images, torch.eye(3, dtype=torch.bool)).item() == 0
    texts = torch.tensor([[0.6, 0.8, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], requires_grad=True)
    loss = joint_embedding_loss(images, texts, torch.eye(3, dtype=torch.bool))
    loss.backward()
    assert loss.item() > 0
    assert texts.grad[0, 0] < 0  # descending raises text 0's score with its own image
    # a caption that describes two images is no negative for either
    matches = torch.tensor([[True, True, False], [True, True, False], [False, False, True]])
    texts = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert (
        joint_embedding_loss(images, texts, matches).item()
        < joint_embedding_loss(images, texts, torch.eye(3, dtype=torch.bool)).item()
    )


def test_the_text_encoder_learns_to_retrieve_held_out_phrasings():
    train = render_captioned_digits(400, size=16, seed=0, captions_per_image=3)
    vocabulary = Vocabulary.from_captions([c for row in train.captions for c in row])
    method = JointEmbedding(vocabulary.words, 16, 3, embed_dim=32, width=8, hidden=32, lr=3e-3)
    tokens = CaptionTokens(train, vocabulary, 24)
    images, ids, stated, shown = tokens.get_batch(torch.arange(64))

    def loss_on_a_fixed_batch() -> float:
        method.eval()
        with torch.no_grad():
            matches = describes(stated[:, 0], shown)
            v, t = method.embed_images(images), method.embed_tokens(ids[:, 0])
            return joint_embedding_loss(v, t, matches).item()

    before = loss_on_a_fixed_batch()
    loader = InfiniteLoader(tokens, 32, seed=0)
    config = TrainerConfig(max_steps=150, log_every=50, progress=False, device="cpu")
    Trainer(method, loader, config).fit()
    assert loss_on_a_fixed_batch() < 0.5 * before
    test = render_captioned_digits(100, size=16, seed=7, phrasing="test")
    method.eval()
    with torch.no_grad():
        texts = method.embed_texts([row[0] for row in test.captions])
        images = method.embed_images(test.images.as_floats()[0])
    assert r_precision(images, texts, test.match_keys(), candidates=20) > 0.25  # chance 0.05
