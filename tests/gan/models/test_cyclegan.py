"""CycleGAN (Zhu et al. 2017): nets, image pool, losses, one step against a hand-written
reference, schedule, training, resume, CyCADA's semantic loss, translate, errors."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.functional import affine

from counterfeit.gan.data import DomainSpec, ImageTensors, InfiniteLoader, ZipLoader, build_domain
from counterfeit.gan.errors import ConfigError
from counterfeit.gan.image_pool import ImagePool
from counterfeit.gan.method import StepContext
from counterfeit.gan.models.cyclegan import CycleGAN
from counterfeit.gan.nets.backbones import digits_classifier
from counterfeit.gan.nets.patchgan import PatchGANDiscriminator
from counterfeit.gan.nets.resnet_generator import ResnetBlock, ResnetGenerator, resnet_blocks_for
from counterfeit.gan.train import Trainer, TrainerConfig

TINY = dict(generator_width=8, generator_blocks=1, discriminator_width=8, pool_size=4)
SHAPE = (3, 16, 16)


def _domains(n: int = 32, size: int = 16, seed: int = 0) -> tuple[ImageTensors, ImageTensors]:
    """A: a bright square on black; B: the same squares dark on a textured grey background."""
    g = torch.Generator().manual_seed(seed)
    a = torch.zeros(n, 3, size, size)
    b = 0.5 + 0.2 * torch.rand(n, 3, size, size, generator=g)
    for i in range(n):
        y, x = torch.randint(0, size - 6, (2,), generator=g).tolist()
        a[i, :, y : y + 6, x : x + 6] = 1.0
        b[i, :, y : y + 6, x : x + 6] = 0.1
    labels = torch.arange(n) % 2
    to_u8 = lambda t: (t * 255).round().to(torch.uint8)  # noqa: E731
    return ImageTensors(to_u8(a), labels, "a"), ImageTensors(to_u8(b), labels, "b")


def _stream(batch: int = 4, seed: int = 0) -> ZipLoader:
    a, b = _domains()
    return ZipLoader(
        InfiniteLoader(a.unlabeled(), batch, seed=seed),
        InfiniteLoader(b.unlabeled(), batch, seed=seed + 1),
    )


# -- networks ------------------------------------------------------------------------


def test_generator_shapes_and_block_counts_by_size():
    assert resnet_blocks_for(28) == 6 and resnet_blocks_for(128) == 6
    assert resnet_blocks_for(256) == 9
    g = ResnetGenerator(3, 3, width=8, n_blocks=resnet_blocks_for(128))
    assert len(g.blocks) == 6
    out = g(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert out.shape == (2, 3, 32, 32) and out.abs().max() <= 1
    assert ResnetGenerator(1, 3, width=8, n_blocks=2)(torch.zeros(1, 1, 28, 28)).shape == (
        1,
        3,
        28,
        28,
    )
    assert len(CycleGAN((3, 28, 28), (3, 28, 28)).g_ab.blocks) == 6  # paper preset by size
    convs = [m for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    # c7s1-8, d16, d32, 6 x R32 (2 convs each), u16, u8, c7s1-3
    assert [c.out_channels for c in convs[:3]] == [8, 16, 32]
    assert [c.out_channels for c in convs[-3:]] == [16, 8, 3]
    assert convs[0].kernel_size == (7, 7) and convs[-1].kernel_size == (7, 7)
    weights = torch.cat([c.weight.flatten() for c in convs])
    assert abs(weights.std().item() - 0.02) < 0.002 and all(
        float(c.bias.detach().abs().max()) == 0 for c in convs
    )


def test_reflection_padding_and_instance_norm_present_no_batch_norm():
    g = ResnetGenerator(3, 3, width=8, n_blocks=2)
    kinds = [type(m) for m in g.modules()]
    assert kinds.count(nn.ReflectionPad2d) == 2 + 2 * 2  # c7s1 x 2, two per residual block
    assert nn.InstanceNorm2d in kinds and nn.BatchNorm2d not in kinds
    assert isinstance(g.net[-1], nn.Tanh)
    block = g.blocks[0]
    assert isinstance(block, ResnetBlock)
    assert [type(m) for m in block.body][:3] == [nn.ReflectionPad2d, nn.Conv2d, nn.InstanceNorm2d]


def test_patchgan_instance_norm_variant_and_receptive_field():
    d = PatchGANDiscriminator(3, 8, 3, norm="instance")
    kinds = [type(m) for m in d.modules()]
    assert nn.InstanceNorm2d in kinds and nn.BatchNorm2d not in kinds
    assert d.receptive_field == 70
    assert d(torch.zeros(2, 3, 128, 128)).shape == (2, 1, 14, 14)
    model = CycleGAN((3, 128, 128), (3, 128, 128), **TINY)
    assert model.receptive_field == 70 and model.hparams["discriminator_layers"] == 3
    small = CycleGAN((3, 28, 28), (3, 28, 28), **TINY)
    assert small.receptive_field == 16
    assert nn.InstanceNorm2d in [type(m) for m in small.d_a.modules()]


# -- image pool ----------------------------------------------------------------------


def test_image_pool_fills_then_returns_inputs_unchanged():
    pool = ImagePool(5, (1, 2, 2))
    x = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 1, 2, 2)
    assert torch.equal(pool.query(x), x) and len(pool) == 3
    y = x + 3
    assert torch.equal(pool.query(y[:2]), y[:2]) and len(pool) == 5
    assert torch.equal(pool.images[:, 0, 0, 0], torch.arange(5.0))
    assert torch.equal(ImagePool(0, (1, 2, 2)).query(x), x)


def test_image_pool_swaps_half_the_time_with_stored_images():
    torch.manual_seed(0)
    pool = ImagePool(50, (1, 1, 1))
    pool.query(-torch.arange(1.0, 51.0).view(50, 1, 1, 1))  # fill with -1..-50
    swapped, n = 0, 4000
    for i in range(n // 8):
        batch = torch.arange(i * 8, i * 8 + 8, dtype=torch.float32).view(8, 1, 1, 1)
        out = pool.query(batch)
        for before, after in zip(batch.flatten().tolist(), out.flatten().tolist()):
            if after != before:
                swapped += 1
                # a stored image comes back: an older one, or one of this batch stored before
                assert after < before
    # Binomial(4000, 0.5): sd ~ 32; 5 sd either side.
    assert abs(swapped - n / 2) < 160, swapped
    assert len(pool) == 50


def test_image_pool_state_round_trips_and_resumes_exactly():
    torch.manual_seed(3)
    a = ImagePool(6, (1, 2, 2))
    for _ in range(3):
        a.query(torch.rand(4, 1, 2, 2))
    b = ImagePool(6, (1, 2, 2))
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    assert len(b) == 6 and torch.equal(a.images, b.images)
    x = torch.rand(5, 1, 2, 2)
    state = torch.get_rng_state()
    out_a = a.query(x)
    torch.set_rng_state(state)
    assert torch.equal(b.query(x), out_a) and torch.equal(a.images, b.images)


# -- losses ---------------------------------------------------------------------------


class _Scale(nn.Module):
    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x):
        return x * self.w


class _MeanD(nn.Module):
    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c))

    def forward(self, x):
        return x.mean(dim=(1, 2, 3), keepdim=True) + self.c


def test_cycle_identity_gan_and_halved_d_losses_match_hand_computed_values():
    model = CycleGAN(
        SHAPE, SHAPE, pool_size=0, **{k: v for k, v in TINY.items() if k != "pool_size"}
    )
    model.g_ab, model.g_ba = _Scale(0.5), _Scale(-0.8)
    model.d_a, model.d_b = _MeanD(0.3), _MeanD(-0.2)
    torch.manual_seed(0)
    ra, rb = torch.rand(2, *SHAPE), torch.rand(2, *SHAPE)
    a, b = ra * 2 - 1, rb * 2 - 1
    m = model.train_step((ra, rb), StepContext.single_process(model.configure_optimizers(), 10))
    fake_b, fake_a = 0.5 * a, -0.8 * b
    cyc_a = (-0.8 * fake_b - a).abs().mean()
    cyc_b = (0.5 * fake_a - b).abs().mean()
    idt_a, idt_b = (-0.8 * a - a).abs().mean(), (0.5 * b - b).abs().mean()
    d_b = lambda x: x.mean(dim=(1, 2, 3)) - 0.2  # noqa: E731
    d_a = lambda x: x.mean(dim=(1, 2, 3)) + 0.3  # noqa: E731
    gan_ab, gan_ba = ((d_b(fake_b) - 1) ** 2).mean(), ((d_a(fake_a) - 1) ** 2).mean()
    expected_g = gan_ab + gan_ba + 10 * (cyc_a + cyc_b) + 5 * (idt_a + idt_b)
    for key, value in {
        "loss/cycle_a": cyc_a,
        "loss/cycle_b": cyc_b,
        "loss/idt_a": idt_a,
        "loss/idt_b": idt_b,
        "loss/gan_ab": gan_ab,
        "loss/gan_ba": gan_ba,
        "loss/g": expected_g,
    }.items():
        assert float(m[key]) == pytest.approx(float(value), rel=1e-5), key
    # D's loss is halved and sees G's output after G's update (pool of 0: the fakes as they
    # were generated this step, i.e. before the update; the D nets' values before D's update).
    expected_d_b = 0.5 * (((d_b(b) - 1) ** 2).mean() + (d_b(fake_b) ** 2).mean())
    expected_d_a = 0.5 * (((d_a(a) - 1) ** 2).mean() + (d_a(fake_a) ** 2).mean())
    assert float(m["loss/d_b"]) == pytest.approx(float(expected_d_b), rel=1e-5)
    assert float(m["loss/d_a"]) == pytest.approx(float(expected_d_a), rel=1e-5)


def test_identity_is_off_for_different_channels_and_refused_when_asked():
    assert CycleGAN((1, 16, 16), (3, 16, 16), **TINY).hparams["identity_weight"] == 0
    with pytest.raises(ConfigError, match=r"identity_weight 0\.5 needs domains with the same"):
        CycleGAN((1, 16, 16), (3, 16, 16), identity_weight=0.5, **TINY)


# -- one step against a reference ------------------------------------------------------


def _reference_step(model: CycleGAN, ra, rb, opt_g, opt_d) -> None:
    """The authors' optimize_parameters, written out by hand."""
    a, b = ra * 2 - 1, rb * 2 - 1
    for p in [*model.d_a.parameters(), *model.d_b.parameters()]:
        p.requires_grad_(False)
    fake_b = model.g_ab(a)
    rec_a = model.g_ba(fake_b)
    fake_a = model.g_ba(b)
    rec_b = model.g_ab(fake_a)
    loss_g = (
        F.mse_loss(model.d_b(fake_b), torch.ones_like(model.d_b(fake_b)))
        + F.mse_loss(model.d_a(fake_a), torch.ones_like(model.d_a(fake_a)))
        + 10 * F.l1_loss(rec_a, a)
        + 10 * F.l1_loss(rec_b, b)
        + 10 * 0.5 * F.l1_loss(model.g_ab(b), b)
        + 10 * 0.5 * F.l1_loss(model.g_ba(a), a)
    )
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    for p in [*model.d_a.parameters(), *model.d_b.parameters()]:
        p.requires_grad_(True)
    opt_d.zero_grad()
    pb = model.pool_b.query(fake_b.detach())
    real, fake = model.d_b(b), model.d_b(pb)
    loss_d_b = (
        F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake))
    ) * 0.5
    pa = model.pool_a.query(fake_a.detach())
    real, fake = model.d_a(a), model.d_a(pa)
    loss_d_a = (
        F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake))
    ) * 0.5
    (loss_d_a + loss_d_b).backward()
    opt_d.step()


