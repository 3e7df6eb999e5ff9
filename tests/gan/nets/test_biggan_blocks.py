"""BigGAN's building blocks against hand computations: spectral norm, self-attention,
conditional BatchNorm, the projection head, orthogonal regularisation, truncation."""

import pytest
import torch
from torch import nn

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.models._common import truncated_normal
from counterfeit.gan.nets.attention import SelfAttention
from counterfeit.gan.nets.biggan import BigGANDiscriminator, BigGANGenerator
from counterfeit.gan.nets.conditional import ConditionalBatchNorm2d, ProjectionHead
from counterfeit.gan.nets.spectral import orthogonal_regularization, spectral_norm


def test_spectral_norm_estimate_approaches_the_largest_singular_value():
    torch.manual_seed(0)
    layer = spectral_norm(nn.Linear(20, 30))
    raw = layer.parametrizations.weight.original.detach()
    sigma = torch.linalg.matrix_norm(raw, ord=2)
    estimator = layer.parametrizations.weight[0]
    with torch.no_grad():  # forget the power iterations done at construction
        for vector in (estimator._u, estimator._v):
            vector.copy_(nn.functional.normalize(torch.randn_like(vector), dim=0))
    x = torch.randn(4, 20)
    gaps = []
    for _ in range(30):  # one power iteration per training forward pass
        layer(x)
        gaps.append(float((torch.linalg.matrix_norm(layer.weight.detach(), ord=2) - 1).abs()))
    assert gaps[-1] < 1e-4 and gaps[0] > 1e-2  # the normalised weight's top singular value -> 1
    torch.testing.assert_close(
        raw / layer.weight.detach(), torch.full_like(raw, float(sigma)), rtol=1e-3, atol=0
    )


def test_self_attention_starts_as_identity_and_attends_over_pooled_positions():
    torch.manual_seed(0)
    block = SelfAttention(16, spectral=False)
    x = torch.randn(2, 16, 8, 6)
    torch.testing.assert_close(block(x), x)  # gamma = 0
    beta = block.attention(x)
    assert beta.shape == (2, 48, 12)
    torch.testing.assert_close(beta.sum(-1), torch.ones(2, 48))
    with torch.no_grad():
        block.gamma.fill_(0.5)
    # by hand, for image 0: values pooled 2x2, mixed by beta, projected by the output conv
    values = nn.functional.max_pool2d(block.g(x), 2).flatten(2)[0]  # (8, 12)
    mixed = (values @ beta[0].T).view(1, 8, 8, 6)
    torch.testing.assert_close(block(x)[0], x[0] + 0.5 * block.out(mixed)[0])


def test_conditional_batchnorm_uses_each_samples_gain_and_bias():
    torch.manual_seed(0)
    norm = ConditionalBatchNorm2d(3, 4, spectral=False)
    x, condition = torch.randn(5, 3, 4, 4), torch.randn(5, 4)
    out = norm(x, condition)
    plain = nn.functional.batch_norm(x, None, None, training=True, eps=norm.norm.eps)
    gain = 1 + condition @ norm.gain.weight.T
    bias = condition @ norm.bias.weight.T
    torch.testing.assert_close(out, plain * gain[:, :, None, None] + bias[:, :, None, None])


def test_projection_head_is_psi_plus_the_class_embedding_inner_product():
    torch.manual_seed(0)
    head = ProjectionHead(6, num_classes=10, spectral=False)
    h, y = torch.randn(4, 6), torch.tensor([0, 3, 3, 9])
    by_hand = h @ head.linear.weight[0] + head.linear.bias + (head.embedding.weight[y] * h).sum(1)
    torch.testing.assert_close(head(h, y), by_hand)


def test_orthogonal_regularization_gradient_matches_the_closed_form():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3)
    loss = orthogonal_regularization(conv, beta=1e-4)
    loss.backward()
    w = conv.weight.detach().flatten(1)
    mask = 1 - torch.eye(5)
    expected = 4e-4 * ((w @ w.T) * mask) @ w  # d/dW beta ||W W^T (1 - I)||_F^2
    torch.testing.assert_close(conv.weight.grad.flatten(1), expected)
    assert conv.bias.grad is None  # biases are not regularised
    orthonormal = nn.Linear(4, 4, bias=False)
    nn.init.orthogonal_(orthonormal.weight)
    assert float(orthogonal_regularization(orthonormal).detach()) < 1e-12
    assert float(orthogonal_regularization(conv, exclude=[conv.weight])) == 0


def test_truncation_resamples_values_outside_the_threshold():
    generator = torch.Generator().manual_seed(0)
    z = truncated_normal(2000, 8, threshold=0.5, generator=generator)
    assert z.abs().max() <= 0.5
    # resampled, not clipped: no pile-up at the threshold, and the spread of N(0,1) on [-0.5, 0.5]
    assert float((z.abs() > 0.49).float().mean()) < 0.05
    assert 0.27 < float(z.std()) < 0.30  # sd of a standard normal truncated to [-0.5, 0.5]: 0.287


def test_biggan_nets_shapes_hierarchical_latents_and_projection():
    torch.manual_seed(0)
    g = BigGANGenerator(32, 1, num_classes=10, latent_dim=32, width=4, attention=16)
    d = BigGANDiscriminator(32, 1, num_classes=10, width=4, attention=16)
    z, y = torch.randn(3, 32), torch.tensor([1, 2, 3])
    x = g(z, y).detach()
    assert x.shape == (3, 1, 32, 32) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert g.attention is not None and g.attention.channels == 16
    # every chunk of z reaches the image: the input chunk and one per block (hierarchical)
    for chunk in range(4):
        moved = z.clone()
        moved[:, chunk * 8 : (chunk + 1) * 8] += 1
        assert not torch.allclose(g(moved, y), x), f"z chunk {chunk} changes nothing"
    # the label enters D only through the projection: the logit gap is <e_a - e_b, h>
    h = d.features(x)
    gap = d(x, torch.tensor([4, 4, 4])) - d(x, torch.tensor([7, 7, 7]))
    embedding = d.head.embedding.weight
    torch.testing.assert_close(gap, h @ (embedding[4] - embedding[7]))
    with pytest.raises(ConfigError, match="multiple of 4"):
        BigGANGenerator(32, 1, latent_dim=30)
    with pytest.raises(ConfigError, match="32, 64, 128"):
        BigGANDiscriminator(28, 1)
