"""InfoGAN: the paper's MNIST nets, the latent layout, the MI term, traversals, clustering."""

import math
import statistics

import pytest
import torch
from torch import nn

from counterfeit.gan import ConfigError
from counterfeit.gan.data import DomainSpec, InfiniteLoader, build_domain
from counterfeit.gan.method import StepContext
from counterfeit.gan.models import InfoGAN
from counterfeit.gan.nets import InfoGANDiscriminator, InfoGANGenerator


def test_mnist_nets_shapes_ranges_and_layers():
    torch.manual_seed(0)
    g, d = InfoGANGenerator(74, 28, 1), InfoGANDiscriminator(12, 28, 1)
    images = g(torch.rand(5, 74) * 2 - 1)
    assert images.shape == (5, 1, 28, 28) and images.min() >= 0 and images.max() <= 1
    logit, q = d(images)
    assert logit.shape == (5,) and q.shape == (5, 12)
    # Appendix C.1: G fc1024-fc7x7x128-upconv64-upconv1; D conv64-conv128-fc1024; Q fc128.
    assert [m.out_features for m in g.modules() if isinstance(m, nn.Linear)] == [1024, 7 * 7 * 128]
    assert [m.out_channels for m in g.modules() if isinstance(m, nn.ConvTranspose2d)] == [64, 1]
    assert [m.out_channels for m in d.body.modules() if isinstance(m, nn.Conv2d)] == [64, 128]
    assert [m.out_features for m in d.body.modules() if isinstance(m, nn.Linear)] == [1024]
    assert [m.out_features for m in d.q_head.modules() if isinstance(m, nn.Linear)] == [128, 12]
    assert isinstance(d.body[0][1], nn.Identity)  # no BatchNorm on D's input layer
    slopes = [m.negative_slope for m in d.modules() if isinstance(m, nn.LeakyReLU)]
    assert slopes == [0.1] * 4  # conv64, conv128, fc1024 and Q's fc128: the paper's leak
    authors = InfoGAN(leak=0.01).discriminator  # the authors' code's leak
    assert {m.negative_slope for m in authors.modules() if isinstance(m, nn.LeakyReLU)} == {0.01}
    with pytest.raises(ConfigError, match="multiple of 4"):
        InfoGANGenerator(74, 30)
    with pytest.raises(ConfigError, match=r"\(N, 74\)"):
        g(torch.rand(2, 70))


def test_latent_layout_and_codes():
    model = InfoGAN(categorical=(10, 3), continuous=2, noise_dim=5)
    assert model.latent_features == 5 + 13 + 2
    noise, codes, cont = model.sample_codes(400, torch.Generator().manual_seed(0))
    assert noise.shape == (400, 5) and codes.shape == (400, 2) and cont.shape == (400, 2)
    assert noise.min() >= -1 and noise.max() <= 1 and cont.min() >= -1 and cont.max() <= 1
    assert set(codes[:, 0].tolist()) == set(range(10)) and set(codes[:, 1].tolist()) == {0, 1, 2}
    latent = model.latent(noise, codes, cont)
    assert torch.equal(latent[:, :5], noise) and torch.equal(latent[:, -2:], cont)
    assert torch.equal(latent[:, 5:15].argmax(1), codes[:, 0])
    assert torch.equal(latent[:, 15:18].argmax(1), codes[:, 1])
    assert torch.equal(latent[:, 5:18].sum(1), torch.full((400,), 2.0))


