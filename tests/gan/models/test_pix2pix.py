"""pix2pix (Isola et al. 2017): U-Net depth, skips and dropout, the PatchGAN's field, one step
against a hand-written reference, learning, resume, paired data and the recipe end to end."""

import copy
import json
import signal

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from counterfeit.gan import ConfigError, DataError, Trainer, TrainerConfig, TrainingInterrupted
from counterfeit.gan.callbacks import Callback
from counterfeit.gan.data import InfiniteLoader, PairedImages, edges2digits, load_paired_folder
from counterfeit.gan.method import StepContext
from counterfeit.gan.models import Pix2Pix
from counterfeit.gan.models.pix2pix import paired_scores, triplets
from counterfeit.gan.nets import (
    PatchGANDiscriminator,
    UNetGenerator,
    patchgan_layers_for,
    unet_depth_for,
)
from counterfeit.gan.schedules import linear_decay
from counterfeit.recipes import load_recipe, run_recipe
from counterfeit.recipes.cli import main

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def pairs():
    return edges2digits("train").take(512, seed=1), edges2digits("test").take(200, seed=1)


# -- U-Net ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "depth"), [(32, 5), (64, 6), (256, 8)])
def test_unet_shapes_and_depth_per_size(size, depth):
    assert unet_depth_for(size) == depth
    g = UNetGenerator(3, 1, size, width=4)
    assert g.depth == depth and len(g.blocks) == depth
    out = g(torch.randn(2, 3, size, size) * 3)
    assert out.shape == (2, 1, size, size)
    assert out.abs().max() <= 1  # tanh
    # channels: w * min(2^i, 8) per level, the bottleneck is 1x1
    assert [
        b.down[-1 if i in (0, depth - 1) else -2].out_channels for i, b in enumerate(g.blocks)
    ] == [4 * min(2**i, 8) for i in range(depth)]
    bottleneck = {}

    def keep_shape(module, inputs, output):
        bottleneck["shape"] = output.shape

    g.blocks[-1].down.register_forward_hook(keep_shape)
    g(torch.zeros(2, 3, size, size))
    assert bottleneck["shape"][-2:] == (1, 1)


def test_unet_rejects_bad_sizes():
    with pytest.raises(ConfigError, match="power-of-two"):
        UNetGenerator(1, 1, 48)
    g = UNetGenerator(1, 1, 32, width=4)
    with pytest.raises(ConfigError, match=r"\(N, 1, H, W\)"):
        g(torch.zeros(1, 3, 32, 32))


def test_unet_skips_concatenate_encoder_features():
    torch.manual_seed(0)
    g = UNetGenerator(1, 2, 32, width=4).eval()
    blocks = g.blocks
    # the outermost up-conv sees cat(level-0 features, decoded level-1 features): 2 * w channels
    assert blocks[0].up_conv.in_channels == 2 * 4 and blocks[0].up_conv.out_channels == 2
    for level in range(1, g.depth - 1):
        inner = blocks[level].down[-2].out_channels
        assert blocks[level].up_conv.in_channels == 2 * inner
    assert blocks[-1].up_conv.in_channels == blocks[-1].down[-1].out_channels  # no skip inside
    # zero everything the innermost block decodes: the skips alone still carry the input
    blocks[-1].up.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    x1, x2 = torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)
    y1, y2 = g(x1), g(x2)
    assert not torch.allclose(y1, y2)
    # and a block returns cat(input, decoded)
    x = torch.randn(2, 4, 16, 16)
    assert torch.equal(blocks[1](x)[:, :4], x)


def test_dropout_in_the_three_decoder_blocks_above_the_innermost():
    g = UNetGenerator(3, 3, 256, width=4)  # unet_256
    with_dropout = [i for i, b in enumerate(g.blocks) if b.has_dropout]
    assert with_dropout == [4, 5, 6]  # the authors' num_downs - 5 blocks of 8w channels
    assert sum(isinstance(m, nn.Dropout) for m in g.modules()) == 3
    for i in with_dropout:
        up = list(g.blocks[i].up)
        assert isinstance(up[-1], nn.Dropout) and up[-1].p == 0.5  # after the norm
        assert isinstance(up[-2], nn.BatchNorm2d) and g.blocks[i].up_conv.out_channels == 32
    assert [i for i, b in enumerate(UNetGenerator(1, 1, 32, width=4).blocks) if b.has_dropout] == [
        1,
        2,
        3,
    ]
    assert [i for i, b in enumerate(UNetGenerator(1, 1, 16, width=4).blocks) if b.has_dropout] == [
        1,
        2,
    ]
    assert not any(b.has_dropout for b in UNetGenerator(1, 1, 32, width=4, dropout=0).blocks)
    # no normalisation on the outermost and innermost down paths, tanh at the output
    g32 = UNetGenerator(1, 1, 32, width=4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g32.blocks[0].down)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g32.blocks[-1].down)
    assert isinstance(g32.blocks[0].up[-1], nn.Tanh)


