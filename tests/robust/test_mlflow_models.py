"""Models kept in MLflow load as --model: runs:/ and models:/ URIs, and recipes register them."""

import json

import pytest
import torch
from mlflow import MlflowClient

from counterfeit.gan.errors import CheckpointError
from counterfeit.gan.export import export_classifier
from counterfeit.gan.tracking import Tracker
from counterfeit.recipes.cli import main
from counterfeit.robust import digits_cnn, load_model


@pytest.fixture()
def registered(tmp_path, monkeypatch):
    """A tiny exported CNN logged to a run of a local SQLite store and registered as 'digits'."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    torch.manual_seed(0)
    model = digits_cnn(1, 10, 8).eval()
    path = export_classifier(model, torch.rand(2, 1, 8, 8), tmp_path / "m.pt2")
    tracker = Tracker(experiment="registry", uri=uri).start()
    tracker.log_artifact(path, "models")
    version = tracker.register_model("models/m.pt2", "digits")
    tracker.end("FINISHED")
    return model, tracker.run_id, version, uri


def test_runs_and_models_uris_load_the_logged_model(registered):
    model, run_id, version, uri = registered
    x = torch.rand(5, 1, 8, 8)
    expected = model(x)
    MlflowClient(uri).set_registered_model_alias("digits", "prod", version)
    for location in (
        f"runs:/{run_id}/models/m.pt2",
        f"models:/digits/{version}",
        "models:/digits@prod",
    ):
        assert torch.allclose(load_model(location)(x), expected, atol=1e-6), location


def test_bad_uris_are_named(registered):
    with pytest.raises(CheckpointError, match="cannot fetch models:/nothing/1 from MLflow"):
        load_model("models:/nothing/1")
    with pytest.raises(CheckpointError, match="expected models:/NAME/VERSION"):
        load_model("models:/digits/latest")
    _, run_id, _, _ = registered
    with pytest.raises(CheckpointError, match="cannot fetch runs:"):
        load_model(f"runs:/{run_id}/nowhere.pt2")


def test_a_recipe_registers_its_model_and_robustness_reads_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    out = tmp_path / "fgsm"
    tiny = [
        "train.steps=20",
        "train.progress=false",
        "evaluation.n=50",
        "evaluation.eps=[0.0,0.1]",
        "evaluation.corruptions=none",
        "evaluation.attack_options={pgd: {steps: 2}}",
        "tracking.register_as=digits",
    ]
    assert main(["run", "digits-fgsm", "--out", str(out), *[f"--set={o}" for o in tiny]]) == 0
    printed = capsys.readouterr().out
    (line,) = [x for x in printed.splitlines() if x.startswith("registered ")]
    model_uri = line.split(" as ")[1]
    assert model_uri.startswith("models:/digits-")
    report = tmp_path / "report"
    code = main(
        [
            "robustness",
            "--model",
            model_uri,
            "--data",
            "mnist-small",
            "--n",
            "50",
            "--eps",
            "0,0.1",
            "--corruptions",
            "none",
            "--out",
            str(report),
        ]
    )
    assert code == 0
    clean = json.loads((report / "summary.json").read_text())["metrics"]["clean_accuracy"]
    trained = json.loads((out / "summary.json").read_text())["metrics"]
    assert clean > 0.5 and any(v == pytest.approx(clean) for v in trained.values())
