"""The mnist-anomaly recipe end to end on the embedded MNIST digits: every method's rounds,
MLflow metrics, figures, a shipped detector, and a resume that refits only the missing round
to the same numbers."""

import json

import pytest
from mlflow import MlflowClient

from counterfeit.gan.errors import ConfigError
from counterfeit.recipes import load_recipe, run_recipe
from counterfeit.robust.anomaly import load_detector

TINY = [
    "classes=[0, 1]",
    "methods=[pca, knn, autoencoder]",
    "detectors.autoencoder={steps: 40, width: 8, latent_dim: 8}",
]


@pytest.mark.slow  # its file runs first: see conftest
def test_mnist_anomaly_reports_every_method_and_resumes_a_lost_round(tmp_path, mlflow_uri):
    out = tmp_path / "run"
    summary = run_recipe(load_recipe("mnist-anomaly", TINY), out=out)
    metrics = summary["metrics"]
    for method in ("pca", "knn"):  # the plain baselines tell these digits apart well
        assert metrics[f"{method}/auroc_mean"] > 0.95
        assert metrics[f"{method}/auroc/class_0"] > 0.95
    # the threshold is set on normal images at a 5 % false alarm: the test's normal images agree
    assert all(0 < metrics[f"{m}/false_alarm_rate_mean"] < 0.2 for m in ("pca", "knn"))
    rounds = summary["rounds"]["pca"]
    assert [r["target"] for r in rounds] == [0, 1]
    assert rounds[0]["n_normal_test"] + rounds[0]["n_anomaly_test"] == 1000

    plots = {p.name for p in (out / "plots").iterdir()}
    assert {"auroc_per_class.png", "roc_class_0.png", "pca_histogram_class_0.png"} <= plots
    assert "pca_top_anomalies_class_0.png" in plots
    assert "knn_top_anomalies_class_0.png" not in plots  # knn rebuilds nothing: no residuals
    assert "| pca |" in (out / "anomaly.md").read_text()
    detector = load_detector(out / "detectors" / "pca-class-0.pt")
    assert detector.threshold == pytest.approx(rounds[0]["threshold"])

    run = MlflowClient(tracking_uri=mlflow_uri).get_run(summary["mlflow"]["run_id"])
    assert run.data.metrics["pca/auroc/class_1"] == pytest.approx(rounds[1]["auroc"])

    lost = out / "anomaly" / "autoencoder" / "class-1.json"
    before = json.loads(lost.read_text())
    kept = out / "anomaly" / "pca" / "class-0.json"
    kept_mtime = kept.stat().st_mtime_ns
    lost.unlink()
    again = run_recipe(load_recipe("mnist-anomaly", TINY), out=out, resume=True)
    after = json.loads(lost.read_text())
    assert after["auroc"] == pytest.approx(before["auroc"], abs=1e-6)  # refitted alike
    assert kept.stat().st_mtime_ns == kept_mtime  # finished rounds are read back, not refitted
    assert again["metrics"]["autoencoder/auroc_mean"] == pytest.approx(
        metrics["autoencoder/auroc_mean"], abs=1e-6
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("methods=[pca, anogann]", "unknown anomaly detector 'anogann'"),
        ("detectors.pca={n_components: 3}", "pca has no setting 'n_components'"),
        ("classes=[0, 12]", r"classes \[12\] are not in mnist-small"),
    ],
)
def test_bad_settings_are_named_before_anything_runs(tmp_path, override, message):
    loaded = load_recipe("mnist-anomaly", [override])
    with pytest.raises(ConfigError, match=message):
        run_recipe(loaded, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()
