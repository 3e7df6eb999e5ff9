"""SRGAN / SRResNet (Ledig et al. 2017): the paper's layers, the bicubic skip, one step against a
hand-written step, the VGG54 and MSE content losses, learning, resume, the recipe, errors and
`counterfeit upscale`."""

from __future__ import annotations

import copy
import json
import signal

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from counterfeit.gan import Trainer, TrainerConfig
from counterfeit.gan.callbacks import Callback
from counterfeit.gan.checkpoint import load_checkpoint
from counterfeit.gan.data import ImageTensors, InfiniteLoader
from counterfeit.gan.data.photos import (
    TEST_PHOTOS,
    bicubic_upsample,
    downsample,
    photo_crops,
    random_flips,
)
from counterfeit.gan.errors import CheckpointError, ConfigError, DataError, TrainingInterrupted
from counterfeit.gan.method import StepContext
from counterfeit.gan.models.srgan import SRGAN, psnr_ssim_y, rgb_to_y
from counterfeit.gan.nets.srgan import (
    VGG54_LAYERS,
    SRGANDiscriminator,
    SRResNet,
    UpsampleStage,
    build_vgg54_loss,
    find_vgg19_weights,
)
from counterfeit.recipes import load_recipe, run_recipe
from counterfeit.recipes.cli import main
from counterfeit.recipes.tasks.srgan import resolve_content_loss
from counterfeit.recipes.upscale import load_upscaler, read_image, upscale_tensor

TINY = dict(blocks=1, width=8, crop_size=16, d_width=4)
TINY_RECIPE = [
    "train.steps=4",
    "train.batch_size=4",
    "train.log_every=2",
    "train.checkpoint_every=2",
    "train.progress=false",
    "gan.steps=4",
    "model.blocks=1",
    "model.width=8",
    "model.d_width=4",
    "data.crop_size=32",
    "data.train_photos=[chelsea]",
    "data.test_photos=[coffee]",
    "evaluation.samples_every=2",
    "evaluation.sample_crops=2",
    "evaluation.test_crop=64",
    "tracking.enabled=false",
]