def test_one_train_step_equals_a_hand_written_reference_step():
    torch.manual_seed(0)
    ours = CycleGAN(SHAPE, SHAPE, **TINY)
    ref = copy.deepcopy(ours)
    opts = ours.configure_optimizers()
    ctx = StepContext.single_process(opts, 10)
    g_params = [*ref.g_ab.parameters(), *ref.g_ba.parameters()]
    d_params = [*ref.d_a.parameters(), *ref.d_b.parameters()]
    ref_g = torch.optim.Adam(g_params, lr=2e-4, betas=(0.5, 0.999))
    ref_d = torch.optim.Adam(d_params, lr=2e-4, betas=(0.5, 0.999))
    data = torch.rand(3, 2, 4, *SHAPE, generator=torch.Generator().manual_seed(1))
    for step in range(3):  # pool of 4 with batch 4: step 2 draws swaps from the RNG
        torch.manual_seed(100 + step)
        ours.train_step((data[step, 0], data[step, 1]), ctx)
        torch.manual_seed(100 + step)
        _reference_step(ref, data[step, 0], data[step, 1], ref_g, ref_d)
    for (name, p), q in zip(ours.named_parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)
    assert torch.equal(ours.pool_a.images, ref.pool_a.images)
    changed = any(
        not torch.equal(p, q)
        for p, q in zip(ours.parameters(), CycleGAN(SHAPE, SHAPE, **TINY).parameters())
    )
    assert changed


