"""DCGAN: shapes and ranges at 32 and 64 px, the paper's layers and init, losses and their
optimizers, conditioning, EMA, and checkpoint/resume through the Trainer."""

import pytest
import torch
from torch import nn

from counterfeit.gan import EMA, ConfigError, Trainer, TrainerConfig
from counterfeit.gan.data import ImageTensors, InfiniteLoader
from counterfeit.gan.method import StepContext
from counterfeit.gan.models import DCGAN
from counterfeit.gan.nets import DCGANDiscriminator, DCGANGenerator


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_ranges(size, channels):
    torch.manual_seed(0)
    g = DCGANGenerator(size, channels, latent_dim=100, width=8)
    d = DCGANDiscriminator(size, channels, width=8)
    images = g(torch.randn(5, 100) * 3)
    assert images.shape == (5, channels, size, size)
    assert images.min() >= 0 and images.max() <= 1  # tanh, mapped to [0, 1] at the boundary
    assert d(images).shape == (5,)
    assert d(torch.rand(5, channels, size, size)).shape == (5,)


def test_layers_follow_the_paper():
    g, d = DCGANGenerator(64, 3, width=16), DCGANDiscriminator(64, 3, width=16)
    g_blocks, d_blocks = list(g.net), list(d.net)
    # G: a 4x4 projection then 4 fractionally-strided convs (4 -> 64 px); widths 8w, 4w, 2w, w.
    assert [b[0].out_channels for b in g_blocks] == [128, 64, 32, 16, 3]
    assert all(isinstance(b[0], nn.ConvTranspose2d) for b in g_blocks)
    assert all(isinstance(b[1], nn.BatchNorm2d) for b in g_blocks[:-1])
    assert isinstance(g_blocks[-1][1], nn.Identity) and isinstance(g_blocks[-1][2], nn.Tanh)
    assert all(isinstance(b[2], nn.ReLU) for b in g_blocks[:-1])
    # D: strided convs, no BatchNorm on the input layer, LeakyReLU 0.2, a 4x4 valid conv to 1.
    assert [b[0].stride for b in d_blocks[:-1]] == [(2, 2)] * 4
    assert isinstance(d_blocks[0][1], nn.Identity)
    assert all(isinstance(b[1], nn.BatchNorm2d) for b in d_blocks[1:-1])
    assert all(b[2].negative_slope == 0.2 for b in d_blocks[:-1])
    assert d_blocks[-1].kernel_size == (4, 4) and d_blocks[-1].out_channels == 1
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)) for m in d.modules())
    assert len(DCGANGenerator(32, 1, width=16).net) == 4  # one level fewer at 32 px


def test_init_is_normal_0_002():
    torch.manual_seed(0)
    model = DCGAN(64, 3, width=32)
    convs = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    weights = torch.cat([w.flatten() for w in convs])
    assert abs(weights.mean().item()) < 5e-4
    assert weights.std().item() == pytest.approx(0.02, rel=0.02)
    scales = torch.cat([m.weight for m in model.modules() if isinstance(m, nn.BatchNorm2d)])
    assert scales.mean().item() == pytest.approx(1.0, abs=5e-3)
    assert scales.std().item() == pytest.approx(0.02, rel=0.2)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ConfigError, match="pad"):
        DCGAN(image_size=28)
    with pytest.raises(ConfigError, match=r"shape \(N, 100\)"):
        DCGANGenerator(32, 1, width=8)(torch.randn(2, 64))
    with pytest.raises(ConfigError, match=r"shape \(N, 1, 32, 32\)"):
        DCGANDiscriminator(32, 1, width=8)(torch.rand(2, 1, 28, 28))
    with pytest.raises(ConfigError, match="layer"):
        DCGAN(32, 1, width=8, loss="wgan-gp")  # BatchNorm critic with a gradient penalty
    with pytest.raises(ConfigError, match="unknown GAN loss"):
        DCGAN(32, 1, width=8, loss="wgan")
    model = DCGAN(32, 1, width=8)
    ctx = StepContext.single_process(model.configure_optimizers(), 10)
    with pytest.raises(ConfigError, match="float images"):
        model.train_step((torch.zeros(4, 32, 32), None), ctx)


def test_each_loss_gets_its_papers_optimizer():
    dcgan = DCGAN(32, 1, width=8).configure_optimizers()["d"]
    assert isinstance(dcgan, torch.optim.Adam)
    assert dcgan.defaults["lr"] == 2e-4 and dcgan.defaults["betas"] == (0.5, 0.999)
    wgan = DCGAN(32, 1, width=8, loss="wasserstein")
    assert isinstance(wgan.configure_optimizers()["d"], torch.optim.RMSprop)
    assert (wgan.lr, wgan.n_critic, wgan.clip_value) == (5e-5, 5, 0.01)
    gp = DCGAN(32, 1, width=8, loss="wgan-gp", d_norm="layer")
    assert (gp.lr, gp.betas, gp.n_critic, gp.gp_weight) == (1e-4, (0.0, 0.9), 5, 10.0)
    assert DCGAN(32, 1, width=8, loss="hinge", lr=1e-3).lr == 1e-3


def _steps(model, n, batch=None, start=0):
    ctx = StepContext.single_process(model.configure_optimizers(), n)
    images = torch.rand(8, *batch) if batch else torch.rand(8, 1, 32, 32)
    out = []
    for step in range(start, start + n):
        ctx.step = step
        out.append(model.train_step((images, torch.arange(8) % 10), ctx))
    return out