@pytest.fixture
def no_hub_weights(tmp_path, monkeypatch):
    """torch hub's cache pointed at an empty folder: no VGG19 weights anywhere."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))


def _hr(n=4, size=16, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# -- networks -------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_generator_upscales_by_its_factor(scale):
    g = SRResNet(blocks=2, width=8, scale=scale)
    assert g(torch.rand(2, 3, 8, 12)).shape == (2, 3, 8 * scale, 12 * scale)
    with pytest.raises(ConfigError, match="power of two"):
        SRResNet(blocks=1, width=8, scale=3)


def test_generator_layers_follow_the_paper():
    g = SRResNet(blocks=16, width=64, scale=4)
    assert g.head[0].kernel_size == (9, 9) and isinstance(g.head[1], nn.PReLU)
    assert g.tail.kernel_size == (9, 9) and g.tail.out_channels == 3
    assert len(g.body) == 16
    block = list(g.body[0].body)
    assert [type(m) for m in block] == [
        nn.Conv2d,
        nn.BatchNorm2d,
        nn.PReLU,
        nn.Conv2d,
        nn.BatchNorm2d,
    ]
    assert isinstance(g.body_out[0], nn.Conv2d) and isinstance(g.body_out[1], nn.BatchNorm2d)
    # Two x2 sub-pixel stages: conv 64 -> 256, PixelShuffle(2), PReLU (Shi et al. 2016).
    stages = [m for m in g.upsample if isinstance(m, UpsampleStage)]
    assert len(stages) == 2
    for stage in stages:
        assert (stage.conv.in_channels, stage.conv.out_channels) == (64, 256)
        assert stage.shuffle.upscale_factor == 2 and isinstance(stage.act, nn.PReLU)
    x = torch.rand(1, 64, 5, 7)
    assert stages[0](x).shape == (1, 64, 10, 14)
    # The long skip: with the residual body zeroed out, the trunk passes the head's features.
    assert not g.bicubic_skip and g.tail.weight.abs().sum() > 0


def test_discriminator_follows_the_paper():
    d = SRGANDiscriminator(96)
    convs = [m for m in d.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2] * 4 and all(
        c.kernel_size == (3, 3) for c in convs
    )
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.features) == 7
    assert isinstance(d.features[1], nn.LeakyReLU) and d.features[1].negative_slope == 0.2
    dense = [m for m in d.classifier if isinstance(m, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in dense] == [
        (512 * 6 * 6, 1024),
        (1024, 1),
    ]
    small = SRGANDiscriminator(16, width=4)
    assert small(torch.rand(3, 3, 16, 16)).shape == (3,)
    with pytest.raises(ConfigError, match="16 px"):
        small(torch.rand(3, 3, 32, 32))
    with pytest.raises(ConfigError, match="multiple of 16"):
        SRGANDiscriminator(40)


def test_bicubic_skip_makes_the_untrained_generator_bicubic():
    torch.manual_seed(0)
    g = SRResNet(blocks=2, width=8, scale=4, bicubic_skip=True)
    lr = torch.rand(2, 3, 6, 5)
    expected = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False)
    torch.testing.assert_close(g(lr), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(g(lr).clamp(0, 1), bicubic_upsample(lr, 4), atol=1e-6, rtol=0)
    plain = SRResNet(blocks=2, width=8, scale=4)
    assert (plain(lr) - expected).abs().max() > 1e-3


# -- one step against a hand-written step ------------------------------------------------


def test_mse_step_equals_a_hand_written_step():
    torch.manual_seed(0)
    method = SRGAN(**TINY, lr=1e-3)
    reference = copy.deepcopy(method.generator)
    hr = _hr()
    ctx = StepContext.single_process(method.configure_optimizers(), 10)
    metrics = method.train_step((hr, torch.zeros(4)), ctx)

    opt = torch.optim.Adam(reference.parameters(), lr=1e-3, betas=(0.9, 0.999))
    lr = F.interpolate(hr, size=(4, 4), mode="bicubic", align_corners=False, antialias=True)
    lr = (lr.clamp(0, 1) * 255).round() / 255
    loss = F.mse_loss(reference.forward_signed(lr), hr * 2 - 1)  # the paper's [-1, 1] HR scale
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.allclose(metrics["mse"], loss.detach())
    for a, b in zip(method.generator.state_dict().values(), reference.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_gan_step_equals_a_hand_written_step():
    torch.manual_seed(0)
    method = SRGAN(**TINY, phase="gan", lr=1e-3, gan_lr=5e-4, adv_weight=1e-3)
    g, d = copy.deepcopy(method.generator), copy.deepcopy(method.discriminator)
    hr = _hr()
    ctx = StepContext.single_process(method.configure_optimizers(), 10)
    metrics = method.train_step((hr, torch.zeros(4)), ctx)

    opt_g = torch.optim.Adam(g.parameters(), lr=5e-4, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=5e-4, betas=(0.9, 0.999))
    lr = downsample(hr, 4)
    signed = g.forward_signed(lr)  # the [-1, 1] HR estimate; the image in [0, 1] is (y + 1) / 2
    sr = (signed + 1) / 2
    # D: -log D(HR) - log(1 - D(G(LR))) (Eq. 2); G: content + 1e-3 * -log D(G(LR)) (Eqs. 3, 6).
    d_loss = (
        -torch.log(torch.sigmoid(d(hr))).mean()
        - torch.log(1 - torch.sigmoid(d(sr.detach()))).mean()
    )
    opt_d.zero_grad()
    d_loss.backward()
    d_grads = [p.grad.clone() for p in d.parameters()]
    opt_d.step()
    g_loss = F.mse_loss(signed, hr * 2 - 1) - 1e-3 * torch.log(torch.sigmoid(d(sr))).mean()
    opt_g.zero_grad()
    g_loss.backward()
    g_grads = [p.grad.clone() for p in g.parameters()]
    opt_g.step()
    torch.testing.assert_close(metrics["d_loss"], d_loss.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(metrics["g_loss"], g_loss.detach(), atol=1e-5, rtol=1e-5)
    # Adam's first step is lr * g / (|g| + 1e-8): about lr * sign(g). Where a gradient is
    # rounding noise (a conv bias before BatchNorm is exactly zero in exact arithmetic; the
    # summation order changes with the thread count), its sign, and so the step, is arbitrary.
    for mine, theirs, grads in (
        (method.generator, g, g_grads),
        (method.discriminator, d, d_grads),
    ):
        scale = max(float(grad.abs().max()) for grad in grads)
        for (name, a), b, grad in zip(
            mine.named_parameters(), theirs.parameters(), grads, strict=True
        ):
            noise = grad.abs() < 1e-5 * scale
            assert torch.all((a - b)[noise].abs() <= 2 * 5e-4), name
            torch.testing.assert_close(a[~noise], b[~noise], atol=1e-6, rtol=1e-5, msg=name)
        for (name, a), b in zip(mine.named_buffers(), theirs.buffers(), strict=True):
            if name.endswith("running_mean"):  # means over channels of those noisy biases
                assert (a - b).abs().max() <= 2 * 5e-4, name
            else:
                torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)


def test_gan_phase_halves_nothing_until_the_decay_point():
    method = SRGAN(**TINY, phase="gan", gan_lr=1e-4, lr_decay_at=0.5)
    optimizers = method.configure_optimizers()
    schedulers = method.configure_schedulers(optimizers, 10)
    lrs = []
    for _ in range(10):
        lrs.append(optimizers["g"].param_groups[0]["lr"])
        for opt in optimizers.values():
            opt.step()  # no gradients: changes nothing, keeps the optimizer-then-scheduler order
        for s in schedulers.values():
            s.step()
    assert lrs[:5] == [1e-4] * 5 and all(abs(v - 1e-5) < 1e-12 for v in lrs[5:])
    assert method.configure_schedulers({"g": optimizers["g"]}, 10) != {}
    method.set_phase("mse")
    assert set(method.configure_optimizers()) == {"g"}


# -- content losses ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """Random VGG19 weights up to conv5_4, saved as 'features.N.*' keys in fp16 (40 MB, not 550)."""
    from torchvision.models.vgg import cfgs, make_layers

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in make_layers(cfgs["E"])[:VGG54_LAYERS].state_dict().items()}
    g = torch.Generator().manual_seed(0)
    state = {
        f"features.{k}": (
            torch.randn(shape, generator=g) * (0.05 if len(shape) > 1 else 0.01)
        ).half()
        for k, shape in shapes.items()
    }
    path = tmp_path_factory.mktemp("vgg") / "vgg19-features.pth"
    torch.save(state, path)
    return path, state


def test_vgg54_content_loss_from_local_weights(vgg_file, tmp_path, monkeypatch):
    from torchvision.models.vgg import cfgs, make_layers

    path, state = vgg_file
    loss = build_vgg54_loss(path)
    features = make_layers(cfgs["E"])[:VGG54_LAYERS]
    features.load_state_dict({k[len("features.") :]: v.float() for k, v in state.items()})
    assert len(loss.features) == 36 and not any(p.requires_grad for p in loss.features.parameters())
    sr, hr = _hr(2, 16, 1), _hr(2, 16, 2)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    features.eval()
    expected = F.mse_loss(features((sr - mean) / std), features((hr - mean) / std)) / 12.75**2
    torch.testing.assert_close(loss(sr, hr), expected)
    # The recipe picks VGG54 for an explicit file and for torch hub's cached file.
    from counterfeit.recipes.tasks.srgan import SRGANPhase

    assert resolve_content_loss(SRGANPhase(vgg_weights=path)) == ("vgg54", str(path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth").symlink_to(path)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert find_vgg19_weights() == tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert resolve_content_loss(SRGANPhase())[0] == "vgg54"
    # A GAN step with it: the content metric is the VGG loss, and VGG stays out of checkpoints.
    torch.manual_seed(0)
    method = SRGAN(**TINY, phase="gan", content="vgg54", vgg_weights=str(path))
    ctx = StepContext.single_process(method.configure_optimizers(), 10)
    metrics = method.train_step((_hr(), torch.zeros(4)), ctx)
    assert metrics["content"] > 0 and "VGG54" in method.content_loss_name
    assert set(method.state_dict()) == set(SRGAN(**TINY).state_dict())


def test_vgg_weights_errors(tmp_path, no_hub_weights):
    with pytest.raises(ConfigError, match="VGG19 weights not found"):
        find_vgg19_weights(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, bad)
    with pytest.raises(CheckpointError, match="not a torchvision VGG19"):
        build_vgg54_loss(bad)
    with pytest.raises(ConfigError, match="needs local VGG19 weights"):
        SRGAN(**TINY, content="vgg54")


def test_mse_fallback_without_vgg_weights_and_the_summary_says_so(tmp_path, no_hub_weights):
    from counterfeit.recipes.tasks.srgan import SRGANPhase

    assert find_vgg19_weights() is None
    assert resolve_content_loss(SRGANPhase()) == ("mse", None)
    with pytest.raises(ConfigError, match="content_loss is vgg54"):
        resolve_content_loss(SRGANPhase(content_loss="vgg54"))
    summary = run_recipe(load_recipe("photos-srgan", TINY_RECIPE), out=tmp_path / "run")
    assert summary["content_loss"].startswith("pixel MSE")
    assert summary["preset"] == "small"
    assert {"bicubic/psnr", "srresnet/psnr", "srgan/psnr", "srgan/ssim"} <= set(summary["metrics"])
    out = tmp_path / "run"
    assert (out / "plots" / "coffee_srgan.png").is_file()
    assert (out / "plots" / "coffee_srresnet.png").is_file()
    assert Image.open(out / "plots" / "coffee_srgan.png").size == (64, 64)
    assert sorted(p.name for p in (out / "samples").glob("srgan_samples_*.png")) == [
        "srgan_samples_step000002.png",
        "srgan_samples_step000004.png",
    ]
    ckpt = load_checkpoint(out / "checkpoints" / "srgan.ckpt")
    assert set(ckpt["optimizers"]) == {"g", "d"} and set(ckpt["schedulers"]) == {"g", "d"}
    # Resuming a finished run trains nothing and reports the same numbers.
    again = run_recipe(load_recipe("photos-srgan", TINY_RECIPE), out=out, resume=True)
    assert again["metrics"] == summary["metrics"]


def test_srgan_phase_continues_a_finished_srresnet_run(tmp_path, no_hub_weights):
    """The benchmark's path: SRResNet alone, then --resume with SRGAN steps, equals one run."""
    straight = run_recipe(load_recipe("photos-srgan", TINY_RECIPE), out=tmp_path / "a")
    first = run_recipe(
        load_recipe("photos-srgan", [*TINY_RECIPE, "gan.steps=0"]), out=tmp_path / "b"
    )
    assert "srgan" not in first["scores"] and first["content_loss"].startswith("n/a")
    resumed = run_recipe(
        load_recipe("photos-srgan", TINY_RECIPE),
        out=tmp_path / "b",
        resume=True,
        allow_recipe_changes=True,  # gan.steps 0 -> 4: the SRGAN phase extends the run
    )
    assert resumed["phases"]["srgan"]["steps"] == 4
    assert resumed["metrics"] == straight["metrics"]


