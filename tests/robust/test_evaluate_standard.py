"""evaluate() by the field's standard: AutoAttack's stage table, L2 balls, sanity flags."""

import itertools

import pytest
import torch

from counterfeit.gan.errors import ConfigError
from counterfeit.robust import RobustnessReport, RobustnessWarning, evaluate
from tests.robust.conftest import Quantised, sklearn_digits, trained_model

FAST = {"autoattack": {"steps": 10, "queries": 200}}


@pytest.fixture(scope="module")
def digits():
    _, test = sklearn_digits()
    return test.get_batch(torch.arange(100))


@pytest.fixture(scope="module")
def autoattack_report(digits):
    return evaluate(
        trained_model(),
        digits,
        attacks=["pgd", "autoattack"],
        eps=[0.0, 0.05, 0.1],
        corruptions=None,
        attack_options=FAST,
    )


def test_the_stage_table_falls_stage_by_stage_to_the_reported_accuracy(autoattack_report):
    report = autoattack_report
    for i, eps in enumerate(report.eps[1:], start=1):
        table = report.stages["autoattack"][f"{eps:.6g}"]
        assert [stage for stage, _ in table] == ["clean", "apgd-ce", "apgd-t", "square"]
        accuracies = [accuracy for _, accuracy in table]
        assert accuracies[0] == pytest.approx(report.clean_accuracy)
        assert all(b <= a for a, b in itertools.pairwise(accuracies))
        assert accuracies[-1] == pytest.approx(report.attacks["autoattack"][i])
    assert report.attacks["autoattack"][-1] < report.clean_accuracy - 0.2


def test_autoattack_is_no_weaker_than_pgd_and_reports_its_stages(autoattack_report, tmp_path):
    report = autoattack_report
    assert all(a <= p for a, p in zip(report.attacks["autoattack"], report.attacks["pgd"]))
    markdown = report.to_markdown()
    assert "## autoattack: robust accuracy after each stage" in markdown
    assert "| apgd-t |" in markdown
    metrics = report.metrics()
    assert metrics["autoattack/square/eps_0.1"] == pytest.approx(report.attacks["autoattack"][-1])
    report.to_json(tmp_path / "report.json")
    assert RobustnessReport.from_json(tmp_path / "report.json").stages == {
        "autoattack": {k: [list(row) for row in v] for k, v in report.stages["autoattack"].items()}
    }


def test_l2_balls_take_budgets_above_one_and_refuse_linf_only_attacks(digits):
    report = evaluate(
        trained_model(),
        digits,
        attacks=["pgd", "apgd-ce"],
        eps=[0.0, 0.5, 2.0],
        norm="L2",
        corruptions=None,
        attack_options={"pgd": {"steps": 10}, "apgd-ce": {"steps": 10}},
    )
    assert report.norm == "2"
    assert report.attacks["apgd-ce"][-1] < report.attacks["apgd-ce"][1] < report.clean_accuracy
    assert "L2" in report.to_markdown()
    with pytest.raises(ConfigError, match="fgsm is an L-inf attack"):
        evaluate(trained_model(), digits, attacks=["fgsm"], eps=[0.5], norm="L2")
    with pytest.raises(ConfigError, match=r"in \[0, 1\] \(L-inf"):
        evaluate(trained_model(), digits, attacks=["pgd"], eps=[2.0], corruptions=None)


def test_masked_gradients_are_flagged_and_square_breaks_them(digits):
    masked = Quantised(trained_model()).eval()
    with pytest.warns(RobustnessWarning, match="zero-gradients") as caught:
        report = evaluate(
            masked,
            digits,
            attacks=["pgd", "square"],
            eps=[0.0, 0.1, 0.2],
            corruptions=None,
            attack_options={"square": {"queries": 300}},
        )
    assert {"zero-gradients", "black-box-wins"} <= set(report.flags)
    flagged = [w for w in caught if str(w.message).startswith("[")]
    assert len(flagged) >= 2 and {w.filename for w in flagged} == {__file__}  # at the caller
    assert report.attacks["square"][-1] < report.attacks["pgd"][-1] - 0.2
    assert "**Sanity flags:" in report.to_markdown()
    assert report.metrics()["sanity_flags"] == len(report.flags)


def test_minimum_norm_attacks_report_a_median_distance_inside_the_broken_budgets(digits):
    report = evaluate(
        trained_model(),
        digits,
        attacks=["pgd"],
        eps=[0.0, 0.3],
        corruptions=None,
        minimum_norm=["deepfool", "cw"],
        attack_options={"cw": {"steps": 100, "search_steps": 4, "initial_const": 1.0}},
    )
    for name in ("deepfool", "cw"):
        sizes = report.minimum_norm[name]
        assert sizes["success"] > 0.8
        assert 0 < sizes["median_linf"] <= sizes["median_l2"] < 8
    assert "## Minimum-norm attacks" in report.to_markdown()
    assert report.metrics()["cw/median_l2"] == report.minimum_norm["cw"]["median_l2"]
    with pytest.raises(ConfigError, match="unknown minimum-norm attack"):
        evaluate(trained_model(), digits, minimum_norm=["fab"], corruptions=None)
    with pytest.raises(ConfigError, match=r"attack_options\.cw: unknown option"):
        evaluate(trained_model(), digits, minimum_norm=["cw"], attack_options={"cw": {"x": 1}})


def test_a_plain_model_under_strong_attacks_raises_no_flag(autoattack_report):
    assert autoattack_report.flags == []
