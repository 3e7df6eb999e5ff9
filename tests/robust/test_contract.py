"""One attack contract: FGSM, PGD, an AdvGAN and a patch measured side by side in one report."""

import math

import pytest
import torch

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.runtime import model_mode
from counterfeit.robust import (
    AdvGANAttack,
    Attack,
    GradientAttack,
    PatchAttack,
    RobustnessReport,
    evaluate,
    evaluate_patch,
    fgsm,
    pgd,
)
from tests.robust.conftest import (
    ADVGAN_EPS,
    TARGET,
    fitted_patch,
    make_patch,
    sklearn_digits,
    trained_advgan,
    trained_model,
)


@pytest.fixture(scope="module")
def digits():
    _, test = sklearn_digits()
    return test.get_batch(torch.arange(300))


def predict(model, images):
    with torch.no_grad():
        return model(images).argmax(1)


def accuracy(model, images, y):
    return float((predict(model, images) == y).float().mean())


def test_one_report_measures_gradient_attacks_an_advgan_and_a_patch_side_by_side(digits, tmp_path):
    x, y = digits
    model = trained_model()
    advgan = trained_advgan()[0]
    patch = fitted_patch(0.3)
    untrained = make_patch(image_size=8, channels=1)
    eps = [0.0, 0.1, ADVGAN_EPS]
    report = evaluate(
        model,
        (x, y),
        attacks={
            "fgsm": GradientAttack(fgsm),
            "pgd": GradientAttack(pgd, steps=10, generator=torch.Generator().manual_seed(0)),
            "advgan": AdvGANAttack(advgan),
            "patch": PatchAttack(patch),
            "untrained patch": PatchAttack(untrained, texture=untrained.patch),
        },
        eps=eps,
        corruptions=None,
        seed=0,
    )
    # gradient attacks on the eps curve: PGD's ten steps do at least as well as FGSM's one
    assert all(p <= f for p, f in zip(report.attacks["pgd"], report.attacks["fgsm"]))
    assert report.attacks["pgd"][1] < report.clean_accuracy - 0.3
    # the AdvGAN on the same curve: its own images at its eps, projected onto the smaller ball
    assert report.attacks["advgan"][2] == pytest.approx(accuracy(model, advgan.generate(x), y))
    with torch.no_grad(), model_mode(advgan.generator, False):
        projected = (x + advgan.generator(x).clamp(-0.1, 0.1)).clamp(0, 1)
    assert report.attacks["advgan"][1] == pytest.approx(accuracy(model, projected, y))
    assert report.attacks["advgan"][2] < report.clean_accuracy - 0.5
    assert report.attacks["advgan"][0] == report.clean_accuracy  # eps 0: no attack
    # the worst case covers the eps-curve attacks, not the patches
    assert set(report.attacks) == {"fgsm", "pgd", "advgan"}
    assert report.worst_case[2] <= min(report.attacks[a][2] for a in report.attacks)
    # the patches on their own budget, the area, with targeted success
    trained, plain = report.curves["patch"], report.curves["untrained patch"]
    assert trained.budget == "area" and trained.budgets == [0.3]
    assert trained.targeted_success[0] > plain.targeted_success[0] + 0.4
    assert trained.accuracy[0] < report.clean_accuracy - 0.4
    others = y != TARGET
    clean_hits = (predict(model, x) == TARGET) & others
    assert trained.clean_success == int(clean_hits.sum()) / int(others.sum())
    assert report.targeted_success == {}  # no targeted attack on the eps curve
    # one report: metrics, markdown and JSON carry all of them
    metrics = report.metrics()
    assert metrics["advgan/eps_0.25"] == report.attacks["advgan"][2]
    assert metrics["patch/area_0.3"] == trained.accuracy[0]
    assert metrics["patch/targeted_success/area_0.3"] == trained.targeted_success[0]
    text = report.to_markdown()
    assert f"| patch | area 0.3 | {trained.accuracy[0]:.4f} |" in text
    assert "| eps | fgsm | pgd | advgan | worst case |" in text
    assert report.settings["attacks"]["advgan"] == "AdvGAN(eps=0.25)"
    report.to_json(tmp_path / "report.json")
    assert RobustnessReport.from_json(tmp_path / "report.json") == report


