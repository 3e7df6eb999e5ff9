"""Progressive GAN's training: the growth schedule in images, the real images blended like
G's output during a fade-in, WGAN-GP with the drift term, Adam reset at each phase, and a
resume in the middle of a fade-in that gives the numbers of an uninterrupted run."""

import copy

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from counterfeit.gan import ConfigError, Trainer, TrainerConfig
from counterfeit.gan.callbacks import Callback
from counterfeit.gan.data import ImageTensors, InfiniteLoader
from counterfeit.gan.errors import TrainingInterrupted
from counterfeit.gan.losses import gradient_penalty
from counterfeit.gan.method import StepContext
from counterfeit.gan.models import ProGAN
from counterfeit.gan.models.progan import Phase, growth_phase


def tiny(**kwargs) -> ProGAN:
    torch.manual_seed(0)
    settings = dict(latent_dim=8, fmap_base=32, fmap_max=8, fade_images=8, stable_images=8)
    return ProGAN(16, 1, **(settings | kwargs))


def test_growth_schedule_counts_real_images():
    phases = [growth_phase(seen, 3, 10, 20) for seen in (0, 19, 20, 25, 30, 49, 50, 55, 60, 999)]
    assert phases == [
        Phase(0, 1.0, 0),
        Phase(0, 1.0, 0),
        Phase(1, 0.0, 1),  # 8 px fades in over 10 images
        Phase(1, 0.5, 1),
        Phase(1, 1.0, 2),  # then 20 images at 8 px alone
        Phase(1, 1.0, 2),
        Phase(2, 0.0, 3),
        Phase(2, 0.5, 3),
        Phase(2, 1.0, 4),
        Phase(2, 1.0, 4),  # the top level goes on
    ]
    assert tiny().images_to_full_size == 8 + 2 * 16 and growth_phase(5, 1, 1, 1).size == 4


def test_real_images_fade_between_sizes_like_gs_output():
    model = tiny()
    x = torch.rand(2, 1, 16, 16)
    at_8 = F.avg_pool2d(x * 2 - 1, 2)
    torch.testing.assert_close(model.real_at(x, Phase(1, 1.0, 2)), at_8)
    half = F.interpolate(F.avg_pool2d(at_8, 2), scale_factor=2, mode="nearest")
    torch.testing.assert_close(model.real_at(x, Phase(1, 0.0, 1)), half)
    torch.testing.assert_close(model.real_at(x, Phase(1, 0.5, 1)), (half + at_8) / 2)


def test_d_loss_is_wgan_gp_with_the_drift_term_and_adam_resets_at_each_phase():
    model = tiny(gp_weight=10.0, drift=0.5)
    before = copy.deepcopy(model)
    ctx = StepContext.single_process(model.configure_optimizers(), total_steps=4)
    x = torch.rand(4, 1, 16, 16)
    torch.manual_seed(5)
    metrics = model.train_step(x, ctx)
    torch.manual_seed(5)  # the same z and GP mixing weights, by hand
    g, d = before.generator, before.discriminator
    fake = g(torch.randn(4, 8), 0, 1.0)
    real = F.adaptive_avg_pool2d(x * 2 - 1, 4)
    d_real, d_fake = d(real, 0, 1.0), d(fake, 0, 1.0)
    penalty = gradient_penalty(lambda v: d(v, 0, 1.0), real, fake)
    by_hand = d_fake.mean() - d_real.mean() + 10 * penalty + 0.5 * d_real.pow(2).mean()
    torch.testing.assert_close(metrics["d_loss"], by_hand.detach())
    assert ctx.optimizers["d"].state and int(model.images_seen) == 4
    model.train_step(x, ctx)  # 8 images seen: the 8 px fade-in starts
    assert model.phase() == Phase(1, 0.0, 1)
    model.train_step(x, ctx)  # its first step: Adam's moments start afresh
    assert all(int(s["step"]) == 1 for s in ctx.optimizers["g"].state.values())
    assert float(metrics["level"]) == 0 and int(model.phase_index) == 1


def test_resume_in_the_middle_of_a_fade_in_gives_the_same_numbers(tmp_path):
    class Interrupt(Callback):  # what Ctrl-C does: finish the step, checkpoint, stop
        every = 3  # 12 images seen: halfway into the 8 px fade-in

        def on_step(self, trainer, step):
            trainer._interrupt.set()

    data = ImageTensors(torch.randint(0, 256, (32, 1, 16, 16), dtype=torch.uint8), None, "toy")

    def fit(path, resume=False, callbacks=()):
        model = tiny()
        config = TrainerConfig(max_steps=7, progress=False, checkpoint_every=7, device="cpu")
        loader = InfiniteLoader(data, 4, seed=0)
        Trainer(model, loader, config, checkpoint_path=path, callbacks=callbacks).fit(resume=resume)
        return model

    straight = fit(tmp_path / "straight.ckpt")
    with pytest.raises(TrainingInterrupted):
        fit(tmp_path / "c.ckpt", callbacks=[Interrupt()])
    resumed = fit(tmp_path / "c.ckpt", resume=True)
    assert resumed.phase() == straight.phase() == Phase(2, 0.5, 3)  # crossed two boundaries
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name


def test_a_short_run_grows_to_full_size_and_its_critic_tells_real_from_fake():
    data = load_digits()
    images = F.pad(torch.tensor(data.images).div(16), (4, 4, 4, 4))  # 8 -> 16 px
    pixels = images.mul(255).round().to(torch.uint8).unsqueeze(1)
    loader = InfiniteLoader(ImageTensors(pixels, None, "digits"), 16, seed=0)
    model = tiny(fade_images=160, stable_images=160, lr=2e-3)
    steps = model.images_to_full_size // 16 + 10
    result = Trainer(model, loader, TrainerConfig(max_steps=steps, progress=False)).fit()
    assert model.phase().size == 16 and model.phase().alpha == 1.0
    assert result.last_metrics["wasserstein"] > 0  # D scores real digits above G's
    samples = model.sample(8, torch.Generator().manual_seed(0))
    assert (
        samples.shape == (8, 1, 16, 16) and 0 <= float(samples.min()) <= float(samples.max()) <= 1
    )


def test_clear_errors():
    with pytest.raises(ConfigError, match="fade_images"):
        tiny(fade_images=0)
    model = tiny()
    ctx = StepContext.single_process(model.configure_optimizers(), total_steps=1)
    with pytest.raises(ConfigError, match="built for 16 px images; the data has 28 px"):
        model.train_step(torch.rand(2, 1, 28, 28), ctx)
