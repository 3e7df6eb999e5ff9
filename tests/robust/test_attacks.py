"""FGSM, BIM and PGD: the math, the contract every attack keeps, and clear errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.gan.export import export_classifier, load_exported
from counterfeit.robust import Normalize, bim, fgsm, pgd, random_targets
from tests.robust.conftest import sklearn_digits, trained_model

ATTACKS = {
    "fgsm": lambda m, x, y, eps, **kw: fgsm(m, x, y, eps, **kw),
    "fgsm-rs": lambda m, x, y, eps, **kw: fgsm(
        m, x, y, eps, random_start=True, step_size=1.25 * eps, **kw
    ),
    "bim": lambda m, x, y, eps, **kw: bim(m, x, y, eps, steps=4, step_size=eps / 3, **kw),
    "pgd-linf": lambda m, x, y, eps, **kw: pgd(m, x, y, eps, steps=4, **kw),
    "pgd-l2": lambda m, x, y, eps, **kw: pgd(m, x, y, eps, steps=4, norm="2", **kw),
}


@pytest.fixture(scope="module")
def digits():
    _, test = sklearn_digits()
    return test.get_batch(torch.arange(128))


class Counting(nn.Module):
    """Counts forward passes of the wrapped model."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.model(x)


def test_fgsm_equals_the_hand_computed_step_on_a_linear_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x = torch.tensor([[[[0.2, 0.5], [0.9, 0.0]]], [[[0.4, 1.0], [0.3, 0.7]]]])
    y = torch.tensor([2, 0])
    eps = 0.1
    # d CE / dx = W^T (softmax(Wx + b) - onehot(y)), computed without autograd
    weight, bias = model[1].weight.detach(), model[1].bias.detach()
    p = torch.softmax(x.flatten(1) @ weight.T + bias, dim=1)
    grad = (p - F.one_hot(y, 3).float()) @ weight
    expected = (x.flatten(1) + eps * grad.sign()).clamp(0, 1).view_as(x)
    assert torch.equal(fgsm(model, x, y, eps), expected)
    # targeted: step down the loss of the target class
    target = torch.tensor([1, 1])
    grad_t = (p - F.one_hot(target, 3).float()) @ weight
    expected_t = (x.flatten(1) - eps * grad_t.sign()).clamp(0, 1).view_as(x)
    assert torch.equal(fgsm(model, x, target, eps, targeted=True), expected_t)
    # unclipped (the paper's Eq. 3)
    assert torch.allclose(fgsm(model, x, y, eps, clip=None), x + eps * grad.sign().view_as(x))


def test_untargeted_attacks_use_the_models_predictions_without_labels(digits):
    model = trained_model()
    x, y = digits
    predicted = model(x).argmax(1)
    assert bool((predicted != y).any())  # some are misclassified, so the choice matters
    assert torch.equal(fgsm(model, x, eps=0.1), fgsm(model, x, predicted, 0.1))
    assert not torch.equal(fgsm(model, x, eps=0.1), fgsm(model, x, y, 0.1))


@pytest.mark.parametrize("name", list(ATTACKS))
@pytest.mark.parametrize("clip", [(0.0, 1.0), (0.2, 0.8)])
def test_perturbation_stays_in_the_eps_ball_and_the_clip_range(name, clip, digits):
    model = trained_model()
    x, y = digits
    x = x.clamp(*clip)  # images with pixels exactly at both bounds
    eps = 0.6 if name == "pgd-l2" else 0.15
    x_adv = ATTACKS[name](model, x, y, eps, clip=clip)
    delta = (x_adv - x).flatten(1)
    size = delta.norm(dim=1) if name == "pgd-l2" else delta.abs().amax(1)
    assert bool((size <= eps + 1e-5).all())
    assert float(size.max()) > 0.9 * eps  # and it uses the budget
    assert bool((x_adv >= clip[0]).all()) and bool((x_adv <= clip[1]).all())
    assert x_adv.dtype == x.dtype and x_adv.shape == x.shape


@pytest.mark.parametrize("name", list(ATTACKS))
def test_eps_zero_returns_x(name, digits):
    x, y = digits
    out = ATTACKS[name](trained_model(), x, y, 0.0)
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()


class WithBatchNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Flatten(),
            nn.Linear(4 * 8 * 8, 10),
        )

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("name", list(ATTACKS))
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("train_mode", [False, True])
def test_mode_buffers_grads_and_input_are_left_alone(name, training, train_mode, digits):
    torch.manual_seed(0)
    model = WithBatchNorm().train(training)
    model.net[1].running_mean.fill_(0.3)
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    model.net[0].weight.grad = torch.full_like(model.net[0].weight, 7.0)
    x, y = digits
    x_before = x.clone()
    ATTACKS[name](model, x, y, 0.1, train_mode=train_mode)
    assert model.training is training and model.net[1].training is training
    assert all(torch.equal(v, buffers[k]) for k, v in model.named_buffers())
    assert torch.equal(model.net[0].weight.grad, torch.full_like(model.net[0].weight, 7.0))
    assert all(p.grad is None for n, p in model.named_parameters() if n != "net.0.weight")
    assert torch.equal(x, x_before) and not x.requires_grad


