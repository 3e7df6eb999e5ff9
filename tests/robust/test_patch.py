"""Adversarial patches (Brown et al. 2017): placement, optimisation, evaluation, files, errors."""

import math

import pytest
import torch

from counterfeit.gan.errors import CheckpointError, ConfigError, DataError
from counterfeit.robust import AdversarialPatch, Normalize, Placement, place_patch
from tests.robust.conftest import TARGET, fitted_patch, make_patch, sklearn_digits, trained_model


@pytest.fixture(scope="module")
def digits():
    return sklearn_digits()


@pytest.mark.parametrize("shape", ["square", "circle"])
def test_placed_mask_stays_inside_the_image_at_maximum_scale_and_rotation(shape):
    attack = AdversarialPatch(
        trained_model(),
        TARGET,
        shape=shape,
        area=0.15,
        scale=(1.2, 1.2),
        rotation=45.0,
        image_size=28,
        channels=1,
        progress=False,
    )
    images = torch.rand(400, 1, 28, 28)
    # the worst case: every patch at the largest scale and the largest rotation
    generator = torch.Generator().manual_seed(0)
    halves = [attack.sample_placement(200, generator, angle=a) for a in (45.0, -45.0)]
    placement = Placement(
        *(torch.cat([getattr(h, k) for h in halves]) for k in ("scale", "angle", "centre"))
    )
    assert torch.equal(placement.scale, torch.full((400,), 1.2))
    patched, mask = attack.apply(images, placement, patch=attack.patch, return_mask=True)
    # nothing of the patch falls on (or beyond) the border pixels
    border = torch.cat([mask[..., 0, :], mask[..., -1, :], mask[..., :, 0], mask[..., :, -1]], -1)
    assert float(border.max()) == 0.0
    # and the whole patch is there: its footprint keeps its area (up to resampling)
    expected = (attack.side() * 1.2) ** 2 * (1.0 if shape == "square" else math.pi / 4)
    areas = mask.sum(dim=(1, 2, 3))
    assert torch.allclose(areas, torch.full_like(areas, expected), rtol=0.12)
    # locations really vary (the test would be trivial with every patch in the centre)
    assert float(placement.centre.abs().max()) > 1.0
    assert patched.min() >= 0 and patched.max() <= 1


def test_extreme_rotation_is_respected_for_squares():
    attack = AdversarialPatch(
        trained_model(), TARGET, shape="square", area=0.2, scale=(1.0, 1.0), rotation=45.0,
        location="center", image_size=28, channels=1,
    )  # fmt: skip
    images = torch.zeros(2, 1, 28, 28)
    placement = Placement(torch.ones(2), torch.tensor([0.0, math.pi / 4]), torch.zeros(2, 2))
    _, mask = attack.apply(images, placement, patch=attack.patch, return_mask=True)
    rows = lambda m: int((m[0].amax(1) > 0).sum())  # noqa: E731
    side = attack.side()
    assert rows(mask[0]) == pytest.approx(side, abs=1.5)  # upright: its side
    # 45 degrees: about its diagonal (pixel centres miss the sharp corners), same area
    assert side * math.sqrt(2) - 2.5 <= rows(mask[1]) <= side * math.sqrt(2) + 1
    assert float(mask[1].sum()) == pytest.approx(float(mask[0].sum()), rel=0.06)


def test_patch_values_stay_in_range_for_both_parameterizations(digits):
    train, test = digits
    for parameterization in ("sigmoid", "clip"):
        attack = make_patch(parameterization=parameterization, steps=20, lr=1.0).fit(train)
        assert attack.patch.min() >= 0 and attack.patch.max() <= 1
        x = test.get_batch(torch.arange(16))[0]
        patched = attack.apply(x, generator=torch.Generator().manual_seed(0))
        assert patched.min() >= 0 and patched.max() <= 1
    # a large step on raw values would leave [0, 1] without the clip
    assert attack.history and all(math.isfinite(v) for v in attack.history)


