"""Small, non-default instances of every TrainingMethod, and the batches they train on, for
the checkpoint round trip (:mod:`tests.gan.test_method_roundtrip`)."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from counterfeit.gan import TrainingMethod


def rand_images(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def rand_labels(n: int, classes: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, classes, (n,), generator=torch.Generator().manual_seed(seed))


def digits_net(seed: int) -> nn.Module:
    """A small 8x8 grey-image classifier (the attacked or trained model)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10))


@dataclass
class Case:
    """How to build a method with small, non-default arguments, train it, and read it."""

    build: Callable[[], TrainingMethod]
    batch: Callable[[], Any]
    outputs: Callable[[Any], tuple[torch.Tensor, ...]]
    non_default: dict[str, Any]
    overrides: Callable[[], dict[str, Any]] = field(default=dict)


def make_dann() -> TrainingMethod:
    from counterfeit.adapt import DANN

    return DANN(
        (1, 28, 28),
        4,
        input_mean=(0.25,),
        lr=0.02,
        lr_schedule="constant",
        lambda_max=0.5,
        domain_weight=0.5,
        ema_decay=0.9,
    )


def make_pixelda() -> TrainingMethod:
    from counterfeit.adapt import PixelDA

    return PixelDA(
        (1, 16, 16),
        (3, 16, 16),
        4,
        preset="small",
        generator_filters=4,
        generator_blocks=1,
        discriminator_filters=4,
        noise_dims=3,
        content_weight=0.5,
        lr_decay_every=7,
    )


def make_cyclegan() -> TrainingMethod:
    from counterfeit.gan.models.cyclegan import CycleGAN, digits_classifier

    torch.manual_seed(5)
    return CycleGAN(
        (3, 16, 16),
        (3, 16, 16),
        preset="small",
        generator_width=4,
        generator_blocks=1,
        discriminator_width=4,
        discriminator_layers=2,
        pool_size=2,
        decay_start=1,
        semantic_weight=0.5,
        semantic_classifier=digits_classifier((3, 16, 16), 4),
        num_classes=4,
    )


def make_dcgan() -> TrainingMethod:
    from counterfeit.gan.models import DCGAN

    return DCGAN(
        16,
        1,
        latent_dim=8,
        width=4,
        num_classes=3,
        loss="least-squares",
        d_norm="layer",
        latent="normal",
        betas=(0.4, 0.99),
        ema_decay=0.9,
        n_fixed=6,
        seed=3,
    )


WORDS = ["a", "blue", "red", "3", "7", "thick"]


def caption_batch() -> tuple[torch.Tensor, ...]:
    """Four 16 px images, two captions each (ids (4, 2, 3)), what each states and shows."""
    tokens = torch.randint(2, len(WORDS) + 2, (4, 2, 3), generator=torch.Generator().manual_seed(4))
    shown = torch.tensor([[0], [1], [2], [3]])
    return rand_images(4, 3, 16, 16), tokens, shown[:, None, :].expand(-1, 2, -1), shown


def make_joint_embedding() -> TrainingMethod:
    from counterfeit.gan.models import JointEmbedding

    return JointEmbedding(
        WORDS, 16, 3, embed_dim=8, width=4, word_dim=6, hidden=5, max_length=3, lr=3e-3
    )


def make_text_to_image() -> TrainingMethod:
    from counterfeit.gan.models import TextToImageGAN

    return TextToImageGAN(
        WORDS, ["a blue 3", "a thick red 7"], 16, 3, latent_dim=6, text_dim=8, word_dim=6,
        hidden=5, max_length=3, compressed=4, width=4, interpolation=0.25, ema_decay=0.9, seed=2,
    )  # fmt: skip


def make_biggan() -> TrainingMethod:
    from counterfeit.gan.models import BigGAN

    return BigGAN(
        32,
        1,
        num_classes=3,
        latent_dim=16,
        width=2,
        shared_dim=4,
        attention=32,
        g_lr=1e-4,
        d_steps=1,
        ema_decay=0.9,
        n_fixed=6,
        seed=3,
    )


