"""PixelDA (Bousmalis et al. 2017): networks, one step against a hand-written reference,
gradient paths, resume, bad inputs."""

import copy

import pytest
import torch
import torch.nn.functional as F

from counterfeit.adapt.pixelda import PRESETS, PixelDA, pairwise_mse
from counterfeit.gan import StepContext, Trainer, TrainerConfig
from counterfeit.gan.checkpoint import load_checkpoint
from counterfeit.gan.data import ImageTensors, InfiniteLoader, ZipLoader
from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.nets.pixelda import PixelDADiscriminator, PixelDAGenerator

TINY = dict(generator_filters=8, generator_blocks=1, discriminator_filters=8)
# Overrides that make a built-in PixelDA recipe (and its baselines) run in seconds.
TINY_RECIPE = [
    "device=cpu",
    "model.generator_filters=4",
    "model.generator_blocks=1",
    "model.discriminator_filters=4",
    "train.steps=2",
    "train.batch_size=4",
    "train.checkpoint_every=2",
    "train.progress=false",
    "samples_every=2",
    "baselines.steps=2",
    "baselines.batch_size=4",
    "tracking.enabled=false",
]


def _batch(n=4, size=16, seed=0, source_channels=3):
    g = torch.Generator().manual_seed(seed)
    xs = torch.rand(n, source_channels, size, size, generator=g)
    ys = torch.randint(0, 10, (n,), generator=g)
    xt = torch.rand(n, 3, size, size, generator=g)
    return (xs, ys), (xt, torch.full((n,), -1))


def test_paper_generator_is_six_residual_blocks_of_64_filters():
    g = PixelDAGenerator(3, 3, 28)
    convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 1 + 6 * 2 + 1
    assert all(c.out_channels == 64 and c.kernel_size == (3, 3) for c in convs[:-1])
    assert g.noise.project[0].in_features == 10
    assert PRESETS["paper"] == {
        "generator_filters": 64,
        "generator_blocks": 6,
        "discriminator_filters": 64,
    }


def test_generator_shape_range_and_noise_dependence():
    torch.manual_seed(0)  # the check below held for about half of unseeded draws
    g = PixelDAGenerator(1, 3, 16, filters=8, blocks=2).eval()
    x = torch.rand(5, 1, 16, 16) * 2 - 1
    z1, z2 = g.sample_noise(5), g.sample_noise(5)
    with torch.no_grad():
        y1, y2 = g(x, z1), g(x, z2)
        assert y1.shape == (5, 3, 16, 16)
        assert float(y1.abs().max()) <= 1.0 and float(z1.abs().max()) <= 1.0
        # the same source with other noise gives another image. The N(0, 0.02) init keeps
        # the noise's share small at first: 3-10% of the output's size over 200 seeds
        assert (y1 - y2).abs().mean() > 0.01 * y1.abs().mean()
        assert torch.equal(g(x, z1), y1)  # eval mode is deterministic


def test_discriminator_first_stride_one_and_filters_double_to_4x4():
    d = PixelDADiscriminator(3, 28, filters=64)
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].stride == (1, 1)
    assert [c.out_channels for c in convs] == [64, 128, 256, 512]
    assert d(torch.rand(2, 3, 28, 28)).shape == (2,)
    d.train()
    x = torch.rand(2, 3, 28, 28)
    assert not torch.equal(d(x), d(x))  # Gaussian noise and dropout while training
    d.eval()
    assert torch.equal(d(x), d(x))


