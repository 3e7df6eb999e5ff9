"""Every TrainingMethod rebuilds from its checkpoint: the same outputs on a fixed input.

The methods are discovered (every ``TrainingMethod`` subclass defined in the package), so
a new one without a case here fails :func:`test_every_method_has_a_round_trip_case`.
"""

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from counterfeit.gan import Trainer, TrainerConfig, TrainingMethod
from counterfeit.gan.checkpoint import load_checkpoint, load_method

SUBPACKAGES = ("gan", "adapt", "robust", "recipes")


def _methods() -> dict[str, type[TrainingMethod]]:
    """Every TrainingMethod subclass defined in counterfeit, by class name."""
    for top in SUBPACKAGES:
        package = importlib.import_module(f"counterfeit.{top}")
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(info.name)
    found, todo = {}, [TrainingMethod]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("counterfeit."):
                found[sub.__name__] = sub
    return found


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _labels(n: int, classes: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, classes, (n,), generator=torch.Generator().manual_seed(seed))


def _digits_net(seed: int) -> nn.Module:
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


def _dann() -> TrainingMethod:
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


def _pixelda() -> TrainingMethod:
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


def _cyclegan() -> TrainingMethod:
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


def _dcgan() -> TrainingMethod:
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


def _caption_batch() -> tuple[torch.Tensor, ...]:
    """Four 16 px images, two captions each (ids (4, 2, 3)), what each states and shows."""
    tokens = torch.randint(2, len(WORDS) + 2, (4, 2, 3), generator=torch.Generator().manual_seed(4))
    shown = torch.tensor([[0], [1], [2], [3]])
    return _rand(4, 3, 16, 16), tokens, shown[:, None, :].expand(-1, 2, -1), shown


def _joint_embedding() -> TrainingMethod:
    from counterfeit.gan.models import JointEmbedding

    return JointEmbedding(
        WORDS, 16, 3, embed_dim=8, width=4, word_dim=6, hidden=5, max_length=3, lr=3e-3
    )


def _text_to_image() -> TrainingMethod:
    from counterfeit.gan.models import TextToImageGAN

    return TextToImageGAN(
        WORDS, ["a blue 3", "a thick red 7"], 16, 3, latent_dim=6, text_dim=8, word_dim=6,
        hidden=5, max_length=3, compressed=4, width=4, interpolation=0.25, ema_decay=0.9, seed=2,
    )  # fmt: skip


def _biggan() -> TrainingMethod:
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


def _progan() -> TrainingMethod:
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


def _counterfeit_detection() -> TrainingMethod:
    from counterfeit.robust.counterfeits import CounterfeitDetection

    return CounterfeitDetection("spectrum", 1, 8, lr=1e-3, augment=0.25, seed=2)


def _infogan() -> TrainingMethod:
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


def _pix2pix() -> TrainingMethod:
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


def _srgan() -> TrainingMethod:
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


def _pose2video() -> TrainingMethod:
    from counterfeit.gan.models.pose2video import Pose2Video

    return Pose2Video(32, width=4, d_width=4, num_d=1, d_layers=1, l1_weight=50.0, norm="batch")


def _pose_batch() -> tuple[torch.Tensor, ...]:
    images = [_rand(2, 3, 32, 32, seed=s) for s in range(4)]
    return (*images, torch.full((2, 2), -1), torch.full((2, 2), -1))


def _advgan() -> TrainingMethod:
    from counterfeit.robust.advgan import AdvGAN

    return AdvGAN(_digits_net(0), eps=0.2, image_size=8, target=3, kappa=0.1, width=4, blocks=1)


def _wgan_gp() -> TrainingMethod:
    from counterfeit.gan.models.dcgan import DCGAN

    return DCGAN(16, 1, 8, 4, loss="wgan-gp", d_norm="layer", ema_decay=None)


def _izi_encoder() -> TrainingMethod:
    from counterfeit.robust.anomaly import IziEncoder

    return IziEncoder(_wgan_gp(), kappa=0.5, lr=1e-3)


def _conv_autoencoder() -> TrainingMethod:
    from counterfeit.robust.anomaly import ConvAutoencoder

    return ConvAutoencoder((1, 8, 8), latent_dim=4, width=4, lr=0.01)


def _ganomaly() -> TrainingMethod:
    from counterfeit.robust.anomaly import GANomalyNet

    return GANomalyNet(16, 1, latent_dim=8, width=4, w_con=10.0)


def _adversarial_training() -> TrainingMethod:
    from counterfeit.robust.training import AdversarialTraining

    return AdversarialTraining(
        _digits_net(0), method="fgsm", eps=0.1, optimizer="sgd", lr=0.05, lr_schedule="constant"
    )


X28, X16, X8 = _rand(3, 1, 28, 28), _rand(3, 3, 16, 16), _rand(3, 1, 8, 8)

