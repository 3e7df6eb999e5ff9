"""AdvGAN (Xiao et al. 2018) on the shared GAN core: bounded perturbations, training, errors."""

import pytest
import torch

from counterfeit.gan.errors import ConfigError, DataError
from counterfeit.robust import AdvGAN, fgsm
from tests.robust.conftest import ADVGAN_EPS as EPS
from tests.robust.conftest import sklearn_digits, trained_advgan, trained_model


@pytest.fixture(scope="module")
def trained():
    """An AdvGAN trained for a few seconds against the 8x8 digits CNN."""
    return trained_advgan()


def fooled(model, x, x_adv, y):
    with torch.no_grad():
        right = model(x).argmax(1) == y
        return float((model(x_adv).argmax(1) != y)[right].float().mean())


def test_perturbation_respects_eps_and_the_image_range(trained):
    advgan, _, _, _ = trained
    _, test = sklearn_digits()
    x, _ = test.get_batch(torch.arange(200))
    x_adv = advgan.generate(x)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert float((x_adv - x).abs().max()) <= EPS + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    # an untrained generator too (tanh bound, not learned)
    fresh = AdvGAN(trained_model(), eps=0.05, channels=1, image_size=8)
    assert float((fresh.generate(x) - x).abs().max()) <= 0.05 + 1e-6


def test_a_smaller_eps_projects_the_perturbation_onto_its_ball(trained):
    advgan, model, _, _ = trained
    _, test = sklearn_digits()
    x, y = test.get_batch(torch.arange(200))
    own = advgan.generate(x)
    assert torch.equal(advgan.generate(x, eps=EPS), own)
    assert torch.equal(advgan.generate(x, eps=0.9), own)  # a larger ball changes nothing
    smaller = advgan.generate(x, eps=0.05)
    assert float((smaller - x).abs().max()) <= 0.05 + 1e-6
    # inside the smaller ball the perturbation is the generator's, clipped per pixel
    assert torch.allclose(smaller - x, (own - x).clamp(-0.05, 0.05), atol=1e-6)
    assert fooled(model, x, smaller, y) < fooled(model, x, own, y)
    with pytest.raises(ConfigError, match="eps must be a number >= 0"):
        advgan.generate(x, eps=-0.1)


def test_training_fools_the_model_well_beyond_noise_and_leaves_it_alone(trained):
    advgan, model, initial, result = trained
    _, test = sklearn_digits()
    x, y = test.get_batch(torch.arange(len(test)))
    rate = fooled(model, x, advgan.generate(x), y)
    noise = (x + EPS * torch.randint(0, 2, x.shape, generator=torch.Generator().manual_seed(0))
             .float().mul(2).sub(1)).clamp(0, 1)  # fmt: skip
    assert rate > 0.6 and rate > fooled(model, x, noise, y) + 0.4
    assert result.last_metrics["success"] > 0.5
    # the attacked model: not trained, not in the checkpoint, no grads, flags restored
    assert all(torch.equal(initial[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert not model.training
    assert not any(k.startswith("model.") for k in advgan.state_dict())
    assert advgan.init_args()["eps"] == EPS


def test_one_forward_pass_is_comparable_to_fgsm(trained):
    advgan, model, _, _ = trained
    _, test = sklearn_digits()
    x, y = test.get_batch(torch.arange(len(test)))
    assert (
        fooled(model, x, advgan.generate(x), y)
        >= fooled(model, x, fgsm(model, x, y, EPS), y) - 0.25
    )


def test_targeted_loss_pulls_toward_the_target():
    model = trained_model()
    advgan = AdvGAN(model, eps=EPS, channels=1, image_size=8, target=3)
    logits = torch.tensor([[5.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 4.0]])
    loss, success = advgan.adversarial_loss(logits, torch.tensor([0, 1]))
    # C&W: max(max_{i != t} Z_i - Z_t, -kappa) with kappa = 0 -> (5 - 1 + 0) / 2
    assert float(loss) == pytest.approx(2.0)
    assert success.tolist() == [0.0, 1.0]
    untargeted = AdvGAN(model, eps=EPS, channels=1, image_size=8)
    loss, success = untargeted.adversarial_loss(logits, torch.tensor([0, 3]))
    assert float(loss) == pytest.approx(((5 - 1) + max(4 - 0, 0)) / 2)
    assert success.tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps": 0}, "eps must be in"),
        ({"eps": 1.5}, "eps must be in"),
        ({"image_size": 30}, "multiple of 4"),
        ({"channels": 2}, "channels must be 1 or 3"),
        ({"gan_loss": "vanilla"}, "unknown gan_loss 'vanilla'"),
        ({"target": -1}, "target must be"),
        ({"adv_weight": -1.0}, "adv_weight must be"),
        ({"lr": 0}, "lr must be"),
    ],
)
def test_bad_arguments_give_clear_errors(kwargs, message):
    options = dict(eps=EPS, channels=1, image_size=8)
    options.update(kwargs)
    with pytest.raises(ConfigError, match=message):
        AdvGAN(trained_model(), **options)
    with pytest.raises(DataError, match="float images"):
        AdvGAN(trained_model(), eps=EPS, channels=1, image_size=8).generate(torch.zeros(2, 8, 8))