def test_one_step_matches_hand_written_reference():
    torch.manual_seed(0)
    model = PixelDA((3, 16, 16), (3, 16, 16), noise_sigma=0.0, dropout=0.0, **TINY)
    reference = copy.deepcopy(model)
    (xs, ys), (xt, yt) = _batch()
    hp = model.hparams

    torch.manual_seed(7)
    ctx = StepContext.single_process(model.configure_optimizers(), 10)
    metrics = model.train_step(((xs, ys), (xt, yt)), ctx)

    torch.manual_seed(7)
    g, d, t = reference.generator, reference.discriminator, reference.task
    opt_d = torch.optim.Adam(
        list(d.parameters()) + list(t.parameters()), lr=1e-3, betas=(0.5, 0.999), weight_decay=1e-5
    )
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.5, 0.999), weight_decay=1e-5)
    s, tt = xs * 2 - 1, xt * 2 - 1
    with torch.no_grad():
        fake = g(s, torch.rand(4, 10) * 2 - 1)
    domain = F.binary_cross_entropy_with_logits(
        d(tt), torch.ones(4)
    ) + F.binary_cross_entropy_with_logits(d(fake), torch.zeros(4))
    task = F.cross_entropy(t(s, source=True), ys) + F.cross_entropy(t(fake), ys)
    d_loss = hp["domain_weight"] * domain + task
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    fake = g(s, torch.rand(4, 10) * 2 - 1)
    g_loss = hp["style_weight"] * F.binary_cross_entropy_with_logits(d(fake), torch.ones(4)) + hp[
        "task_in_g_weight"
    ] * F.cross_entropy(t(fake), ys)
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()

    assert metrics["loss/d"].item() == pytest.approx(d_loss.item(), rel=1e-5)
    assert metrics["loss/g"].item() == pytest.approx(g_loss.item(), rel=1e-5)
    got = model.state_dict()
    for name, expected in reference.state_dict().items():
        assert torch.allclose(got[name].float(), expected.float(), atol=1e-6), name


def test_generator_gradient_flows_through_discriminator_and_task_classifier():
    model = PixelDA((3, 16, 16), (3, 16, 16), **TINY)
    (xs, ys), _ = _batch()
    s = xs * 2 - 1
    for term in ("style", "task"):
        model.zero_grad()
        fake = model.generator(s, model.generator.sample_noise(4))
        if term == "style":
            loss = F.binary_cross_entropy_with_logits(model.discriminator(fake), torch.ones(4))
        else:
            loss = F.cross_entropy(model.task(fake), ys)
        loss.backward()
        grads = [p.grad for p in model.generator.parameters()]
        assert all(gr is not None for gr in grads), term
        assert sum(float(gr.abs().sum()) for gr in grads) > 0, term


def test_g_step_does_not_train_discriminator_or_classifier():
    model = PixelDA((3, 16, 16), (3, 16, 16), **TINY)
    ctx = StepContext.single_process(model.configure_optimizers(), 10)
    model.train_step(_batch(), ctx)
    assert all(p.requires_grad for p in model.parameters())  # frozen only during the G step
    d_grads = [p.grad for p in model.discriminator.parameters()]
    assert all(g is not None for g in d_grads)  # from the D step, untouched by the G step