def test_patchgan_receptive_field_by_size():
    assert PatchGANDiscriminator(6, 8, n_layers=3).receptive_field == 70
    assert patchgan_layers_for(32) == 1 and patchgan_layers_for(256) == 3
    method = Pix2Pix(32, 1, 1, g_width=4, d_width=4)
    assert method.receptive_field == 16 and method.depth == 5
    assert method.discriminator.in_channels == 2  # cat(A, B)
    assert Pix2Pix(256, 3, 3, g_width=2, d_width=2).receptive_field == 70
    assert Pix2Pix(32, 1, 1, g_width=4, l1_only=True).discriminator is None


# -- one step against a hand-written reference ------------------------------------------------


def test_one_step_equals_a_hand_written_reference():
    torch.manual_seed(0)
    method = Pix2Pix(32, 1, 3, g_width=4, d_width=4)
    g, d = copy.deepcopy(method.generator), copy.deepcopy(method.discriminator)
    a, b = torch.rand(4, 1, 32, 32), torch.rand(4, 3, 32, 32)

    torch.manual_seed(1)
    opts = method.configure_optimizers()
    metrics = method.train_step((a, b), StepContext.single_process(opts, 1))

    # Isola et al. 2017 / the authors' pix2pix_model.optimize_parameters, written out
    torch.manual_seed(1)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    real_a, real_b = a * 2 - 1, b * 2 - 1
    fake_b = g(real_a)
    pred_fake = d(torch.cat([real_a, fake_b.detach()], 1))
    pred_real = d(torch.cat([real_a, real_b], 1))
    loss_d = (
        bce(pred_fake, torch.zeros_like(pred_fake)) + bce(pred_real, torch.ones_like(pred_real))
    ) * 0.5
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    for p in d.parameters():
        p.requires_grad_(False)
    pred = d(torch.cat([real_a, fake_b], 1))
    loss_g_gan = bce(pred, torch.ones_like(pred))
    loss_g = loss_g_gan + 100 * F.l1_loss(fake_b, real_b)
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()

    assert torch.allclose(metrics["d_loss"], loss_d, atol=1e-6)
    assert torch.allclose(metrics["g_loss"], loss_g, atol=1e-5)
    for mine, ref in zip(method.generator.state_dict().values(), g.state_dict().values()):
        assert torch.allclose(mine, ref, atol=1e-6)
    for mine, ref in zip(method.discriminator.state_dict().values(), d.state_dict().values()):
        assert torch.allclose(mine, ref, atol=1e-6)
    assert all(p.requires_grad for p in method.discriminator.parameters())


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step")
def test_linear_decay_schedule_and_init_args():
    method = Pix2Pix(32, 1, 1, g_width=4, d_width=4, decay_fraction=0.5)
    opts = method.configure_optimizers()
    schedulers = method.configure_schedulers(opts, 10)
    lrs = []
    for _ in range(10):
        lrs.append(opts["g"].param_groups[0]["lr"])
        for s in schedulers.values():
            s.step()
    assert lrs[:5] == [2e-4] * 5 and lrs[5] < 2e-4 and lrs[-1] < lrs[5]
    reference = linear_decay(torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=2e-4), 10, 5)
    assert reference.lr_lambdas[0](9) == pytest.approx(lrs[-1] / 2e-4)
    rebuilt = Pix2Pix(**method.init_args())
    assert rebuilt.init_args() == method.init_args()
    assert Pix2Pix(32, 1, 1, g_width=4).configure_schedulers(opts, 10) == {}
    with pytest.raises(ConfigError, match="gradient penalty"):
        Pix2Pix(32, 1, 1, gan_loss="wgan-gp")
    with pytest.raises(ConfigError, match="aligned"):
        method.train_step((torch.rand(2, 1, 32, 32), torch.rand(3, 1, 32, 32)), None)


# -- learning -------------------------------------------------------------------------------


