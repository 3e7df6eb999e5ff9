"""AutoAttack's ensemble: stages on the survivors, the per-image worst case, the errors."""

import pytest
import torch

from counterfeit.gan.errors import ConfigError
from counterfeit.robust.apgd import apgd
from counterfeit.robust.autoattack import autoattack
from tests.robust.conftest import sklearn_digits, trained_model

EPS = 0.1


@pytest.fixture(scope="module")
def standard_run():
    _, test = sklearn_digits()
    x, y = test.get_batch(torch.arange(120))
    model = trained_model()
    seen = []
    result = autoattack(
        model, x, y, EPS, steps=20, queries=300, progress=lambda s, acc: seen.append((s, acc))
    )
    return model, x, y, result, seen


def test_an_image_is_robust_only_if_every_stage_left_it_correct(standard_run):
    model, x, y, result, seen = standard_run
    with torch.no_grad():
        clean_right = model(x).argmax(1) == y
        adv_right = model(result.adversarial).argmax(1) == y
    assert [s for s, _ in result.stages] == ["apgd-ce", "apgd-t", "square"] == [s for s, _ in seen]
    assert torch.equal(result.robust, adv_right)  # the stored image is the one that fooled it
    assert not bool((result.robust & ~clean_right).any())
    assert torch.equal(result.adversarial[~clean_right], x[~clean_right])
    accuracies = [result.clean_accuracy] + [a for _, a in result.stages]
    assert accuracies == sorted(accuracies, reverse=True)
    assert result.stages[-1][1] == pytest.approx(result.robust_accuracy)
    broken = [who for who, r in zip(result.fooled_by, result.robust.tolist()) if not r]
    assert None not in broken and set(broken) <= {"clean", "apgd-ce", "apgd-t", "square"}
    assert float((result.adversarial - x).abs().max()) <= EPS + 1e-6


def test_the_ensemble_is_at_least_as_strong_as_its_first_attack_alone(standard_run):
    model, x, y, result, _ = standard_run
    with torch.no_grad():
        alone = (model(apgd(model, x, y, EPS, steps=20)).argmax(1) == y).float().mean().item()
    assert result.robust_accuracy <= alone
    assert result.robust_accuracy < result.clean_accuracy - 0.3


def test_unsupported_settings_are_named():
    x, y = torch.rand(2, 1, 8, 8), torch.zeros(2, dtype=torch.long)
    model = trained_model()
    with pytest.raises(ConfigError, match="version must be 'standard', 'rand' or 'custom'"):
        autoattack(model, x, y, EPS, version="fab")
    with pytest.raises(ConfigError, match="custom AutoAttack needs attacks from"):
        autoattack(model, x, y, EPS, version="custom", attacks=["fab-t"])
    standard_l2 = autoattack(model, x, y, 0.5, norm="2", steps=5, queries=20)
    assert [s for s, _ in standard_l2.stages] == ["apgd-ce", "apgd-t", "square"]
    custom = autoattack(model, x, y, 0.5, norm="2", version="custom", attacks=["apgd-ce"])
    assert [s for s, _ in custom.stages] == ["apgd-ce"]


class Counting(torch.nn.Module):
    """Counts the forward passes that take an input gradient."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.gradient_passes = model, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.gradient_passes += int(x.requires_grad)
        return self.model(x)


def test_the_rand_version_averages_each_gradient_over_twenty_passes():
    _, test = sklearn_digits()
    x, y = test.get_batch(torch.arange(30))
    counted = Counting(trained_model()).eval()
    apgd(counted, x, y, 0.02, steps=3, eot_iter=4)  # 0.02: few images break, so all 4 steps run
    assert counted.gradient_passes == (1 + 3) * 4
    result = autoattack(trained_model(), x, y, EPS, version="rand", steps=2)
    assert [stage for stage, _ in result.stages] == ["apgd-ce", "apgd-dlr"]
    assert result.robust_accuracy < result.clean_accuracy
