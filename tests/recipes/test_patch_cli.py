"""`counterfeit patch` and the digits-patch / digits-advgan recipes, end to end on tiny settings."""

import json

import pytest
import torch
from mlflow import MlflowClient

from counterfeit.gan.export import export_classifier
from counterfeit.recipes.cli import main
from counterfeit.recipes.loader import load_recipe
from counterfeit.robust import AdversarialPatch
from tests.robust.conftest import one_torch_thread, sklearn_digits, trained_model  # noqa: F401


@pytest.fixture
def exported(tmp_path):
    _, test = sklearn_digits()
    return export_classifier(
        trained_model(), test.get_batch(torch.arange(2))[0], tmp_path / "m.pt2"
    )


def test_patch_command_writes_the_patch_curve_and_an_mlflow_run(exported, tmp_path, mlflow_uri):
    out = tmp_path / "patch"
    args = ["patch", "--model", str(exported), "--target", "3", "--data", "sklearn-digits"]
    args += ["--area", "0.3", "--scale", "0.9,1.1", "--rotation", "10", "--steps", "40"]
    args += ["--n", "120", "--areas", "0.1,0.3", "--loss", "probability", "--lr", "0.3"]
    args += ["--out", str(out)]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resolved_recipe"]["patch"]["loss"] == "probability"
    metrics = summary["metrics"]
    assert metrics["success"] > metrics["control"]
    assert {"success@0.1", "success@0.3", "control@0.3", "clean_accuracy"} <= set(metrics)
    assert {"patched_examples.png", "success_vs_area.png"} <= {
        p.name for p in (out / "plots").iterdir()
    }
    # the saved patch reloads exactly into a library attack
    options = dict(area=0.3, scale=(0.9, 1.1), rotation=10.0)
    attack = AdversarialPatch(trained_model(), 3, **options).load(out / "patch.pt")
    png = AdversarialPatch(trained_model(), 3, **options, image_size=8, channels=1)
    png.load(out / "patch.png")
    assert torch.equal(png.patch, (attack.patch * 255).round() / 255)
    client = MlflowClient(tracking_uri=mlflow_uri)
    run = client.get_run(summary["mlflow"]["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["success"] == pytest.approx(metrics["success"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "patch")}
    assert {"patch/patch.png", "patch/patch.pt"} <= artifacts


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--area", "1.5"], "area"),
        (["--area", "0.3"], "does not fit in a 8x8 image"),
        (["--scale", "0.8"], "--scale expects"),
        (["--areas", "0.1,big"], "--areas expects"),
        (["--target", "12", "--area", "0.2"], "target=12"),
    ],
)
def test_bad_patch_arguments_are_one_clear_message(exported, extra, message, capsys):
    args = ["patch", "--model", str(exported), "--target", "3", "--data", "sklearn-digits"]
    args += ["--steps", "2", "--n", "20", "--no-mlflow", *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_digits_patch_recipe_trains_its_own_classifier(tmp_path):
    out = tmp_path / "dp"
    overrides = [
        "classifier.train_steps=30",
        "data.n_train=600",
        "patch.steps=15",
        "patch.progress=false",
        "evaluation.n=60",
        "evaluation.areas=[0.1]",
        "tracking.enabled=false",
    ]
    assert main(["run", "digits-patch", "--out", str(out), *[f"--set={o}" for o in overrides]]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "models" / "classifier.pt2").is_file()
    assert summary["evaluation"]["n"] == 60 and summary["evaluation"]["target"] == 3
    assert 0 <= summary["metrics"]["success@0.1"] <= 1


def test_digits_advgan_recipe_compares_with_fgsm_and_pgd(tmp_path):
    out = tmp_path / "da"
    overrides = [
        "classifier.train_steps=30",
        "data.n_train=600",
        "train.steps=6",
        "train.progress=false",
        "train.checkpoint_every=3",
        "evaluation.n=64",
        "evaluation.pgd_steps=2",
        "tracking.enabled=false",
    ]
    assert (
        main(["run", "digits-advgan", "--out", str(out), *[f"--set={o}" for o in overrides]]) == 0
    )
    metrics = json.loads((out / "summary.json").read_text())["metrics"]
    for name in ("advgan", "fgsm", "pgd"):
        assert 0 <= metrics[f"{name}/success"] <= 1 and metrics[f"{name}/images_per_second"] > 0
    state = torch.load(out / "models" / "advgan_generator.pt", weights_only=True)
    assert state["init"]["eps"] == pytest.approx(0.2)
    assert (out / "plots" / "advgan_examples.png").is_file()
    assert (out / "checkpoints" / "advgan.ckpt").is_file()


def test_recipes_validate_with_the_documented_defaults():
    patch = load_recipe("digits-patch").recipe
    assert patch.patch.target == 3 and patch.patch.shape == "circle"
    assert patch.evaluation.areas == [0.05, 0.1, 0.2, 0.3]
    advgan = load_recipe("digits-advgan").recipe
    assert advgan.advgan.target is None and advgan.advgan.gan_loss == "least-squares"
    from counterfeit.gan.errors import ConfigError

    with pytest.raises(ConfigError, match="gan_loss"):
        load_recipe("digits-advgan", ["advgan.gan_loss=vanilla"])