def test_a_tiny_run_lowers_l1_and_beats_trivial_predictors(pairs):
    train, test = pairs
    a, b = test.get_batch(torch.arange(len(test)))
    torch.manual_seed(0)
    method = Pix2Pix(32, 1, 1, g_width=8, d_width=8, lr=1e-3)
    method.eval()
    before = paired_scores(method, a, b)
    config = TrainerConfig(max_steps=150, progress=False, log_every=50, seed=0)
    Trainer(method, InfiniteLoader(train, 16, seed=0), config).fit()
    method.eval()
    after = paired_scores(method, a, b)
    mean_b = train.get_batch(torch.arange(len(train)))[1].mean(0, keepdim=True)
    mean_target = paired_scores(None, a, b, predict=lambda x: mean_b.expand_as(x))
    identity = paired_scores(None, a, b, predict=lambda x: x)
    zeros = paired_scores(None, a, b, predict=torch.zeros_like)
    assert after["l1"] < 0.5 * before["l1"]
    assert after["l1"] < min(mean_target["l1"], identity["l1"], zeros["l1"])
    assert after["ssim"] > mean_target["ssim"]


# -- checkpoints ----------------------------------------------------------------------------


class InterruptAt(Callback):
    def __init__(self, step):
        self.every = step
        self.sent = False

    def on_step(self, trainer, step):
        if not self.sent:
            self.sent = True
            signal.raise_signal(signal.SIGINT)


def test_checkpoint_resume_equals_uninterrupted(tmp_path, pairs):
    train = pairs[0]

    def build():
        return Pix2Pix(32, 1, 1, g_width=4, d_width=4, decay_fraction=0.5)

    def config():
        return TrainerConfig(
            max_steps=6, progress=False, log_every=2, checkpoint_every=None, seed=3
        )

    torch.manual_seed(0)
    straight = build()
    Trainer(straight, InfiniteLoader(train, 8, seed=2), config()).fit()

    torch.manual_seed(0)
    first = build()
    with pytest.raises(TrainingInterrupted):
        Trainer(
            first,
            InfiniteLoader(train, 8, seed=2),
            config(),
            callbacks=[InterruptAt(3)],
            checkpoint_path=tmp_path / "p.ckpt",
        ).fit()

    torch.manual_seed(42)  # a fresh process: other weights and RNG state
    resumed = build()
    result = Trainer(
        resumed, InfiniteLoader(train, 8, seed=2), config(), checkpoint_path=tmp_path / "p.ckpt"
    ).fit(resume=True)
    assert result.resumed_from == 3 and result.steps == 6
    for (key, x), y in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(x, y), key


# -- data -----------------------------------------------------------------------------------


def test_edges2digits_pairs_edges_with_padded_digits():
    train = edges2digits("train")
    test = edges2digits("test", "skeleton")
    assert len(train) == 4000 and len(test) == 1000
    assert train.shape_a == train.shape_b == (1, 32, 32)
    assert set(train.a.unique().tolist()) == {0, 255}  # binary edge maps
    assert train.b[:, :, :2].sum() == 0 and train.b[:, :, :, -2:].sum() == 0  # 2 px padding
    canny = edges2digits("test")
    assert torch.equal(canny.b, test.b) and not torch.equal(canny.a, test.a)
    # the skeleton lies inside the stroke; Canny outlines mostly lie on the stroke border
    assert (test.b[test.a > 0] >= 128).all()
    a, b = train.get_batch(torch.tensor([0, 5]))
    assert a.dtype == torch.float32 and a.shape == (2, 1, 32, 32) and b.max() <= 1
    batch = next(InfiniteLoader(train, 4, seed=0))
    assert isinstance(batch, tuple) and batch[0].shape == batch[1].shape == (4, 1, 32, 32)