def test_attacks_run_the_model_in_eval_mode_unless_asked(digits):
    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(64, 10)

        def forward(self, x):
            seen.append(self.training)
            return self.linear(x.flatten(1))

    model = Probe().train()
    x, y = digits
    fgsm(model, x, y, 0.1)
    assert seen == [False] and model.training
    seen.clear()
    fgsm(model, x, y, 0.1, train_mode=True)
    assert seen == [True]


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda m, x, y: fgsm(m, x, y, -0.1), ConfigError, "eps must be a finite number >= 0"),
        (lambda m, x, y: pgd(m, x, y, float("nan")), ConfigError, "eps must be a finite number"),
        (lambda m, x, y: fgsm(m, x, y, 0.1, clip=(1, 0)), ConfigError, "clip_min must be <="),
        (
            lambda m, x, y: fgsm(m, x, y, 0.1, targeted=True, true_labels=y),
            ConfigError,
            "targets equal the true label",
        ),
        (lambda m, x, y: fgsm(m, x, None, 0.1, targeted=True), ConfigError, "needs y"),
        (lambda m, x, y: pgd(m, x, y, 0.1, steps=0), ConfigError, "steps must be an integer >= 1"),
        (lambda m, x, y: pgd(m, x, y, 0.1, step_size=-1.0), ConfigError, "step_size"),
        (lambda m, x, y: pgd(m, x, y, 0.1, norm="l1"), ConfigError, "norm must be 'inf' or '2'"),
        (lambda m, x, y: fgsm(m, x, y[:5], 0.1), DataError, "one entry per image"),
        (lambda m, x, y: fgsm(m, x * 4 - 2, y, 0.1), DataError, "robust.Normalize"),
        (lambda m, x, y: fgsm(m, (x * 255).byte(), y, 0.1), DataError, "divide uint8"),
        (lambda m, x, y: fgsm(m, x, y.float(), 0.1), DataError, "integer class indices"),
        (lambda m, x, y: fgsm(m, x, y + 10, 0.1), DataError, "labels must lie in [0, 9]"),
        (
            lambda m, x, y: fgsm(lambda t: (m(t), m(t)), x, y, 0.1),
            DataError,
            "must return logits",
        ),
        (
            lambda m, x, y: fgsm(m, x, y, 0.1, true_labels=y),
            ConfigError,
            "only used by targeted",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(call, error, message, digits):
    x, y = digits
    with pytest.raises(error) as info:
        call(trained_model(), x, y)
    assert message in str(info.value)


def test_pgd_and_bim_are_at_least_as_strong_as_fgsm(digits):
    model = trained_model()
    x, y = digits

    def accuracy(images):
        with torch.no_grad():
            return float((model(images).argmax(1) == y).float().mean())

    clean = accuracy(x)
    for eps in (0.05, 0.1, 0.2):
        after_fgsm = accuracy(fgsm(model, x, y, eps))
        assert after_fgsm < clean
        assert accuracy(pgd(model, x, y, eps, steps=10)) <= after_fgsm
        assert accuracy(bim(model, x, y, eps)) <= after_fgsm


def test_targeted_attacks_raise_the_targets_probability(digits):
    model = trained_model()
    x, y = digits
    target = random_targets(y, 10, torch.Generator().manual_seed(0))
    assert not bool((target == y).any())

    def target_probability(images):
        with torch.no_grad():
            return torch.softmax(model(images), 1).gather(1, target[:, None]).squeeze(1)

    before = target_probability(x)
    after = target_probability(fgsm(model, x, target, 0.1, targeted=True, true_labels=y))
    assert float((after > before).float().mean()) > 0.9
    x_pgd = pgd(model, x, target, 0.2, steps=20, targeted=True, true_labels=y)
    assert float((model(x_pgd).argmax(1) == target).float().mean()) > 0.5


def test_bim_takes_kurakins_number_of_steps(digits):
    x, y = digits
    model = Counting(trained_model())
    bim(model, x, y, 4 / 255)  # min(4 + 4, 1.25 * 4) = 5 iterations
    assert model.calls == 5
    model.calls = 0
    bim(model, x, y, 16 / 255)  # min(20, 20)
    assert model.calls == 20


def test_fgsm_random_start_takes_a_step_from_an_unclipped_random_point(digits):
    model = trained_model()
    x, y = digits
    runs = [
        fgsm(model, x, y, 0.1, random_start=True, generator=torch.Generator().manual_seed(5))
        for _ in range(2)
    ]
    assert torch.equal(*runs)
    # step_size = eps from a random start: unclipped pixels land strictly inside the ball
    # where the step opposes the start, so some are not on the surface (plain FGSM: all are)
    delta = (runs[0] - x)[(x > 0.1) & (x < 0.9)].abs()
    assert float(delta.max()) <= 0.1 + 1e-6 and float((delta < 0.1 - 1e-3).float().mean()) > 0.2
    plain = (fgsm(model, x, y, 0.1) - x)[(x > 0.1) & (x < 0.9)].abs()
    assert torch.allclose(plain, torch.full_like(plain, 0.1), atol=1e-6)


def test_pgd_random_start_is_reproducible_with_a_generator(digits):
    model = trained_model()
    x, y = digits
    runs = [pgd(model, x, y, 0.1, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(*runs)
    other = pgd(model, x, y, 0.1, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(runs[0], other)
    start_only = pgd(model, x, y, 0.1, steps=1, step_size=0.0, norm="2")
    assert bool((start_only - x).flatten(1).norm(dim=1).le(0.1 + 1e-6).all())


def test_normalize_keeps_eps_in_pixel_space(digits):
    model = trained_model()
    x, y = digits
    mean, std = [0.2], [0.25]
    # a network that expects normalized input: the trained one with normalization undone
    expects_normalized = nn.Sequential(Unnormalize(mean, std), model)
    wrapped = Normalize(expects_normalized, mean, std)
    assert torch.allclose(wrapped(x), model(x), atol=1e-5)
    delta = fgsm(wrapped, x, y, 0.1) - x
    assert float(delta.abs().max()) <= 0.1 + 1e-6
    inside = (x > 0.1) & (x < 0.9)  # pixels that clipping cannot shorten
    assert torch.allclose(delta[inside].abs(), torch.full_like(delta[inside], 0.1), atol=1e-6)
    assert torch.equal(fgsm(wrapped, x, y, 0.1), fgsm(model, x, y, 0.1))


class Unnormalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.mean, self.std = (
            torch.tensor(mean).view(1, -1, 1, 1),
            torch.tensor(std).view(1, -1, 1, 1),
        )

    def forward(self, z):
        return z * self.std + self.mean


@pytest.mark.parametrize(
    "mean, std, message",
    [([0.5, 0.5], [0.2], "mean has 2 values but std has 1"), ([0.5], [0.0], "std must be > 0")],
)
def test_normalize_rejects_bad_statistics(mean, std, message):
    with pytest.raises(ConfigError, match=message):
        Normalize(nn.Identity(), mean, std)


def test_normalize_names_a_channel_mismatch():
    with pytest.raises(DataError, match="statistics for 3 channels"):
        Normalize(nn.Identity(), [0.5] * 3, [0.2] * 3)(torch.rand(2, 1, 8, 8))


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attacks_work_under_cpu_bfloat16_autocast(name, digits):
    model = trained_model()
    x, y = digits
    eps = 0.6 if name == "pgd-l2" else 0.1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x_adv = ATTACKS[name](model, x, y, eps)
    assert x_adv.dtype == torch.float32 and bool(torch.isfinite(x_adv).all())
    delta = (x_adv - x).flatten(1)
    size = delta.norm(dim=1) if name == "pgd-l2" else delta.abs().amax(1)
    assert bool((size <= eps + 1e-5).all())
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean()
        attacked = (model(x_adv).argmax(1) == y).float().mean()
    assert attacked < clean - 0.1


def test_attacks_need_gradients_but_work_under_no_grad(digits):
    model = trained_model()
    x, y = digits
    with torch.no_grad():
        assert torch.equal(fgsm(model, x, y, 0.1), fgsm(model, x.clone(), y, 0.1))
    with torch.inference_mode(), pytest.raises(ConfigError, match="inference_mode"):
        fgsm(model, x, y, 0.1)


def test_exported_programs_are_attacked_like_the_module(tmp_path, digits):
    model = trained_model()
    x, y = digits
    exported = load_exported(export_classifier(model, x[:2], tmp_path / "m.pt2"))
    assert torch.allclose(fgsm(exported, x, y, 0.1), fgsm(model, x, y, 0.1), atol=1e-6)
    assert torch.allclose(
        pgd(exported, x, y, 0.1, random_start=False), pgd(model, x, y, 0.1, random_start=False)
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", list(ATTACKS))
def test_attacks_on_cuda_and_under_cuda_autocast(name, digits):
    model = trained_model().cuda()
    x, y = (t.cuda() for t in digits)
    eps = 0.6 if name == "pgd-l2" else 0.1
    x_adv = ATTACKS[name](model, x, y, eps)
    assert x_adv.device.type == "cuda"
    cpu = ATTACKS[name](trained_model(), *(t.cpu() for t in digits), eps)
    if name not in ("pgd-linf", "pgd-l2", "fgsm-rs"):  # deterministic ones agree with the CPU
        assert float((x_adv.cpu() != cpu).float().mean()) < 0.01
    with torch.autocast("cuda", dtype=torch.bfloat16):
        x_amp = ATTACKS[name](model, x, y, eps)
    assert x_amp.dtype == torch.float32 and float(x_amp.min()) >= 0 and float(x_amp.max()) <= 1
