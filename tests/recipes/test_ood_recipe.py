"""The digits-ood recipe: shifted inputs hurt the classifier, and a detector fitted on its
training data flags the strong shifts while clean test images stay near the false-alarm
rate it was calibrated for."""

import pytest
from mlflow import MlflowClient

from counterfeit.gan.errors import ConfigError
from counterfeit.recipes import load_recipe, run_recipe
from counterfeit.robust.anomaly import load_detector

TINY = [
    "methods=[pca, knn]",
    "classifier.train_steps=150",
    "shifts={fgsm: [0.3], pgd: [0.3], pgd_steps: 5, patch_steps: 10, "
    "corruptions: [impulse_noise, gaussian_blur]}",
    "evaluation.n=150",
]


@pytest.mark.slow  # its file runs first: see conftest
def test_digits_ood_tabulates_who_flags_what(tmp_path, mlflow_uri):
    out = tmp_path / "run"
    summary = run_recipe(load_recipe("digits-ood", TINY), out=out)
    accuracy, auroc, flagged = summary["accuracy"], summary["auroc"], summary["flagged"]
    assert set(accuracy) == {
        "clean", "fgsm_0.3", "pgd_0.3", "patch", "impulse_noise", "gaussian_blur", "mnistm-style",
    }  # fmt: skip
    assert accuracy["clean"] > 0.8 and accuracy["pgd_0.3"] < 0.3  # the attack works
    assert accuracy["mnistm-style"] < accuracy["clean"] - 0.2  # the other domain hurts
    for shift in ("fgsm_0.3", "pgd_0.3", "mnistm-style"):  # strong shifts are plain to see
        assert auroc["pca"][shift] > 0.9, (shift, auroc["pca"])
    assert "clean" not in auroc["pca"]
    assert flagged["pca"]["clean"] < 0.15  # calibrated at 5 % on held-out training images
    assert flagged["pca"]["pgd_0.3"] > 0.5
    assert {p.name for p in (out / "plots").iterdir()} == {"ood_auroc.png", "shift_examples.png"}
    assert "| pgd_0.3 |" in (out / "ood.md").read_text()
    assert load_detector(out / "detectors" / "pca.pt").threshold is not None
    run = MlflowClient(tracking_uri=mlflow_uri).get_run(summary["mlflow"]["run_id"])
    assert run.data.metrics["pca/auroc/pgd_0.3"] == pytest.approx(auroc["pca"]["pgd_0.3"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("shifts.corruptions=[fog_of_war]", "unknown corruption"),
        ("methods=[pcaa]", "unknown anomaly detector 'pcaa'"),
    ],
)
def test_bad_shifts_and_methods_are_named_before_anything_runs(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        run_recipe(load_recipe("digits-ood", [override]), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
