"""Every TrainingMethod rebuilds from its checkpoint: the same outputs on a fixed input.

The methods are discovered (every ``TrainingMethod`` subclass defined in the package), so
a new one without a case here fails :func:`test_every_method_has_a_round_trip_case`.
"""

import importlib
import inspect
import pkgutil
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from counterfeit.gan import Trainer, TrainerConfig, TrainingMethod
from counterfeit.gan.checkpoint import load_checkpoint, load_method
from tests.gan.roundtrip_builders import (
    X8,
    X16,
    X28,
    Case,
    caption_batch,
    digits_net,
    make_adversarial_training,
    make_advgan,
    make_biggan,
    make_conv_autoencoder,
    make_counterfeit_detection,
    make_cyclegan,
    make_dann,
    make_dcgan,
    make_ganomaly,
    make_infogan,
    make_izi_encoder,
    make_joint_embedding,
    make_pix2pix,
    make_pixelda,
    make_pose2video,
    make_progan,
    make_srgan,
    make_text_to_image,
    make_wgan_gp,
    pose_batch,
    rand_images,
    rand_labels,
)

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


CASES: dict[str, Case] = {
    "DANN": Case(
        make_dann,
        lambda: (
            (rand_images(4, 1, 28, 28), rand_labels(4, 4)),
            (rand_images(4, 1, 28, 28, seed=2), rand_labels(4, 4)),
        ),
        lambda m: (m(X28), m.last_iterate()(X28)),
        {"num_classes": 4, "input_mean": [0.25], "ema_decay": 0.9},
    ),
    "PixelDA": Case(
        make_pixelda,
        lambda: (
            (rand_images(4, 1, 16, 16), rand_labels(4, 4)),
            (rand_images(4, 3, 16, 16, seed=2), torch.full((4,), -1)),
        ),
        lambda m: (m(X16), m.translate(X16[:, :1], torch.ones(3, 3) / 2)),
        {"source_shape": [1, 16, 16], "generator_filters": 4, "noise_dims": 3},
    ),
    "CycleGAN": Case(
        make_cyclegan,
        lambda: (rand_images(2, 3, 16, 16), rand_images(2, 3, 16, 16, seed=2)),
        lambda m: (m.translate(X16), m.translate_back(X16), m.semantic(X16)),
        {"discriminator_layers": 2, "semantic_weight": 0.5, "num_classes": 4},
    ),
    "BigGAN": Case(
        make_biggan,
        lambda: (rand_images(4, 1, 32, 32), rand_labels(4, 3)),
        lambda m: (
            m.fixed_samples(),
            m.fixed_samples(ema=False),
            m.discriminator(rand_images(3, 1, 32, 32, seed=2), rand_labels(3, 3)),
        ),
        {"num_classes": 3, "attention": 32, "d_steps": 1, "n_fixed": 6},
    ),
    "ProGAN": Case(  # two steps of 4 images: in the middle of the 8 px fade-in
        make_progan,
        lambda: rand_images(4, 1, 16, 16),
        lambda m: (
            m.fixed_samples(),
            m.fixed_samples(ema=False),
            m.discriminator(rand_images(3, 1, 8, 8, seed=2), 1, 0.5),
            m.images_seen,
        ),
        {"fade_images": 4, "stable_images": 4, "n_fixed": 5, "lr": 2e-3},
    ),
    "JointEmbedding": Case(
        make_joint_embedding,
        caption_batch,
        lambda m: (m.embed_texts(["a blue 3", "red 7"]), m.embed_images(X16)),
        {"embed_dim": 8, "max_length": 3, "lr": 3e-3},
    ),
    "TextToImageGAN": Case(
        make_text_to_image,
        caption_batch,
        lambda m: (
            m.fixed_samples(),
            m.fixed_samples(ema=False),
            m.discriminator(X16, m.encode(["a", "blue", "red"])),
        ),
        {"fixed_captions": ["a blue 3", "a thick red 7"], "interpolation": 0.25, "seed": 2},
    ),
    "CounterfeitDetection": Case(
        make_counterfeit_detection,
        lambda: (rand_images(4, 1, 8, 8), torch.tensor([0, 1, 0, 1])),
        lambda m: (m(rand_images(3, 1, 8, 8, seed=2)),),
        {"kind": "spectrum", "image_size": 8, "augment": 0.25, "seed": 2},
    ),
    "DCGAN": Case(
        make_dcgan,
        lambda: (rand_images(4, 1, 16, 16), rand_labels(4, 3)),
        lambda m: (
            m.fixed_samples(),
            m.fixed_samples(ema=False),
            m.discriminator(X16[:, :1], rand_labels(3, 3)),
        ),
        {"latent": "normal", "betas": [0.4, 0.99], "n_fixed": 6},
    ),
    "InfoGAN": Case(
        make_infogan,
        lambda: rand_images(4, 1, 16, 16),
        lambda m: (
            m.generate(m.fixed_noise, m.fixed_codes, m.fixed_continuous),
            *m.discriminator(X16[:, :1]),
            *m.q_ema.module(X16[:, :1]),
        ),
        {"categorical": [3, 2], "learn_std": True, "q_ema_decay": 0.8},
    ),
    "Pix2Pix": Case(
        make_pix2pix,
        lambda: (rand_images(2, 1, 16, 16), rand_images(2, 2, 16, 16, seed=2)),
        lambda m: (
            m.translate(X16[:, :1]),
            m.discriminator(torch.cat([X16[:, :1], X16[:, :2]], 1)),
        ),
        {"out_channels": 2, "norm": "instance", "d_layers": 1},
    ),
    "SRGAN": Case(
        make_srgan,
        lambda: rand_images(2, 3, 16, 16),
        lambda m: (m.upscale(X16[:, :, :8, :8]), m.discriminator(X16)),
        {"scale": 2, "bicubic_skip": True, "phase": "gan"},
        lambda: {"content": "mse", "vgg_weights": None},
    ),
    "Pose2Video": Case(
        make_pose2video,
        pose_batch,
        lambda m: (m.frame(rand_images(2, 3, 32, 32, seed=7), rand_images(2, 3, 32, 32, seed=8)),),
        {"image_size": 32, "num_d": 1, "norm": "batch"},
    ),
    "AdvGAN": Case(
        make_advgan,
        lambda: (rand_images(4, 1, 8, 8), rand_labels(4, 10)),
        lambda m: (m.generate(X8), m.discriminator(X8)),
        {"eps": 0.2, "image_size": 8, "target": 3},
        lambda: {"model": digits_net(0)},
    ),
    "ConvAutoencoder": Case(
        make_conv_autoencoder,
        lambda: rand_images(4, 1, 8, 8),
        lambda m: (m(X8),),
        {"latent_dim": 4, "width": 4, "lr": 0.01},
    ),
    "GANomalyNet": Case(
        make_ganomaly,
        lambda: rand_images(4, 1, 16, 16),
        lambda m: (*m(X16[:, :1]), m.discriminator(X16[:, :1])),
        {"image_size": 16, "latent_dim": 8, "width": 4, "w_con": 10.0},
    ),
    "IziEncoder": Case(
        make_izi_encoder,
        lambda: rand_images(4, 1, 16, 16),
        lambda m: (m.encoder(X16[:, :1]), m.izi_f(X16[:, :1])[0]),
        {"kappa": 0.5, "lr": 1e-3},
        lambda: {"gan": make_wgan_gp()},  # other weights: the checkpoint's must win
    ),
    "AdversarialTraining": Case(
        make_adversarial_training,
        lambda: (rand_images(4, 1, 8, 8), rand_labels(4, 10)),
        lambda m: (m(X8),),
        {"method": "fgsm", "optimizer": "sgd", "lr_schedule": "constant"},
        lambda: {"model": digits_net(1)},  # other weights: the checkpoint's must win
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