CASES: dict[str, Case] = {
    "DANN": Case(
        _dann,
        lambda: (
            (_rand(4, 1, 28, 28), _labels(4, 4)),
            (_rand(4, 1, 28, 28, seed=2), _labels(4, 4)),
        ),
        lambda m: (m(X28), m.last_iterate()(X28)),
        {"num_classes": 4, "input_mean": [0.25], "ema_decay": 0.9},
    ),
    "PixelDA": Case(
        _pixelda,
        lambda: (
            (_rand(4, 1, 16, 16), _labels(4, 4)),
            (_rand(4, 3, 16, 16, seed=2), torch.full((4,), -1)),
        ),
        lambda m: (m(X16), m.translate(X16[:, :1], torch.ones(3, 3) / 2)),
        {"source_shape": [1, 16, 16], "generator_filters": 4, "noise_dims": 3},
    ),
    "CycleGAN": Case(
        _cyclegan,
        lambda: (_rand(2, 3, 16, 16), _rand(2, 3, 16, 16, seed=2)),
        lambda m: (m.translate(X16), m.translate_back(X16), m.semantic(X16)),
        {"discriminator_layers": 2, "semantic_weight": 0.5, "num_classes": 4},
    ),
    "BigGAN": Case(
        _biggan,
        lambda: (_rand(4, 1, 32, 32), _labels(4, 3)),
        lambda m: (
            m.fixed_samples(),
            m.fixed_samples(ema=False),
            m.discriminator(_rand(3, 1, 32, 32, seed=2), _labels(3, 3)),
        ),
        {"num_classes": 3, "attention": 32, "d_steps": 1, "n_fixed": 6},
    ),
    "ProGAN": Case(  # two steps of 4 images: in the middle of the 8 px fade-in
        _progan,
        lambda: _rand(4, 1, 16, 16),
        lambda m: (
            m.fixed_samples(),
            m.fixed_samples(ema=False),
            m.discriminator(_rand(3, 1, 8, 8, seed=2), 1, 0.5),
            m.images_seen,
        ),
        {"fade_images": 4, "stable_images": 4, "n_fixed": 5, "lr": 2e-3},
    ),
    "JointEmbedding": Case(
        _joint_embedding,
        _caption_batch,
        lambda m: (m.embed_texts(["a blue 3", "red 7"]), m.embed_images(X16)),
        {"embed_dim": 8, "max_length": 3, "lr": 3e-3},
    ),
    "TextToImageGAN": Case(
        _text_to_image,
        _caption_batch,
        lambda m: (
            m.fixed_samples(),
            m.fixed_samples(ema=False),
            m.discriminator(X16, m.encode(["a", "blue", "red"])),
        ),
        {"fixed_captions": ["a blue 3", "a thick red 7"], "interpolation": 0.25, "seed": 2},
    ),
    "CounterfeitDetection": Case(
        _counterfeit_detection,
        lambda: (_rand(4, 1, 8, 8), torch.tensor([0, 1, 0, 1])),
        lambda m: (m(_rand(3, 1, 8, 8, seed=2)),),
        {"kind": "spectrum", "image_size": 8, "augment": 0.25, "seed": 2},
    ),
    "DCGAN": Case(
        _dcgan,
        lambda: (_rand(4, 1, 16, 16), _labels(4, 3)),
        lambda m: (
            m.fixed_samples(),
            m.fixed_samples(ema=False),
            m.discriminator(X16[:, :1], _labels(3, 3)),
        ),
        {"latent": "normal", "betas": [0.4, 0.99], "n_fixed": 6},
    ),
    "InfoGAN": Case(
        _infogan,
        lambda: _rand(4, 1, 16, 16),
        lambda m: (
            m.generate(m.fixed_noise, m.fixed_codes, m.fixed_continuous),
            *m.discriminator(X16[:, :1]),
            *m.q_ema.module(X16[:, :1]),
        ),
        {"categorical": [3, 2], "learn_std": True, "q_ema_decay": 0.8},
    ),
    "Pix2Pix": Case(
        _pix2pix,
        lambda: (_rand(2, 1, 16, 16), _rand(2, 2, 16, 16, seed=2)),
        lambda m: (
            m.translate(X16[:, :1]),
            m.discriminator(torch.cat([X16[:, :1], X16[:, :2]], 1)),
        ),
        {"out_channels": 2, "norm": "instance", "d_layers": 1},
    ),
    "SRGAN": Case(
        _srgan,
        lambda: _rand(2, 3, 16, 16),
        lambda m: (m.upscale(X16[:, :, :8, :8]), m.discriminator(X16)),
        {"scale": 2, "bicubic_skip": True, "phase": "gan"},
        lambda: {"content": "mse", "vgg_weights": None},
    ),
    "Pose2Video": Case(
        _pose2video,
        _pose_batch,
        lambda m: (m.frame(_rand(2, 3, 32, 32, seed=7), _rand(2, 3, 32, 32, seed=8)),),
        {"image_size": 32, "num_d": 1, "norm": "batch"},
    ),
    "AdvGAN": Case(
        _advgan,
        lambda: (_rand(4, 1, 8, 8), _labels(4, 10)),
        lambda m: (m.generate(X8), m.discriminator(X8)),
        {"eps": 0.2, "image_size": 8, "target": 3},
        lambda: {"model": _digits_net(0)},
    ),
    "ConvAutoencoder": Case(
        _conv_autoencoder,
        lambda: _rand(4, 1, 8, 8),
        lambda m: (m(X8),),
        {"latent_dim": 4, "width": 4, "lr": 0.01},
    ),
    "GANomalyNet": Case(
        _ganomaly,
        lambda: _rand(4, 1, 16, 16),
        lambda m: (*m(X16[:, :1]), m.discriminator(X16[:, :1])),
        {"image_size": 16, "latent_dim": 8, "width": 4, "w_con": 10.0},
    ),
    "IziEncoder": Case(
        _izi_encoder,
        lambda: _rand(4, 1, 16, 16),
        lambda m: (m.encoder(X16[:, :1]), m.izi_f(X16[:, :1])[0]),
        {"kappa": 0.5, "lr": 1e-3},
        lambda: {"gan": _wgan_gp()},  # other weights: the checkpoint's must win
    ),
    "AdversarialTraining": Case(
        _adversarial_training,
        lambda: (_rand(4, 1, 8, 8), _labels(4, 10)),
        lambda m: (m(X8),),
        {"method": "fgsm", "optimizer": "sgd", "lr_schedule": "constant"},
        lambda: {"model": _digits_net(1)},  # other weights: the checkpoint's must win
    ),
}