def test_apply_is_differentiable_with_respect_to_the_patch(digits):
    _, test = digits
    attack = make_patch(image_size=8, channels=1)
    model = attack.model.double()
    x = test.get_batch(torch.arange(8))[0].double()
    patch = attack.patch.double().requires_grad_(True)
    placement = attack.sample_placement(8, torch.Generator().manual_seed(0))
    out = attack.apply(x, placement, patch=patch)
    (grad,) = torch.autograd.grad(model(out)[:, TARGET].sum(), patch)
    assert torch.isfinite(grad).all() and float(grad.abs().sum()) > 0
    # the derivative agrees with a central difference along a random direction (float64)
    direction = torch.randn(patch.shape, generator=torch.Generator().manual_seed(1)).double()
    h = 1e-6

    def f(p):
        with torch.no_grad():
            return float(model(attack.apply(x, placement, patch=p))[:, TARGET].sum())

    numeric = (f(patch.detach() + h * direction) - f(patch.detach() - h * direction)) / (2 * h)
    assert float((grad * direction).sum()) == pytest.approx(numeric, rel=1e-4)


def test_success_rises_above_the_random_patch_control_and_leaves_the_model_alone(digits):
    _, test = digits
    attack = fitted_patch(0.3)
    model = attack.model
    assert all(p.grad is None for p in model.parameters())
    assert not model.training  # the helper's eval mode was restored
    result = attack.evaluate(test, n=300, areas=[0.1, 0.3])
    assert result.n == 300 and result.target == TARGET
    assert result.success > result.control + 0.3
    assert result.success > 0.5 and result.control < 0.25
    assert [a for a, _, _ in result.curve] == [0.1, 0.3]
    assert result.curve[1][1] > result.curve[0][1]  # the same patch shown larger works better
    assert set(result.metrics()) >= {"success", "control", "success@0.1", "control@0.3"}


def test_a_larger_patch_does_at_least_as_well_with_the_same_seed(digits):
    _, test = digits
    small = fitted_patch(0.1).evaluate(test, n=300)
    large = fitted_patch(0.3).evaluate(test, n=300)
    assert large.success >= small.success
    assert large.success > small.success + 0.1


def test_target_class_images_are_left_out_of_the_evaluation(digits):
    _, test = digits
    x, y = test.get_batch(torch.arange(len(test)))
    result = fitted_patch(0.3).evaluate((x, y), n=None)
    assert result.n == int((y != TARGET).sum())
    with pytest.raises(DataError, match="needs labels"):
        fitted_patch(0.3).evaluate(x)


def test_a_normalize_wrapped_model_gets_the_same_patch(digits):
    train, _ = digits
    model = trained_model()
    mean, std = 0.2, 0.4

    class ExpectsNormalized(torch.nn.Module):
        def forward(self, z):
            return model(z * std + mean)

    wrapped = Normalize(ExpectsNormalized(), [mean], [std])
    plain = make_patch(model, steps=25).fit(train)
    other = make_patch(wrapped, steps=25).fit(train)
    assert torch.allclose(plain.patch, other.patch, atol=1e-3)


def test_same_seed_same_patch_and_loaders_work(digits):
    train, _ = digits
    a = make_patch(steps=10).fit(train)
    b = make_patch(steps=10).fit(train)
    assert torch.equal(a.patch, b.patch)
    loader = torch.utils.data.DataLoader(train, batch_size=32, shuffle=False)
    c = make_patch(steps=10).fit(loader)
    assert c.patch.shape == a.patch.shape and not torch.equal(c.patch, a.patch)


def test_save_and_load_round_trip_exactly(tmp_path):
    attack = fitted_patch(0.3)
    attack.save(tmp_path / "patch.pt")
    attack.save(tmp_path / "patch.png")
    fresh = make_patch()
    fresh.load(tmp_path / "patch.pt")
    assert torch.equal(fresh.patch, attack.patch) and torch.equal(fresh.mask, attack.mask)
    assert fresh.image_size == (8, 8) and fresh.channels == 1
    from_png = make_patch(image_size=8, channels=1).load(tmp_path / "patch.png")
    assert torch.equal(from_png.patch, (attack.patch * 255).round() / 255)  # 8-bit, exactly
    assert torch.equal(from_png.mask, attack.mask)
    from_png.save(tmp_path / "again.png")
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "patch.png").read_bytes()
    with pytest.raises(CheckpointError, match="area"):
        make_patch(area=0.2).load(tmp_path / "patch.pt")
    with pytest.raises(ConfigError, match="image size"):
        make_patch().load(tmp_path / "patch.png")
    with pytest.raises(ConfigError, match=r"\.png or \.pt"):
        attack.save(tmp_path / "patch.jpg")