def test_a_targeted_attack_reports_targeted_success_among_the_other_classes(digits):
    x, y = digits
    model = trained_model()
    attack = GradientAttack(
        pgd, target=TARGET, steps=10, generator=torch.Generator().manual_seed(1)
    )
    report = evaluate(
        model, (x, y), {"pgd->3": attack}, eps=[0.0, 0.1, 0.3], corruptions=None, batch_size=1000
    )
    generator = torch.Generator().manual_seed(1)  # the same draws, in evaluate's order
    goal, others = torch.full_like(y, TARGET), y != TARGET
    expected = [float(((predict(model, x) == TARGET) & others).sum()) / int(others.sum())]
    for e in (0.1, 0.3):
        x_adv = pgd(model, x, goal, e, steps=10, targeted=True, generator=generator)
        hits = (predict(model, x_adv) == TARGET) & others
        expected.append(int(hits.sum()) / int(others.sum()))
    assert report.targeted_success["pgd->3"] == pytest.approx(expected, abs=0)
    assert expected[0] < 0.05 < expected[1] < expected[2] and expected[2] > 0.8
    assert report.settings["attacks"]["pgd->3"] == "pgd(steps=10, target=3)"


def test_evaluate_patch_counts_what_it_documents(digits):
    attack = fitted_patch(0.3)
    _, test = sklearn_digits()
    x, y = test.get_batch(torch.arange(len(test)))
    images = x[y != TARGET][:100]
    result = evaluate_patch(attack, (x, y), n=100, areas=[0.2], trials=2, batch_size=32, seed=5)
    noise = torch.rand(attack.patch.shape, generator=torch.Generator().manual_seed(5 + 10_007))

    def success(texture, scale):
        generator, hits = torch.Generator().manual_seed(5), 0
        for _ in range(2):  # trials
            for start in range(0, 100, 32):
                batch = images[start : start + 32]
                placement = attack.sample_placement(len(batch), generator, scale=scale)
                patched = attack.apply(batch, placement, patch=texture)
                hits += int((predict(attack.model, patched) == TARGET).sum())
        return hits / 200

    fixed = math.sqrt(0.2 / 0.3)
    assert result.n == 100 and result.trials == 2
    assert result.success == success(attack.patch, None)
    assert result.control == success(noise, None)
    assert result.curve == [(0.2, success(attack.patch, fixed), success(noise, fixed))]
    clean = int((predict(attack.model, images) == TARGET).sum()) / 100
    assert result.clean_target == clean
    assert result.success > result.control + 0.4
    assert set(result.report.curves) == {
        "patch",
        "control",
        "patch fixed-scale",
        "control fixed-scale",
    }
    assert "report" not in result.to_dict()


def test_plain_functions_and_custom_attacks_meet_the_contract(digits):
    x, y = digits
    model = trained_model()

    def darken(model, images, labels, eps):
        return (images - eps).clamp(0, 1)

    class Brighten(Attack):
        def __call__(self, model, images, labels, budget):
            return (images + budget).clamp(0, 1)

    report = evaluate(
        model, (x, y), {"darken": darken, "brighten": Brighten()}, eps=[0.5], corruptions=None
    )
    assert report.attacks["darken"] == [pytest.approx(accuracy(model, (x - 0.5).clamp(0, 1), y))]
    assert report.attacks["brighten"] == [pytest.approx(accuracy(model, (x + 0.5).clamp(0, 1), y))]
    assert report.settings["attacks"] == {"darken": "darken", "brighten": "Brighten"}


class _Unbudgeted(Attack):
    budget = "area"

    def __call__(self, model, images, labels, budget):
        return images


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: GradientAttack(pgd, stepz=3), "unknown option(s) stepz for pgd"),
        (lambda: GradientAttack(lambda m, x, y, eps: x, target=3), "has no targeted mode"),
        (lambda: GradientAttack(pgd, target=-1), "target must be a class index"),
        (lambda: GradientAttack(pgd, target=3, targeted=True), "give target=CLASS alone"),
        (lambda: AdvGANAttack(trained_model()), "AdvGANAttack needs an AdvGAN"),
        (lambda: PatchAttack(fitted_patch(0.3), areas=[0.9]), "area 0.9"),
        (lambda: PatchAttack(make_patch()), "no patch yet"),
        (lambda: evaluate(trained_model(), _data(), {"x": 3}), "attack 'x' is not callable"),
        (lambda: evaluate(trained_model(), _data(), {"x": _Unbudgeted()}), "lists none"),
    ],
)
def test_attacks_that_break_the_contract_are_config_errors(make, message):
    with pytest.raises(ConfigError) as info:
        make()
    assert message in str(info.value)


def _data():
    _, test = sklearn_digits()
    return test.get_batch(torch.arange(8))