class _Repeat:
    """An endless, resumable stream of one batch."""

    def __init__(self, batch: Any) -> None:
        self.batch = batch

    def __next__(self) -> Any:
        return self.batch

    def __len__(self) -> int:
        return 1

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def test_every_method_has_a_round_trip_case():
    assert sorted(_methods()) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_method_rebuilds_from_its_checkpoint(name: str, tmp_path: Path):
    case = CASES[name]
    torch.manual_seed(0)
    method = case.build()
    defaults = inspect.signature(type(method)).parameters
    for key, value in case.non_default.items():
        default = defaults[key].default
        assert (
            method.hparams[key]
            == value
            != (list(default) if isinstance(default, tuple) else default)
        )
    config = TrainerConfig(max_steps=2, progress=False, device="cpu", log_every=1)
    path = tmp_path / f"{name}.ckpt"
    Trainer(method, _Repeat(case.batch()), config, checkpoint_path=path).fit()
    assert load_checkpoint(path)["method_init"] == method.init_args()

    torch.manual_seed(1)  # a fresh process: other initial weights
    rebuilt = load_method(path, {name: type(method)}, f"needs a {name}", case.overrides())
    assert type(rebuilt) is type(method) and not rebuilt.training
    assert rebuilt.init_args() == method.init_args()
    method.eval()
    with torch.no_grad():
        expected, got = case.outputs(method), case.outputs(rebuilt)
    assert len(expected) == len(got)
    for want, have in zip(expected, got):
        assert torch.equal(have, want)


class _Toy(TrainingMethod):
    def __init__(self, shape=(1, 2), *, path=None, net=None, width=None, keep=("net",)):
        super().__init__()
        shape = tuple(int(s) for s in shape)  # normalised before the call: recorded so
        self.save_hyperparameters(ignore=keep, width=width or 8)


def test_save_hyperparameters_records_plain_values_as_bound_at_the_call():
    toy = _Toy([3.0, 4], path=Path("runs") / "a.pt", net=nn.Linear(1, 1))
    assert toy.hparams == {"shape": [3, 4], "path": "runs/a.pt", "width": 8, "keep": ["net"]}
    args = toy.init_args()
    args["shape"].append(5)
    assert toy.hparams["shape"] == [3, 4]  # init_args is a copy
    assert _Toy(**toy.init_args()).hparams == toy.hparams


def test_save_hyperparameters_refuses_objects_unknown_names_and_other_callers():
    with pytest.raises(TypeError, match="argument 'net' is a Linear; pass ignore=\\('net',\\)"):
        _Toy(net=nn.Linear(1, 1), keep=())
    with pytest.raises(TypeError, match=r"_Toy\.__init__ has no parameter model"):
        _Toy(keep=("model",))
    with pytest.raises(TypeError, match=r"call it in __init__"):
        _Toy().save_hyperparameters()