# -- learning, resume ---------------------------------------------------------------------


def _crops():
    return photo_crops(["chelsea"], 32, stride=32)


def test_a_tiny_run_lowers_its_loss_and_beats_the_untrained_model():
    crops = _crops()
    torch.manual_seed(0)
    method = SRGAN(blocks=2, width=16, crop_size=32, d_width=4, lr=2e-3)
    data = InfiniteLoader(crops, 16, seed=0, transform=random_flips)
    config = TrainerConfig(max_steps=60, progress=False, log_every=10, checkpoint_every=None)
    hr = crops.get_batch(torch.arange(32))[0]
    lr = downsample(hr, 4)
    with torch.no_grad():
        method.eval()
        before = F.mse_loss(method.generator(lr), hr).item()
        psnr_before, _ = psnr_ssim_y(method.generator(lr), hr)
    Trainer(method, data, config).fit()
    method.cpu().eval()  # trained on CUDA when present
    with torch.no_grad():
        after = F.mse_loss(method.generator(lr), hr).item()
        psnr_after, _ = psnr_ssim_y(method.upscale(lr), hr)
    assert after < 0.5 * before
    assert psnr_after > psnr_before + 3


class _InterruptAt(Callback):
    def __init__(self, step: int) -> None:
        self.every = step

    def on_step(self, trainer, step):
        signal.raise_signal(signal.SIGINT)