def test_information_loss_is_cross_entropy_plus_gaussian_nll():
    model = InfoGAN(categorical=(4,), continuous=1, info_weight=2.0, continuous_weight=0.5)
    codes, cont = torch.tensor([[1], [3]]), torch.tensor([[0.5], [-0.5]])
    q = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0, 0.5]])
    total, ce, nll = model.information_loss(q, codes, cont)
    assert ce.item() == pytest.approx(math.log(4))  # uniform prediction over 4 categories
    assert nll.item() == pytest.approx((0.0 + 0.5 * 1.0**2) / 2)  # fixed std 1: (c - mu)^2 / 2
    assert total.item() == pytest.approx(2.0 * (math.log(4) + 0.5 * 0.25))
    confident = torch.tensor([[0.0, 20.0, 0.0, 0.0, 0.5], [0.0, 0.0, 0.0, 20.0, -0.5]])
    _, ce, nll = model.information_loss(confident, codes, cont)
    assert ce.item() < 1e-6 and nll.item() == pytest.approx(0.0)


def test_q_shares_the_discriminator_body():
    torch.manual_seed(0)
    model = InfoGAN(image_size=8)
    noise, codes, cont = model.sample_codes(16)
    _, q = model.discriminator(model.generate(noise, codes, cont, ema=False))
    model.information_loss(q, codes, cont)[0].backward()
    body_grads = [p.grad for p in model.discriminator.body.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in body_grads)
    assert all(p.grad is None for p in model.discriminator.d_head.parameters())


def test_mutual_information_loss_falls_on_a_tiny_run():
    """Real 8x8 digits (scikit-learn), the paper's nets at 8 px: 30 steps of batch 32."""
    torch.manual_seed(0)
    data = InfiniteLoader(build_domain(DomainSpec(name="sklearn-digits"), "train", 8, 1), 32)
    model = InfoGAN(image_size=8)
    ctx = StepContext.single_process(model.configure_optimizers(), 30)
    history = []
    for step in range(30):
        ctx.step = step
        history.append({k: float(v) for k, v in model.train_step(next(data), ctx).items()})
    first = statistics.mean(h["mi_loss"] for h in history[:5])
    last = statistics.mean(h["mi_loss"] for h in history[-5:])
    assert last < 0.75 * first, (first, last)
    assert statistics.mean(h["mi_categorical"] for h in history[-5:]) > 0.5  # of log 10 nats
    assert all(math.isfinite(v) for h in history for v in h.values())


def test_traversal_varies_one_code_and_keeps_the_rest():
    torch.manual_seed(0)
    model = InfoGAN(image_size=8, n_fixed=20).eval()
    seen = []
    model.g_ema.module.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    grid = model.traversal("categorical", 0, rows=3)
    assert grid.shape == (30, 1, 8, 8)
    latent = seen[-1].view(3, 10, -1)
    assert torch.equal(latent[:, :, 62:72].argmax(-1), torch.arange(10).expand(3, 10))
    others = torch.cat([latent[:, :, :62], latent[:, :, 72:]], -1)
    assert torch.equal(others, others[:, :1].expand_as(others))  # same noise and c2, c3 per row
    assert not torch.equal(others[0, 0], others[1, 0])  # rows differ
    model.traversal("continuous", 1, rows=2, values=[-1.0, 0.0, 1.0])
    latent = seen[-1].view(2, 3, -1)
    assert torch.equal(latent[:, :, 73], torch.tensor([[-1.0, 0.0, 1.0]] * 2))
    assert torch.equal(latent[:, :, :73], latent[:, :1, :73].expand(2, 3, 73))
    with pytest.raises(ConfigError, match="no code 2"):
        model.traversal("continuous", 2)


def test_predict_categorical_and_bad_configs():
    torch.manual_seed(0)
    model = InfoGAN(image_size=8)
    predicted = model.predict_categorical(torch.rand(7, 1, 8, 8), batch_size=3)
    assert predicted.shape == (7,) and predicted.dtype == torch.long
    assert predicted.min() >= 0 and predicted.max() < 10
    assert model.discriminator.training  # restored after predicting in eval mode
    with pytest.raises(ConfigError, match="g_batch must be 'fresh' or 'reuse'"):
        InfoGAN(g_batch="both")
    with pytest.raises(ConfigError, match="at least one latent code"):
        InfoGAN(categorical=(), continuous=0)
    with pytest.raises(ConfigError, match=">= 2 categories"):
        InfoGAN(categorical=(1,))