def test_figure_shows_the_patch_and_predictions(digits):
    import matplotlib.pyplot as plt

    _, test = digits
    x, y = test.get_batch(torch.arange(6))
    fig = fitted_patch(0.3).figure(x, y)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == f"patch -> {TARGET}"
    assert sum(t.startswith("patched:") for t in titles) == 6
    plt.close(fig)
    fig = fitted_patch(0.3).evaluate(test, n=50, areas=[0.1, 0.3]).curve_figure()
    assert len(fig.axes[0].lines) >= 2
    plt.close(fig)


def test_probability_loss_is_the_mean_target_probability_and_spares_hopeless_images():
    attack = make_patch(loss="probability")
    # Three images: hopeless (target far behind), on the boundary, already fooled.
    logits = torch.zeros(3, 10)
    logits[0, 0] = 12.0
    logits[1, 0] = 1.0
    logits[1, TARGET] = 1.0
    logits[2, TARGET] = 12.0
    logits.requires_grad_(True)
    loss = attack._loss(logits)
    probs = torch.softmax(logits.detach(), 1)[:, TARGET]
    assert torch.allclose(loss.detach(), -probs.mean())
    (grad,) = torch.autograd.grad(loss, logits)
    push = -grad[:, TARGET]  # how hard each image pulls the target logit up
    assert push[1] > 10 * push[0] and push[1] > 10 * push[2]
    # Cross-entropy does the opposite on the hopeless image: it pulls hardest there.
    ce = make_patch(loss="ce")._loss(logits)
    (ce_grad,) = torch.autograd.grad(ce, logits)
    assert -ce_grad[0, TARGET] > -ce_grad[1, TARGET] > -ce_grad[2, TARGET]


def test_a_probability_loss_patch_beats_its_control(digits):
    train, test = digits
    result = make_patch(loss="probability").fit(train).evaluate(test, n=300)
    assert result.success > result.control + 0.3


