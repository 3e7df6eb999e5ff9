"""BigGAN: two D steps per G step, the hinge loss with G's orthogonal penalty (the shared
embedding left out), truncated sampling, and a short run in which D learns to tell real
digits from G's."""

import pytest
import torch
from sklearn.datasets import load_digits

from counterfeit.gan import ConfigError, Trainer, TrainerConfig
from counterfeit.gan.data import ImageTensors, InfiniteLoader
from counterfeit.gan.method import StepContext
from counterfeit.gan.models import BigGAN
from counterfeit.gan.nets.spectral import orthogonal_regularization


def tiny(**kwargs) -> BigGAN:
    torch.manual_seed(0)
    return BigGAN(32, 1, num_classes=10, latent_dim=16, width=4, shared_dim=8, **kwargs)


def test_g_moves_on_every_second_step_and_its_loss_holds_the_orthogonal_penalty():
    model = tiny()
    ctx = StepContext.single_process(model.configure_optimizers(), total_steps=2)
    batch = (torch.rand(4, 1, 32, 32), torch.tensor([0, 1, 2, 3]))
    g_before = [p.detach().clone() for p in model.generator.parameters()]
    d_before = [p.detach().clone() for p in model.discriminator.parameters()]
    model.train_step(batch, ctx)  # step 0: D only
    assert all(torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(d_before, model.discriminator.parameters()))
    ctx.step = 1
    metrics = model.train_step(batch, ctx)  # step 1: D, then G
    assert not all(torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters()))
    assert float(metrics["g_loss"]) != 0
    logits = torch.randn(5)
    penalty = model.generator_loss(logits) - (-logits.mean())  # hinge G loss: -E[D(G(z))]
    shared = model.generator.shared.weight
    by_hand = orthogonal_regularization(model.generator, 1e-4, exclude=[shared])
    torch.testing.assert_close(penalty, by_hand)
    assert float(by_hand.detach()) < float(orthogonal_regularization(model.generator).detach())


def test_truncated_samples_and_their_classes():
    model = tiny(ema_decay=None).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        images = model.sample(6, torch.tensor([7] * 6), truncation=0.5, generator=generator)
    assert images.shape == (6, 1, 32, 32) and 0 <= float(images.min()) <= float(images.max()) <= 1
    with pytest.raises(ConfigError, match="classes 0-9"):
        model.sample(2, torch.tensor([3, 10]))
    with pytest.raises(ConfigError, match="labelled"):
        model.train_step(
            torch.rand(2, 1, 32, 32), StepContext.single_process(model.configure_optimizers(), 1)
        )


def test_d_learns_to_tell_real_digits_from_gs():
    data = load_digits()
    images = torch.nn.functional.pad(torch.tensor(data.images).div(16), (12, 12, 12, 12))
    pixels = images.mul(255).round().to(torch.uint8).unsqueeze(1)
    loader = InfiniteLoader(ImageTensors(pixels, torch.tensor(data.target), "digits"), 32, seed=0)
    model = tiny()
    real, labels = images[:200].unsqueeze(1).float(), torch.tensor(data.target[:200])

    def gap() -> float:
        with torch.no_grad():
            fake = model.sample(200, labels, generator=torch.Generator().manual_seed(1), ema=False)
            d = model.discriminator
            return float(d(real, labels).mean() - d(fake, labels).mean())

    before = gap()
    Trainer(model, loader, TrainerConfig(max_steps=20, progress=False, log_every=10)).fit()
    assert gap() > before + 0.5, f"D's real - fake logit gap {before:.2f} -> {gap():.2f}"