def test_gan_phase_resume_equals_uninterrupted(tmp_path):
    images = _crops().images[:24, :, :16, :16].contiguous()
    crops = ImageTensors(images, None, "toy")

    def data():
        return InfiniteLoader(crops, 4, seed=0, transform=random_flips)

    config = TrainerConfig(max_steps=6, progress=False, log_every=2, checkpoint_every=None, seed=3)
    torch.manual_seed(0)
    straight = SRGAN(**TINY, phase="gan", lr_decay_at=0.5)
    Trainer(straight, data(), config, checkpoint_path=tmp_path / "a.ckpt").fit()

    torch.manual_seed(0)
    first = SRGAN(**TINY, phase="gan", lr_decay_at=0.5)
    with pytest.raises(TrainingInterrupted):
        Trainer(
            first, data(), config, callbacks=[_InterruptAt(4)], checkpoint_path=tmp_path / "b.ckpt"
        ).fit()
    assert load_checkpoint(tmp_path / "b.ckpt")["step"] == 4

    torch.manual_seed(42)  # a fresh process: other weights, other RNG state
    resumed = SRGAN(**TINY, phase="gan", lr_decay_at=0.5)
    result = Trainer(resumed, data(), config, checkpoint_path=tmp_path / "b.ckpt").fit(resume=True)
    assert result.resumed_from == 4
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name, atol=0, rtol=0)