# -- schedule --------------------------------------------------------------------------


@pytest.mark.parametrize("decay_start, start_step", [(0.5, 5), (3, 3), (0.0, 0)])
def test_linear_decay_constant_then_to_zero(decay_start, start_step):
    model = CycleGAN(SHAPE, SHAPE, decay_start=decay_start, **TINY)
    opts = model.configure_optimizers()
    scheds = model.configure_schedulers(opts, 10)
    assert model.decay_start_step(10) == start_step
    lrs = []
    for _ in range(10):
        lrs.append(opts["g"].param_groups[0]["lr"])
        for opt in opts.values():
            opt.step()  # no gradients: a no-op, in the order torch expects
        for s in scheds.values():
            s.step()
    lrs.append(opts["d"].param_groups[0]["lr"])
    span = 10 - start_step
    expected = [
        2e-4 if s < start_step else 2e-4 * max(0.0, 1 - (s - start_step + 1) / (span + 1))
        for s in range(11)
    ]
    assert lrs == pytest.approx(expected)
    assert lrs[-1] == 0


# -- training, resume ------------------------------------------------------------------


def test_tiny_run_lowers_cycle_loss_and_beats_a_trivial_baseline():
    torch.manual_seed(0)
    model = CycleGAN(SHAPE, SHAPE, **TINY, lr=2e-3)
    a, _ = _domains()
    x = a.get_batch(torch.arange(16))[0]
    model.eval()
    before = (model.translate_back(model.translate(x)) - x).abs().mean().item()
    config = TrainerConfig(max_steps=60, progress=False, log_every=10, checkpoint_every=None)
    result = Trainer(model, _stream(), config).fit()
    model.eval()
    after = (model.translate_back(model.translate(x)) - x).abs().mean().item()
    # trivial baseline: reconstruct every image as the mean image of the batch
    baseline = (x.mean(0, keepdim=True) - x).abs().mean().item()
    assert after < 0.5 * before, (before, after)
    assert after < baseline, (after, baseline)
    assert result.last_metrics["loss/cycle"] < 2 * before