def _write(folder, names, size=(20, 12), mode="RGB"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(folder / name)


def test_paired_folder_loads_matching_names(tmp_path):
    _write(tmp_path / "A", ["x.png", "y.png", "z.jpg"])
    _write(tmp_path / "B", ["x.png", "y.jpg", "z.png"], mode="L")
    pairs = load_paired_folder(tmp_path, 16, channels_a=3, channels_b=1)
    assert isinstance(pairs, PairedImages) and len(pairs) == 3
    assert pairs.shape_a == (3, 16, 16) and pairs.shape_b == (1, 16, 16)
    train, test = pairs.split(0.34)
    assert (len(train), len(test)) == (2, 1)
    grid = triplets(pairs.get_batch(torch.arange(2))[0], pairs.get_batch(torch.arange(2))[1])
    assert grid.shape == (4, 3, 16, 16)


def test_paired_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_paired_folder(tmp_path / "missing", 16)
    _write(tmp_path / "A", ["x.png", "y.png", "only_a.png"])
    with pytest.raises(DataError, match=r"no B/ sub-folder"):
        load_paired_folder(tmp_path, 16)
    (tmp_path / "B").mkdir()
    with pytest.raises(DataError, match=r"B holds no images"):
        load_paired_folder(tmp_path, 16)
    _write(tmp_path / "B", ["x.png", "y.png", "only_b.png"])
    with pytest.raises(DataError, match=r"only_a") as info:
        load_paired_folder(tmp_path, 16)
    assert "only_b" in str(info.value) and "without a partner" in str(info.value)
    _write(tmp_path / "C" / "A", ["p.png", "p.jpg"])
    _write(tmp_path / "C" / "B", ["p.png"])
    with pytest.raises(DataError, match="two images named 'p'"):
        load_paired_folder(tmp_path / "C", 16)
    with pytest.raises(DataError, match="same size"):
        PairedImages(
            torch.zeros(2, 1, 8, 8, dtype=torch.uint8),
            torch.zeros(2, 1, 4, 4, dtype=torch.uint8),
            "x",
        )


# -- the recipe -----------------------------------------------------------------------------

TINY = [
    "train.steps=4",
    "train.batch_size=8",
    "train.log_every=2",
    "train.checkpoint_every=2",
    "train.progress=false",
    "model.g_width=4",
    "model.d_width=4",
    "data.n_train=64",
    "data.n_test=40",
    "evaluation.samples_every=2",
    "evaluation.n_grid=4",
    "tracking.enabled=false",
]


def test_recipe_end_to_end_with_resume(tmp_path):
    loaded = load_recipe("edges2digits-pix2pix", TINY)
    assert (loaded.recipe.model.lambda_l1, loaded.recipe.model.lr, loaded.recipe.model.betas) == (
        100.0,
        2e-4,
        (0.5, 0.999),
    )
    out = tmp_path / "run"
    summary = run_recipe(loaded, out=out)
    assert summary["unet_depth"] == 5 and summary["patchgan_receptive_field"] == 16
    assert summary["n_held_out_pairs"] == 40 and summary["batch_size"] == 8
    metrics = summary["metrics"]
    for key in (
        "pix2pix/l1",
        "pix2pix/ssim",
        "l1-unet/l1",
        "l1-unet/ssim",
        "mean_training_target/l1",
    ):
        assert key in metrics and np.isfinite(metrics[key])
    assert (out / "plots" / "test_grid.png").is_file()
    assert (out / "checkpoints" / "pix2pix.ckpt").is_file() and (
        out / "checkpoints" / "l1-unet.ckpt"
    ).is_file()
    samples = sorted(p.name for p in (out / "samples").iterdir())
    assert "pix2pix_step000002.png" in samples and "l1-unet_step000004.png" in samples
    grid = Image.open(out / "plots" / "test_grid.png")
    assert grid.size == (4 * 34 + 2, 4 * 34 + 2)  # input | pix2pix | l1-unet | target, 4 rows
    saved = json.loads((out / "summary.json").read_text())
    assert saved["architecture"]["patchgan_layers"] == 1

    longer = load_recipe("edges2digits-pix2pix", [*TINY, "train.steps=6", "baselines=false"])
    resumed = run_recipe(longer, out=out, resume=True, allow_recipe_changes=True)
    assert (
        resumed["train"]["pix2pix"]["resumed_from"] == 4
        and resumed["train"]["pix2pix"]["steps"] == 6
    )
    assert "l1-unet/l1" not in resumed["metrics"]

    # counterfeit translate rebuilds Pix2Pix from its checkpoint (the PixelDA/CycleGAN path)
    edges = tmp_path / "edges" / "unlabeled"
    edges.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(
            (np.random.default_rng(i).random((32, 32)) > 0.8).astype(np.uint8) * 255
        ).save(edges / f"{i}.png")
    translated = tmp_path / "translated"
    assert main(["translate", "--checkpoint", str(out / "checkpoints" / "pix2pix.ckpt"),
                 "--data", str(edges.parent), "--out", str(translated), "--format", "npz"]) == 0  # fmt: skip
    x = np.load(translated / "adapted.npz")["x_train"]
    assert x.shape == (3, 32, 32) and x.dtype == np.uint8


def test_recipe_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.pad"):
        load_recipe("edges2digits-pix2pix", ["data.pad=3"])
    with pytest.raises(ConfigError, match=r"data\.path"):
        load_recipe("edges2digits-pix2pix", ["data.source=folder"])
    with pytest.raises(ConfigError, match=r"model\.gan_loss"):
        load_recipe("edges2digits-pix2pix", ["model.gan_loss=wgan-gp"])
    loaded = load_recipe(
        "edges2digits-pix2pix",
        [*TINY, "data.source=folder", f"data.path={tmp_path}", "data.image_size=32"],
    )
    with pytest.raises(DataError, match="no A/ sub-folder"):
        run_recipe(loaded, out=tmp_path / "run")