def test_wgan_clips_the_critic_and_updates_g_every_n_critic_steps():
    torch.manual_seed(0)
    model = DCGAN(32, 1, width=8, loss="wasserstein")
    g_before = [p.detach().clone() for p in model.generator.parameters()]
    metrics = _steps(model, 4)
    assert all(torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters()))
    assert all(p.abs().max() <= 0.01 for p in model.discriminator.parameters())
    ctx = StepContext.single_process(model.configure_optimizers(), 5)
    ctx.step = 4
    metrics.append(model.train_step((torch.rand(8, 1, 32, 32), None), ctx))
    assert not all(torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters()))
    assert metrics[0]["g_loss"] == 0 and metrics[-1]["g_loss"] != 0


def test_wgan_gp_reports_its_penalty():
    torch.manual_seed(0)
    metrics = _steps(DCGAN(32, 1, width=8, loss="wgan-gp", d_norm="layer"), 2)
    assert all(torch.isfinite(m["gp"]) and m["gp"] >= 0 for m in metrics)


def test_sn_dcgan_normalises_every_d_convolution_to_unit_spectral_norm():
    torch.manual_seed(0)
    d = DCGANDiscriminator(32, 1, 8, norm="spectral")
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4 and not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    for _ in range(30):  # the power iteration runs once per training forward pass
        d(torch.rand(4, 1, 32, 32))
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert float(sigma) == pytest.approx(1.0, abs=0.02)
    model = DCGAN(32, 1, width=8, loss="hinge", d_norm="spectral")
    ctx = StepContext.single_process(model.configure_optimizers(), total_steps=1)
    metrics = model.train_step((torch.rand(4, 1, 32, 32), torch.zeros(4)), ctx)
    assert torch.isfinite(metrics["d_loss"]) and torch.isfinite(metrics["g_loss"])


def test_conditional_variant_uses_the_label():
    torch.manual_seed(0)
    model = DCGAN(32, 1, width=8, num_classes=10).eval()
    z = torch.rand(4, 100)
    a = model.generate(z, torch.tensor([0, 1, 2, 3]), ema=False)
    b = model.generate(z, torch.tensor([5, 5, 5, 5]), ema=False)
    assert not torch.allclose(a, b)
    images = torch.rand(4, 1, 32, 32)
    d = model.discriminator
    assert not torch.allclose(
        d(images, torch.tensor([0, 0, 0, 0])), d(images, torch.tensor([7] * 4))
    )
    with pytest.raises(ConfigError, match="labels"):
        d(images)
    ctx = StepContext.single_process(model.configure_optimizers(), 1)
    with pytest.raises(ConfigError, match="labelled data"):
        model.train().train_step((images, torch.full((4,), -1)), ctx)
    grid = model.fixed_samples()
    assert grid.shape == (64, 1, 32, 32)  # classes 0..9 in turn


def test_ema_averages_with_warm_up_and_copies_buffers():
    net = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        net[0].weight.fill_(0.0)
    ema = EMA(net, decay=0.9)
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[1].running_mean.fill_(3.0)
    ema.update(net)  # t = 0: decay min(0.9, 1/10) = 0.1 -> 0.1 * 0 + 0.9 * 1
    assert ema.module[0].weight.item() == pytest.approx(0.9)
    assert ema.module[1].running_mean.item() == 3.0
    ema.update(net)  # t = 1: decay 2/11
    assert ema.module[0].weight.item() == pytest.approx(0.9 * 2 / 11 + 9 / 11)
    ema.train()
    assert not ema.module.training
    assert not any(p.requires_grad for p in ema.parameters())
    with pytest.raises(ConfigError, match="decay"):
        EMA(net, decay=1.0)


def test_samples_and_interpolations():
    torch.manual_seed(0)
    model = DCGAN(32, 1, width=8).eval()
    walk = model.interpolation(rows=3, steps=5)
    assert walk.shape == (15, 1, 32, 32) and walk.min() >= 0 and walk.max() <= 1
    # ends of each row are the fixed samples 2i and 2i+1
    fixed = model.fixed_samples()
    assert torch.allclose(walk[0], fixed[0], atol=1e-6) and torch.allclose(
        walk[4], fixed[1], atol=1e-6
    )
    a = model.sample(6, generator=torch.Generator().manual_seed(1))
    b = model.sample(6, generator=torch.Generator().manual_seed(1))
    assert a.shape == (6, 1, 32, 32) and torch.equal(a, b)


def _data(seed=0):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (48, 1, 32, 32), dtype=torch.uint8, generator=g)
    return InfiniteLoader(ImageTensors(images, None, "toy"), batch_size=8, seed=seed)


def _config(steps):
    return TrainerConfig(max_steps=steps, progress=False, log_every=2, checkpoint_every=3, seed=5)


def test_checkpoint_resume_with_ema_equals_uninterrupted(tmp_path):
    torch.manual_seed(0)
    straight = DCGAN(32, 1, width=8, ema_decay=0.9)
    Trainer(straight, _data(), _config(7), checkpoint_path=tmp_path / "a.ckpt").fit()

    torch.manual_seed(0)
    first = DCGAN(32, 1, width=8, ema_decay=0.9)
    Trainer(first, _data(), _config(3), checkpoint_path=tmp_path / "b.ckpt").fit()

    torch.manual_seed(99)  # a new process: other weights, other RNG state
    resumed = DCGAN(32, 1, width=8, ema_decay=0.9)
    result = Trainer(resumed, _data(), _config(7), checkpoint_path=tmp_path / "b.ckpt").fit(
        resume=True
    )
    assert result.resumed_from == 3
    state, other = straight.state_dict(), resumed.state_dict()
    assert any(k.startswith("g_ema.module.") for k in state)
    assert int(state["g_ema.updates"]) == 7
    for key in state:
        assert torch.equal(state[key], other[key]), key
    # the average is not the last iterate
    assert not torch.equal(state["g_ema.module.net.0.0.weight"], state["generator.net.0.0.weight"])