def test_resume_continues_to_the_same_numbers(tmp_path):
    from counterfeit.gan.callbacks import Callback
    from counterfeit.gan.errors import TrainingInterrupted

    class Interrupt(Callback):  # what Ctrl-C does: finish the step, checkpoint, stop
        every = 3

        def on_step(self, trainer, step):
            trainer._interrupt.set()

    def fit(path, resume=False, callbacks=()):
        torch.manual_seed(0)
        model = CycleGAN(SHAPE, SHAPE, **TINY)
        config = TrainerConfig(  # bit-exact resume is the CPU's promise (CUDA kernels vary)
            max_steps=6, progress=False, checkpoint_every=6, log_every=1, device="cpu"
        )
        Trainer(model, _stream(), config, checkpoint_path=path, callbacks=callbacks).fit(
            resume=resume
        )
        return model

    straight = fit(tmp_path / "straight.ckpt")
    with pytest.raises(TrainingInterrupted):
        fit(tmp_path / "c.ckpt", callbacks=[Interrupt()])
    resumed = fit(tmp_path / "c.ckpt", resume=True)
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name
    assert int(resumed.pool_a.count) == 4  # pools are checkpointed


# -- semantic loss ---------------------------------------------------------------------


def test_semantic_loss_trains_g_only_with_a_frozen_classifier():
    torch.manual_seed(0)
    f_s = digits_classifier((3, 28, 28), 10)
    model = CycleGAN((3, 28, 28), (3, 28, 28), semantic_weight=1.0, semantic_classifier=f_s, **TINY)
    model.train()
    assert not model.semantic.training and not any(
        p.requires_grad for p in model.semantic.parameters()
    )
    ra, rb = torch.rand(2, 3, 28, 28), torch.rand(2, 3, 28, 28)
    loss = model.semantic_loss(ra, rb, model.g_ab(ra * 2 - 1), model.g_ba(rb * 2 - 1))
    with torch.no_grad():
        hand = F.cross_entropy(f_s(model.translate(ra)), f_s(ra).argmax(1)) + F.cross_entropy(
            f_s(model.translate_back(rb)), f_s(rb).argmax(1)
        )
    assert loss.item() == pytest.approx(hand.item(), rel=1e-5)
    loss.backward()
    assert model.g_ab.net[1].weight.grad.abs().sum() > 0
    assert model.g_ba.net[1].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.semantic.parameters())
    assert all(p.grad is None for p in [*model.d_a.parameters(), *model.d_b.parameters()])
    frozen = copy.deepcopy(model.semantic.state_dict())
    opts = model.configure_optimizers()
    m = model.train_step((ra, rb), StepContext.single_process(opts, 4))
    assert "loss/semantic" in m and math.isfinite(float(m["loss/semantic"]))
    for k, v in model.semantic.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    opt_params = {id(p) for o in opts.values() for g in o.param_groups for p in g["params"]}
    assert not opt_params & {id(p) for p in model.semantic.parameters()}