def test_q_weight_average_labels_images_and_training_never_reads_it():
    """q_ema_decay keeps avg <- d_t * avg + (1 - d_t) * w of D and Q after each step;
    predict_categorical labels with it (average=False: the live nets), and the live
    weights train exactly as a twin's without it."""
    torch.manual_seed(0)
    model = InfoGAN(image_size=8, lr_d=0.05, ema_decay=None, q_ema_decay=0.9)
    torch.manual_seed(0)
    twin = InfoGAN(image_size=8, lr_d=0.05, ema_decay=None)
    expected = [p.detach().clone() for p in model.discriminator.parameters()]
    contexts = [StepContext.single_process(m.configure_optimizers(), 1) for m in (model, twin)]
    for t in range(4):
        real = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(t))
        for m, ctx in zip((model, twin), contexts):
            torch.manual_seed(100 + t)
            m.train_step((real, torch.full((16,), -1)), ctx)
        decay = min(0.9, (1 + t) / (10 + t))
        live = [p.detach() for p in model.discriminator.parameters()]
        expected = [decay * a + (1 - decay) * w for a, w in zip(expected, live)]
    trained = {k: v for k, v in model.state_dict().items() if not k.startswith("q_ema.")}
    assert trained.keys() == twin.state_dict().keys()
    for name, theirs in twin.state_dict().items():
        assert torch.equal(trained[name], theirs), name
    for got, want in zip(model.q_ema.module.parameters(), expected, strict=True):
        assert torch.allclose(got, want, atol=1e-6)
    images = torch.rand(64, 1, 8, 8)
    live = model.predict_categorical(images, average=False)
    other = int(live[0] + 1) % 10
    with torch.no_grad():  # make the average's Q answer `other` for everything
        model.q_ema.module.q_head[-1].bias[:10] = 1e6 * torch.eye(10)[other]
    assert model.predict_categorical(images).eq(other).all()
    assert torch.equal(model.predict_categorical(images, average=False), live)
    assert not any(p.requires_grad for p in model.q_ema.parameters())


@pytest.mark.parametrize("g_batch", ["fresh", "reuse"])
def test_one_step_matches_a_hand_written_reference(g_batch):
    """A D/Q step on one draw of (z, c), then a G step on a new draw (the authors' trainer)
    or on the same one."""
    import copy

    from counterfeit.gan.losses import minimax_d, non_saturating_g

    torch.manual_seed(0)
    model = InfoGAN(image_size=8, ema_decay=None, g_batch=g_batch)
    reference = copy.deepcopy(model)
    real = torch.rand(16, 1, 8, 8)
    ctx = StepContext.single_process(model.configure_optimizers(), 1)
    torch.manual_seed(1)
    model.train_step((real, torch.full((16,), -1)), ctx)

    g, d = reference.generator, reference.discriminator
    opts = reference.configure_optimizers()
    torch.manual_seed(1)
    noise, codes, cont = reference.sample_codes(16)
    fake = g(reference.latent(noise, codes, cont))
    d_real, _ = d(real)  # real first: the order BatchNorm's running statistics see
    d_fake, q_fake = d(fake.detach())
    loss_d = minimax_d(d_real, d_fake) + reference.information_loss(q_fake, codes, cont)[0]
    opts["d"].zero_grad()
    loss_d.backward()
    opts["d"].step()
    if g_batch == "fresh":
        noise, codes, cont = reference.sample_codes(16)
        fake = g(reference.latent(noise, codes, cont))
    d_fake, q_fake = d(fake)
    loss_g = non_saturating_g(d_fake) + reference.information_loss(q_fake, codes, cont)[0]
    opts["g"].zero_grad()
    loss_g.backward()
    opts["g"].step()

    for (name, ours), theirs in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.allclose(ours, theirs, atol=1e-6), name