def test_pairwise_mse_ignores_constant_shift_but_not_shape():
    x = torch.rand(3, 3, 8, 8)
    assert float(pairwise_mse(x + 0.3, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(pairwise_mse(x.flip(-1), x)) > 0.01
    mask = torch.zeros_like(x)
    assert float(pairwise_mse(x.flip(-1), x, mask)) == 0.0
    d = torch.rand(1, 5) - 0.5
    by_hand = sum(float((d[0, i] - d[0, j]) ** 2) for i in range(5) for j in range(5)) / 25
    assert float(pairwise_mse(d, torch.zeros_like(d))) == pytest.approx(by_hand, rel=1e-5)


def test_content_loss_is_optional_and_reported():
    model = PixelDA((3, 16, 16), (3, 16, 16), content_weight=1.0, **TINY)
    ctx = StepContext.single_process(model.configure_optimizers(), 10)
    assert "loss/content" in model.train_step(_batch(), ctx)


def test_grey_source_to_colour_target():
    model = PixelDA((1, 16, 16), (3, 16, 16), **TINY)
    ctx = StepContext.single_process(model.configure_optimizers(), 10)
    model.train_step(_batch(source_channels=1), ctx)
    assert model.translate(torch.rand(2, 1, 16, 16)).shape == (2, 3, 16, 16)
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 10)


def test_mismatched_domains_are_clear_errors():
    with pytest.raises(DataError, match=r"same size.*\(3, 28, 28\).*\(3, 32, 32\)"):
        PixelDA((3, 28, 28), (3, 32, 32))
    model = PixelDA((3, 16, 16), (3, 16, 16), **TINY)
    ctx = StepContext.single_process(model.configure_optimizers(), 10)
    with pytest.raises(DataError, match=r"target images of shape \(3, 16, 16\).*\(1, 16, 16\)"):
        (xs, ys), (xt, yt) = _batch()
        model.train_step(((xs, ys), (xt[:, :1], yt)), ctx)
    with pytest.raises(ConfigError, match="preset"):
        PixelDA(preset="huge")  # type: ignore[arg-type]


def _stream(seed=0):
    g = torch.Generator().manual_seed(0)
    src = ImageTensors(
        torch.randint(0, 256, (32, 3, 16, 16), dtype=torch.uint8, generator=g),
        torch.arange(32) % 10,
        "s",
    )
    tgt = ImageTensors(
        torch.randint(0, 256, (32, 3, 16, 16), dtype=torch.uint8, generator=g), None, "t"
    )
    return ZipLoader(InfiniteLoader(src, 8, seed=seed), InfiniteLoader(tgt, 8, seed=seed + 1))


@pytest.mark.slow
def test_tiny_run_beats_source_only_on_the_target():
    """Real MNIST digits -> MNIST-M-style digits (both embedded), fixed seed: PixelDA after
    120 steps classifies the target better than a source-only classifier given 300."""
    from counterfeit.adapt import DANN, accuracy, predict
    from counterfeit.gan.data import DomainSpec, build_domain

    source = build_domain(DomainSpec(name="mnist-small"), "train", 28).take(2000)
    target = build_domain(DomainSpec(name="mnistm-style"), "train", 28).take(2000, seed=1)
    target_test = build_domain(DomainSpec(name="mnistm-style"), "test", 28).take(500)

    def data():
        return ZipLoader(
            InfiniteLoader(source, 32, seed=0), InfiniteLoader(target.unlabeled(), 32, seed=1)
        )

    torch.manual_seed(0)
    source_only = DANN((3, 28, 28), mode="source-only")
    Trainer(source_only, data(), TrainerConfig(max_steps=300, progress=False)).fit()
    torch.manual_seed(0)
    pixelda = PixelDA(
        (3, 28, 28),
        (3, 28, 28),
        preset="small",
        generator_filters=16,
        generator_blocks=1,
        discriminator_filters=16,
    )
    Trainer(pixelda, data(), TrainerConfig(max_steps=120, progress=False)).fit()
    baseline = accuracy(predict(source_only, target_test))
    adapted = accuracy(predict(pixelda, target_test))
    assert adapted > baseline + 0.15, (adapted, baseline)


def test_resume_restores_all_three_networks_and_both_optimizers(tmp_path):
    config = TrainerConfig(max_steps=6, progress=False, log_every=2, checkpoint_every=3, seed=1)
    torch.manual_seed(0)
    straight = PixelDA((3, 16, 16), (3, 16, 16), **TINY)
    Trainer(straight, _stream(), config, checkpoint_path=tmp_path / "a.ckpt").fit()

    torch.manual_seed(0)
    first = PixelDA((3, 16, 16), (3, 16, 16), **TINY)
    # PixelDA's schedule does not depend on the run's length: stop after 3, resume to 6
    half = config.model_copy(update={"max_steps": 3})
    Trainer(first, _stream(), half, checkpoint_path=tmp_path / "b.ckpt").fit()
    state = load_checkpoint(tmp_path / "b.ckpt")
    assert state["step"] == 3 and set(state["optimizers"]) == {"d", "g"}

    torch.manual_seed(99)
    resumed = PixelDA((3, 16, 16), (3, 16, 16), **TINY)
    Trainer(resumed, _stream(), config, checkpoint_path=tmp_path / "b.ckpt").fit(resume=True)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_translate_rebuilds_the_generator_from_a_checkpoint_and_writes_datasets(tmp_path):
    from counterfeit.gan.data import load_image_folder
    from counterfeit.gan.data.files import load_npz
    from counterfeit.recipes.tasks.common.adaptation import translate_dataset
    from counterfeit.recipes.translate import load_translator, write_dataset

    torch.manual_seed(0)
    model = PixelDA((3, 16, 16), (3, 16, 16), **TINY)
    config = TrainerConfig(max_steps=2, progress=False, checkpoint_every=2)
    Trainer(model, _stream(), config, checkpoint_path=tmp_path / "p.ckpt").fit()
    rebuilt = load_translator(tmp_path / "p.ckpt")
    assert rebuilt.hparams == model.hparams
    model.cpu().eval()  # the checkpoint loads on the CPU
    x = torch.rand(3, 3, 16, 16)
    z = model.generator.sample_noise(3)
    # equal on the CPU; a model trained on CUDA keeps channels_last weights (other rounding)
    torch.testing.assert_close(rebuilt.translate(x, z), model.translate(x, z), atol=1e-5, rtol=0)

    images = ImageTensors(
        (torch.rand(6, 3, 16, 16) * 255).to(torch.uint8), torch.arange(6) % 3, "s"
    )
    adapted = translate_dataset(rebuilt, images, batch_size=4, seed=1)
    assert adapted.images.shape == images.images.shape
    assert torch.equal(adapted.labels, images.labels)
    assert torch.equal(translate_dataset(rebuilt, images, seed=1).images, adapted.images)

    write_dataset(adapted, tmp_path / "png", "png", "train")
    back = load_image_folder(tmp_path / "png", size=16)
    assert sorted(back.labels.tolist()) == sorted(adapted.labels.tolist())
    npz = write_dataset(adapted, tmp_path / "npz", "npz", "test")
    again = load_npz(npz, "test", "adapted")
    assert torch.equal(again.images, adapted.images)


def test_translate_refuses_checkpoints_without_a_generator(tmp_path):
    from counterfeit.gan.checkpoint import FORMAT, save_atomic
    from counterfeit.gan.errors import CheckpointError
    from counterfeit.recipes.translate import load_translator

    save_atomic(
        {"format": FORMAT, "method_class": "DANN", "method_init": {}, "method": {}},
        tmp_path / "d.ckpt",
    )
    with pytest.raises(CheckpointError, match="'DANN' checkpoint; translate works with PixelDA"):
        load_translator(tmp_path / "d.ckpt")


def test_builtin_recipe_runs_end_to_end_with_its_baselines(tmp_path):
    """`counterfeit run digits-pixelda` on tiny settings: PixelDA and both DANN-family
    baselines train, and the summary reports each one's target accuracy."""
    from counterfeit.recipes import load_recipe, run_recipe

    tiny = [
        "data.source.n=64",
        "data.source.n_test=40",
        "data.target.n=64",
        "data.target.n_test=40",
        "train.log_every=1",
        *TINY_RECIPE,
    ]
    loaded = load_recipe("digits-pixelda", tiny)
    assert loaded.recipe.baselines.methods == ["source-only", "dann"]
    summary = run_recipe(loaded, out=tmp_path / "run")
    for key in ("pixelda/target_accuracy", "source-only/target_accuracy", "dann/target_accuracy"):
        correct = summary["metrics"][key] * 40  # a fraction of the 40 target test images
        assert correct == pytest.approx(round(correct), abs=1e-4), key


@pytest.mark.parametrize(
    ("name", "target_file", "target_shape"),
    [
        ("mnist-mnistm-pixelda", "mnistm.npz", (32, 32, 3)),
        ("mnist-usps-pixelda", "usps.npz", (16, 16)),
    ],
)
def test_builtin_data_root_recipes_run_on_files_in_the_published_npz_layout(
    tmp_path, random_digits_npz, name, target_file, target_shape
):
    """The two PixelDA recipes that read `data.root` run end to end on tiny random files
    laid out as the loaders document (uint8 x_train, y_train, x_test, y_test)."""
    from counterfeit.recipes import load_recipe, run_recipe

    random_digits_npz(tmp_path / "mnist.npz", (28, 28), 48, 24)
    random_digits_npz(tmp_path / target_file, target_shape, 48, 24)
    tiny = [
        f"data.root={tmp_path}",
        "train.eval_every=2",
        *TINY_RECIPE,
    ]
    summary = run_recipe(load_recipe(name, tiny), out=tmp_path / "run")
    correct = summary["metrics"]["pixelda/target_accuracy"] * 24  # of the 24 target test images
    assert correct == pytest.approx(round(correct), abs=1e-4)
    assert summary["pixelda"]["steps"] == 2