def test_semantic_loss_without_a_classifier_is_refused():
    model = CycleGAN(SHAPE, SHAPE, semantic_weight=1.0, **TINY)
    ctx = StepContext.single_process(model.configure_optimizers(), 2)
    with pytest.raises(ConfigError, match="no trained semantic classifier"):
        model.train_step((torch.rand(2, *SHAPE), torch.rand(2, *SHAPE)), ctx)
    with pytest.raises(ConfigError, match="must have the architecture"):
        model.set_semantic_classifier(nn.Linear(2, 2))


# -- translate ---------------------------------------------------------------------------


def test_counterfeit_translate_on_a_tiny_cyclegan_checkpoint(tmp_path):
    import numpy as np
    from PIL import Image

    from counterfeit.recipes.cli import main
    from counterfeit.recipes.translate import load_translator

    torch.manual_seed(0)
    model = CycleGAN(
        SHAPE,
        SHAPE,
        semantic_weight=0.5,
        semantic_classifier=digits_classifier((3, 16, 16)),
        **TINY,
    )
    config = TrainerConfig(max_steps=2, progress=False, checkpoint_every=2)
    Trainer(model, _stream(), config, checkpoint_path=tmp_path / "c.ckpt").fit()
    rebuilt = load_translator(tmp_path / "c.ckpt")
    assert isinstance(rebuilt, CycleGAN) and rebuilt.hparams == model.hparams
    model.cpu().eval()  # the checkpoint loads on the CPU
    x = torch.rand(3, *SHAPE)
    # equal on the CPU; a model trained on CUDA keeps channels_last weights (other rounding)
    torch.testing.assert_close(rebuilt.translate(x), model.translate(x), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        rebuilt.translate_back(x), model.translate_back(x), atol=1e-5, rtol=0
    )

    folder = tmp_path / "inputs"
    for i in range(4):
        (folder / str(i % 2)).mkdir(parents=True, exist_ok=True)
        Image.fromarray((np.random.default_rng(i).random((16, 16, 3)) * 255).astype(np.uint8)).save(
            folder / str(i % 2) / f"{i}.png"
        )
    out = tmp_path / "out"
    code = main(
        ["translate", "--checkpoint", str(tmp_path / "c.ckpt"), "--data", str(folder),
         "--out", str(out), "--format", "npz"]
    )  # fmt: skip
    assert code == 0
    saved = np.load(out / "adapted.npz")
    assert saved["x_train"].shape == (4, 16, 16, 3) and sorted(saved["y_train"]) == [0, 0, 1, 1]


# -- errors --------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ConfigError, match="one image size"):
        CycleGAN((3, 16, 16), (3, 32, 32))
    with pytest.raises(ConfigError, match="divisible by 4"):
        CycleGAN((3, 18, 18), (3, 18, 18))
    with pytest.raises(ConfigError, match="shape_a must be"):
        CycleGAN((3, 16), (3, 16, 16))
    with pytest.raises(ConfigError, match="preset 'huge'"):
        CycleGAN(SHAPE, SHAPE, preset="huge")
    with pytest.raises(ConfigError, match=r"decay_start 1\.5 as a fraction"):
        CycleGAN(SHAPE, SHAPE, decay_start=1.5)
    with pytest.raises(ConfigError, match="decay must start within the run"):
        CycleGAN(SHAPE, SHAPE, decay_start=20, **TINY).configure_schedulers(
            CycleGAN(SHAPE, SHAPE, **TINY).configure_optimizers(), 10
        )
    with pytest.raises(ConfigError, match="semantic loss applies f_S to both"):
        CycleGAN((1, 16, 16), (3, 16, 16), identity_weight=0, semantic_weight=1.0)
    model = CycleGAN(SHAPE, SHAPE, **TINY)
    ctx = StepContext.single_process(model.configure_optimizers(), 2)
    with pytest.raises(ConfigError, match=r"domain-B images of shape \(N, 3, 16, 16\)"):
        model.train_step((torch.rand(2, *SHAPE), torch.rand(2, 1, 16, 16)), ctx)
    with pytest.raises(ConfigError, match="a CycleGAN batch is"):
        model.train_step(torch.rand(2, *SHAPE), ctx)
    with pytest.raises(ConfigError, match="domain-A"):
        model.translate(torch.rand(2, 3, 8, 8))
    with pytest.raises(ConfigError, match=r"holds images of shape \(3, 16, 16\)"):
        model.pool_a.query(torch.rand(2, 1, 16, 16))
    with pytest.raises(ConfigError, match="divisible by 4"):
        ResnetGenerator(3, 3, 8, 1)(torch.rand(1, 3, 18, 18))