def make_progan() -> TrainingMethod:
    from counterfeit.gan.models import ProGAN

    return ProGAN(
        16,
        1,
        latent_dim=8,
        fmap_base=16,
        fmap_max=4,
        fade_images=4,
        stable_images=4,
        lr=2e-3,
        ema_decay=0.9,
        n_fixed=5,
        seed=3,
    )


def make_counterfeit_detection() -> TrainingMethod:
    from counterfeit.robust.counterfeits import CounterfeitDetection

    return CounterfeitDetection("spectrum", 1, 8, lr=1e-3, augment=0.25, seed=2)


def make_infogan() -> TrainingMethod:
    from counterfeit.gan.models import InfoGAN

    return InfoGAN(
        16,
        1,
        noise_dim=4,
        categorical=(3, 2),
        continuous=1,
        learn_std=True,
        g_batch="fresh",
        ema_decay=0.9,
        q_ema_decay=0.8,
        n_fixed=6,
        seed=2,
    )


def make_pix2pix() -> TrainingMethod:
    from counterfeit.gan.models import Pix2Pix

    return Pix2Pix(
        16,
        1,
        2,
        g_width=4,
        d_width=4,
        norm="instance",
        dropout=0.0,
        d_layers=1,
        lambda_l1=50.0,
        gan_loss="least-squares",
        decay_fraction=0.5,
    )


def make_srgan() -> TrainingMethod:
    from counterfeit.gan.models import SRGAN

    method = SRGAN(
        scale=2,
        blocks=1,
        width=4,
        bicubic_skip=True,
        crop_size=16,
        d_width=4,
        lr=2e-4,
        adv_weight=1e-2,
        lr_decay_at=None,
    )
    method.set_phase("gan")
    return method


def make_pose2video() -> TrainingMethod:
    from counterfeit.gan.models.pose2video import Pose2Video

    return Pose2Video(32, width=4, d_width=4, num_d=1, d_layers=1, l1_weight=50.0, norm="batch")


def pose_batch() -> tuple[torch.Tensor, ...]:
    images = [rand_images(2, 3, 32, 32, seed=s) for s in range(4)]
    return (*images, torch.full((2, 2), -1), torch.full((2, 2), -1))


def make_advgan() -> TrainingMethod:
    from counterfeit.robust.advgan import AdvGAN

    return AdvGAN(digits_net(0), eps=0.2, image_size=8, target=3, kappa=0.1, width=4, blocks=1)


def make_wgan_gp() -> TrainingMethod:
    from counterfeit.gan.models.dcgan import DCGAN

    return DCGAN(16, 1, 8, 4, loss="wgan-gp", d_norm="layer", ema_decay=None)


def make_izi_encoder() -> TrainingMethod:
    from counterfeit.robust.anomaly import IziEncoder

    return IziEncoder(make_wgan_gp(), kappa=0.5, lr=1e-3)


def make_conv_autoencoder() -> TrainingMethod:
    from counterfeit.robust.anomaly import ConvAutoencoder

    return ConvAutoencoder((1, 8, 8), latent_dim=4, width=4, lr=0.01)


def make_ganomaly() -> TrainingMethod:
    from counterfeit.robust.anomaly import GANomalyNet

    return GANomalyNet(16, 1, latent_dim=8, width=4, w_con=10.0)


def make_adversarial_training() -> TrainingMethod:
    from counterfeit.robust.training import AdversarialTraining

    return AdversarialTraining(
        digits_net(0), method="fgsm", eps=0.1, optimizer="sgd", lr=0.05, lr_schedule="constant"
    )


X28, X16, X8 = rand_images(3, 1, 28, 28), rand_images(3, 3, 16, 16), rand_images(3, 1, 8, 8)