# -- metrics and errors ---------------------------------------------------------------


def test_y_channel_psnr_follows_the_protocol():
    white, black = torch.ones(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)
    assert torch.allclose(rgb_to_y(white), torch.full((1, 1, 8, 8), 235.0))
    assert torch.allclose(rgb_to_y(black), torch.full((1, 1, 8, 8), 16.0))
    hr = _hr(1, 32)
    noisy = hr.clone()
    noisy[..., :4, :] = 1 - noisy[..., :4, :]  # damage only the border
    psnr, ssim = psnr_ssim_y(noisy, hr, border=4)
    assert psnr > 90 and ssim > 0.999  # the cropped border does not count
    assert psnr_ssim_y(noisy, hr, border=0)[0] < 30


def test_bad_input_is_a_clear_error(tmp_path):
    method = SRGAN(**TINY)
    with pytest.raises(DataError, match=r"RGB images of shape \(N, 3, H, W\)"):
        method.upscale(torch.rand(1, 1, 8, 8))
    with pytest.raises(DataError, match="RGB"):
        upscale_tensor(method, torch.rand(1, 4, 8, 8))
    with pytest.raises(DataError, match="at least 4x4"):
        upscale_tensor(method, torch.rand(1, 3, 2, 8))
    with pytest.raises(DataError, match="divide by the scale"):
        downsample(torch.rand(1, 3, 10, 10), 4)
    with pytest.raises(ConfigError, match="held out for test"):
        photo_crops(["chelsea", TEST_PHOTOS[0]], 32)
    with pytest.raises(ConfigError, match="unknown photo"):
        photo_crops(["lena"], 32)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_upscaler(tmp_path / "nope.ckpt")
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (3, 3)).save(tiny)
    with pytest.raises(DataError, match="at least 4x4"):
        read_image(tiny)
    with pytest.raises(DataError, match="image not found"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(Exception, match="used for both training and test"):
        load_recipe("photos-srgan", ["data.train_photos=[coffee]", "data.test_photos=[coffee]"])


# -- counterfeit upscale ----------------------------------------------------------------


def test_upscale_command_end_to_end(tmp_path, capsys):
    torch.manual_seed(0)
    method = SRGAN(**TINY, bicubic_skip=True)
    crops = ImageTensors(_crops().images[:8, :, :16, :16].contiguous(), None, "toy")
    config = TrainerConfig(max_steps=2, progress=False, log_every=1, checkpoint_every=None)
    ckpt = tmp_path / "srresnet.ckpt"
    Trainer(method, InfiniteLoader(crops, 4, seed=0), config, checkpoint_path=ckpt).fit()
    rgb, grey = tmp_path / "photo.png", tmp_path / "grey.png"
    Image.fromarray((torch.rand(10, 12, 3) * 255).byte().numpy()).save(rgb)
    Image.fromarray((torch.rand(6, 5) * 255).byte().numpy()).save(grey)
    code = main(
        ["upscale", "--checkpoint", str(ckpt), str(rgb), str(grey), "--out", str(tmp_path / "up")]
    )
    assert code == 0
    out = Image.open(tmp_path / "up" / "photo_x4.png")
    assert out.size == (48, 40) and out.mode == "RGB"
    assert Image.open(tmp_path / "up" / "grey_x4.png").size == (20, 24)
    # The output is what the method computes on the same input.
    expected = method.upscale(read_image(rgb))[0]
    got = torch.from_numpy(np.asarray(out).copy()).permute(2, 0, 1).float() / 255
    assert (got - expected).abs().max() <= 0.5 / 255 + 1e-6
    meta = json.loads((tmp_path / "up" / "upscale.json").read_text())
    assert meta["scale"] == 4 and len(meta["written"]) == 2
    # Errors (exit status 2, one clear line): a missing checkpoint, a too-small image.
    assert main(["upscale", "--checkpoint", str(tmp_path / "none.ckpt"), str(rgb)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    small = tmp_path / "small.png"
    Image.new("RGB", (2, 2)).save(small)
    assert (
        main(["upscale", "--checkpoint", str(ckpt), str(small), "--out", str(tmp_path / "x")]) == 2
    )
    assert "at least 4x4" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