def test_recipe_schema_takes_the_preset_batch_and_names_bad_keys():
    from counterfeit.recipes.loader import load_recipe

    loaded = load_recipe("synth2real-cyclegan", ["model.preset=paper", "train.batch_size=64"])
    assert loaded.recipe.train.batch_size == 64
    raw_batch = load_recipe("synth2real-cyclegan").recipe
    assert raw_batch.model.preset == "small" and raw_batch.train.batch_size == 4
    with pytest.raises(Exception, match="cycle_wieght"):
        load_recipe("synth2real-cyclegan", ["model.cycle_wieght=3"])
    with pytest.raises(Exception, match="decay_start"):
        load_recipe("synth2real-cyclegan", ["model.decay_start=-1"])


# -- the recipe ------------------------------------------------------------------------


def test_recipe_end_to_end_reports_label_preservation_and_resumes(tmp_path):
    from counterfeit.recipes import load_recipe, run_recipe

    tiny = [
        "train.steps=4",
        "train.batch_size=2",
        "train.log_every=2",
        "train.checkpoint_every=2",
        "train.progress=false",
        "data.source.n=64",
        "data.source.n_test=40",
        "model.generator_width=4",
        "model.generator_blocks=1",
        "model.discriminator_width=4",
        "model.semantic_weight=1.0",
        "evaluation.classifier.steps=5",
        "evaluation.fid=false",
        "samples_every=2",
        "grid_images=4",
        "tracking.enabled=false",
    ]
    out = tmp_path / "run"
    summary = run_recipe(load_recipe("synth2real-cyclegan", tiny), out=out)
    metrics = summary["cyclegan"]["metrics"]
    for key in ("translated_accuracy", "untranslated_accuracy", "real_accuracy"):
        assert summary["metrics"][f"cyclegan/{key}"] == metrics[key]
    for key in ("translated_accuracy", "untranslated_accuracy", "source_classifier_translated"):
        correct = metrics[key] * 40  # measured on the 40 source test images
        assert correct == pytest.approx(round(correct), abs=1e-4), key
    assert summary["cyclegan"]["classifier"] == {
        "steps": 5,
        "batch_size": 64,
        "lr": 1e-3,
        "augment": "strong",
    }
    assert (out / "plots" / "cycle.png").is_file()
    assert (out / "checkpoints" / "cyclegan.ckpt").is_file()
    assert any((out / "samples").iterdir())
    longer = load_recipe("synth2real-cyclegan", [*tiny, "train.steps=6"])
    resumed = run_recipe(longer, out=out, resume=True, allow_recipe_changes=True)
    assert summary["cyclegan"]["steps"] == 4 and resumed["cyclegan"]["steps"] == 6
    assert summary["cyclegan"]["receptive_field"] == 16


@pytest.mark.slow
def test_an_augmented_judge_reads_warped_real_digits_better():
    """The label-preservation judge trains on augmented batches (``augment: strong``) so
    that it reads digits, not its 4,000 examples: on real test digits rotated, shrunk and
    sheared it beats the same judge trained without augmentation."""
    from counterfeit.recipes.tasks.cyclegan import ClassifierConfig, train_classifier

    train = build_domain(DomainSpec(name="mnistm-style"), "train", 28)
    images, labels = build_domain(DomainSpec(name="mnistm-style"), "test", 28).get_batch(
        torch.arange(1000)
    )
    warped = affine(images, angle=15.0, translate=[0, 0], scale=0.85, shear=[10.0])
    read = {}
    for augment in ("none", "strong"):
        judge = train_classifier(train, 10, ClassifierConfig(steps=300, augment=augment), seed=0)
        with torch.no_grad():
            read[augment] = judge(warped).argmax(1).eq(labels).float().mean().item()
    assert read["strong"] > read["none"] + 0.03, read