def _hopeless_linear_model() -> torch.nn.Module:
    """Target logit 4 * sum(pixels) - 86 on 8x8 images, other logits 0: on dim images with
    a mid-grey patch Pr(target) is about 1e-14, yet a white patch makes it about 1."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.zero_()
        model[1].weight[TARGET] = 4.0
        model[1].bias[TARGET] = -86.0
    return model


def test_the_probability_loss_gets_going_where_the_target_starts_hopeless():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(256, 1, 8, 8, generator=generator) * 0.2
    labels = torch.randint(0, 10, (256,), generator=generator)
    data = (images, labels)
    model = _hopeless_linear_model()
    options = dict(loss="probability", area=0.3, scale=(1.0, 1.0), steps=60, lr=0.3)
    options.update(image_size=8, channels=1)

    # The raw gradient is ~1e-14: plain SGD at the same lr leaves the patch where it was,
    # and so does Adam (eps 1e-8) when the first-step scaling is switched off.
    sgd = make_patch(model, optimizer="sgd", **options)
    unscaled = make_patch(model, **options)
    unscaled._gradient_scale = lambda first_grad: 1.0
    for stalled, tolerance in ((sgd, 1e-6), (unscaled, 1e-3)):
        start = stalled.patch.clone()
        stalled.fit(data)
        assert (stalled.patch - start).abs().max() < tolerance
        assert stalled.evaluate(data, n=None).success == 0.0

    adam = make_patch(model, **options).fit(data)
    assert adam.evaluate(data, n=None).success > 0.9


def test_the_gradient_scale_gives_adam_unit_rms_and_leaves_sgd_alone():
    grad = torch.full((1, 4, 4), 3e-13)
    assert math.isclose(make_patch()._gradient_scale(grad) * 3e-13, 1.0, rel_tol=1e-5)
    assert make_patch(optimizer="sgd")._gradient_scale(grad) == 1.0
    assert make_patch()._gradient_scale(torch.zeros(1, 4, 4)) == 1.0
    assert make_patch()._gradient_scale(torch.full((1, 4, 4), 1e-30)) == 1e15


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"area": 1.5}, ConfigError, "area must be a fraction"),
        ({"area": 0}, ConfigError, "area must be a fraction"),
        ({"shape": "hexagon"}, ConfigError, "shape must be"),
        ({"scale": (1.2, 0.8)}, ConfigError, "scale must be"),
        ({"rotation": -5}, ConfigError, "rotation must be"),
        ({"location": "corner"}, ConfigError, "location must be"),
        ({"steps": 0}, ConfigError, "steps must be"),
        ({"batch_size": 2.5}, ConfigError, "batch_size must be"),
        ({"lr": -1}, ConfigError, "lr must be"),
        ({"loss": "hinge"}, ConfigError, "loss must be"),
        ({"parameterization": "tanh"}, ConfigError, "parameterization must be"),
        ({"area": 0.5, "image_size": 8, "channels": 1}, ConfigError, "does not fit"),
        ({"location": (0, 0), "image_size": 28, "channels": 1}, ConfigError, "location=(0.0, 0.0)"),
    ],
)
def test_bad_arguments_give_clear_errors(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_patch(**kwargs)


def test_bad_data_and_targets_give_clear_errors(digits):
    train, test = digits
    with pytest.raises(ConfigError, match="target=12 but the model has 10 outputs"):
        AdversarialPatch(trained_model(), 12, area=0.2, steps=2, progress=False).fit(train)
    attack = fitted_patch(0.3)
    with pytest.raises(DataError, match=r"made for \(1, 8, 8\)"):
        attack.apply(torch.rand(2, 1, 28, 28))
    with pytest.raises(DataError, match="float images"):
        attack.apply(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="no patch yet"):
        make_patch().apply(torch.rand(2, 1, 8, 8))
    with pytest.raises(ConfigError, match=r"area 0\.9"):
        attack.evaluate(test, n=20, areas=[0.9])
    x = test.get_batch(torch.arange(4))[0]
    with pytest.raises(DataError, match="placement is for 3 images"):
        attack.apply(x, Placement(torch.ones(3), torch.zeros(3), torch.zeros(3, 2)))


def test_place_patch_is_the_identity_paste_at_scale_one_without_rotation():
    # a 4x4 patch whose side spans exactly 4 pixels lands on 4x4 pixels unchanged
    images = torch.zeros(1, 1, 8, 8)
    patch = torch.arange(16.0).view(1, 4, 4) / 16
    mask = torch.ones(1, 4, 4)
    placement = Placement(torch.ones(1), torch.zeros(1), torch.zeros(1, 2))
    out, placed = place_patch(images, patch, mask, 4.0, placement)
    assert torch.allclose(out[0, 0, 2:6, 2:6], patch[0], atol=1e-6)
    assert float(placed.sum()) == pytest.approx(16.0, abs=1e-4)


def test_place_patch_takes_one_texture_per_image():
    images = torch.zeros(3, 1, 8, 8)
    textures = torch.stack([torch.full((1, 4, 4), v) for v in (0.2, 0.5, 0.9)])
    mask = torch.ones(1, 4, 4)
    placement = Placement(torch.ones(3), torch.zeros(3), torch.zeros(3, 2))
    out, _ = place_patch(images, textures, mask, 4.0, placement)
    for i, value in enumerate((0.2, 0.5, 0.9)):
        assert torch.allclose(out[i, 0, 2:6, 2:6], torch.full((4, 4), value), atol=1e-6)
    shared, _ = place_patch(images, textures[1], mask, 4.0, placement)
    each, _ = place_patch(images, textures[1].expand(3, -1, -1, -1), mask, 4.0, placement)
    assert torch.equal(shared, each)
    with pytest.raises(DataError, match="2 per-image patches for 3 images"):
        place_patch(images, textures[:2], mask, 4.0, placement)
