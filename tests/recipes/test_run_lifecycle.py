"""A run's lifecycle: checks before side effects, FAILED/KILLED endings, resume of copies and
changed recipes, the closing message."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import signal
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from counterfeit.gan.checkpoint import load_checkpoint
from counterfeit.gan.errors import CheckpointError, ConfigError, CounterfeitError
from counterfeit.recipes.loader import load_recipe
from counterfeit.recipes.run import run_recipe
from tests.cli_process import CliProcess
from tests.conftest import TINY_DANN, free_port

TINY = [*TINY_DANN, "methods=[dann]", "evaluation.embedding=none"]


def _runs(uri: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids) if ids else []


def _run(overrides: list[str], out: Path, recipe: str = "digits-dann", **kwargs) -> dict:
    return run_recipe(load_recipe(recipe, overrides), out=out, **kwargs)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, mlflow_uri):
    """A finished tiny run (its folder, overrides, MLflow run id and closing message)."""
    out = tmp_path_factory.mktemp("lifecycle") / "run"
    overrides = [*TINY, f"tracking.uri={mlflow_uri}", "tracking.experiment=lifecycle"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        summary = _run(overrides, out)
    return out, overrides, summary["mlflow"]["run_id"], printed.getvalue()


@pytest.mark.parametrize(
    ("overrides", "error", "words"),
    [
        (["data.source.name=mnist"], CounterfeitError, ["data.source (mnist)", "data.root"]),
        (
            ["data.source.name=usps", "data.root=nowhere/datasets"],
            CounterfeitError,
            ["nowhere/datasets", "does not exist"],
        ),
        (["model.backbone_weights=gone.pt"], CounterfeitError, ["model.backbone_weights"]),
        (["tracking.uri=sqlite:////proc/counterfeit/mlflow.db"], ConfigError, ["not writable"]),
    ],
    ids=["no-data-root", "missing-data-root", "missing-weights", "read-only-store"],
)
def test_bad_inputs_fail_before_anything_is_written(overrides, error, words, tmp_path, mlflow_uri):
    before = len(_runs(mlflow_uri))
    with pytest.raises(error) as raised:
        _run([*TINY, *overrides], tmp_path / "out")
    for word in words:
        assert word in str(raised.value)
    assert not (tmp_path / "out").exists()
    assert len(_runs(mlflow_uri)) == before


def test_a_missing_model_names_the_recipe_that_writes_it(tmp_path, mlflow_uri):
    before = len(_runs(mlflow_uri))
    with pytest.raises(CheckpointError, match=r"models.source-only.*counterfeit run digits-da"):
        run_recipe(load_recipe("adapted-robustness", []), out=tmp_path / "out")
    cut = tmp_path / "cut.pt2"
    cut.write_bytes(b"PK\x03\x04" + bytes(100))  # a zip archive's first bytes, then nothing
    with pytest.raises(CheckpointError, match="truncated"):
        run_recipe(
            load_recipe("adapted-robustness", ["models=null", f"model={cut}"]), out=tmp_path / "out"
        )
    assert not (tmp_path / "out").exists()
    assert len(_runs(mlflow_uri)) == before


def test_a_dead_tracking_server_is_reported_in_seconds(tmp_path, monkeypatch):
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as raised:
        _run(TINY, tmp_path / "out")
    assert time.perf_counter() - started < 10
    assert uri in str(raised.value) and "MLFLOW_TRACKING_URI" in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_closing_message_says_where_everything_is(finished, mlflow_uri):
    out, _, run_id, printed = finished
    assert f"wrote {out}/summary.json" in printed
    assert f"{out}/models/" in printed and "dann.pt2" in printed
    assert f"{out}/checkpoints/" in printed and "dann.ckpt" in printed
    assert f"{out}/plots/" in printed
    assert f"MLflow run id: {run_id}  (open: mlflow ui --backend-store-uri {mlflow_uri})" in printed
    state = json.loads((out / "run.json").read_text())
    assert state == {"mlflow_run_id": run_id, "out": str(out.resolve())}
    assert "offline_buffer" not in json.loads((out / "summary.json").read_text())["mlflow"]
    assert not (out / "tracking-buffer").exists() and "tracking replay" not in printed


def test_resume_refuses_a_changed_recipe_and_overwrite(finished, mlflow_uri):
    out, overrides, run_id, _ = finished
    recipe_file = (out / "recipe.yaml").read_text()
    with pytest.raises(ConfigError) as raised:
        _run([*overrides, "train.steps=40", "train.batch_size=8"], out, resume=True)
    message = str(raised.value)
    assert "train.steps: 30 -> 40" in message and "train.batch_size: 16 -> 8" in message
    assert "--allow-recipe-changes" in message
    with pytest.raises(ConfigError, match="--resume and --overwrite"):
        _run(overrides, out, resume=True, overwrite=True)
    assert (out / "recipe.yaml").read_text() == recipe_file
    assert MlflowClient(tracking_uri=mlflow_uri).get_run(run_id).info.status == "FINISHED"


def test_a_failed_resume_of_a_copy_leaves_the_original_run_finished(finished, mlflow_uri):
    out, overrides, run_id, _ = finished
    copy = out.parent / "copy"
    shutil.copytree(out, copy)
    checkpoint = copy / "checkpoints" / "dann.ckpt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])  # cut short
    with pytest.raises(CheckpointError):
        _run(overrides, copy, resume=True)
    client = MlflowClient(tracking_uri=mlflow_uri)
    assert client.get_run(run_id).info.status == "FINISHED"
    state = json.loads((copy / "run.json").read_text())
    assert state["mlflow_run_id"] != run_id and state["out"] == str(copy.resolve())
    failed = client.get_run(state["mlflow_run_id"])
    assert failed.info.status == "FAILED"
    assert failed.data.tags["resumed_from_run"] == run_id
    assert failed.data.tags["error_type"] == "CheckpointError"
    assert "dann.ckpt" in failed.data.tags["error"]


def test_a_copy_resumes_into_a_new_run_with_allowed_changes(finished, mlflow_uri):
    out, overrides, run_id, _ = finished
    copy = out.parent / "longer"
    shutil.copytree(out, copy)
    summary = _run([*overrides, "train.steps=40"], copy, resume=True, allow_recipe_changes=True)
    trained = summary["models"]["dann"]
    assert trained["steps"] == 40 and trained["resumed_from"] == 30
    assert summary["recipe_changes_on_resume"] == ["train.steps: 30 -> 40"]
    assert summary["mlflow"]["resumed_from_run"] == run_id
    client = MlflowClient(tracking_uri=mlflow_uri)
    new = client.get_run(summary["mlflow"]["run_id"])
    assert new.info.run_id != run_id and new.info.status == "FINISHED"
    assert new.data.tags["resumed_from_run"] == run_id
    assert new.data.params["train.steps"] == "40"
    original = json.loads((out / "summary.json").read_text())
    assert original["models"]["dann"]["steps"] == 30
    assert client.get_run(run_id).data.params["train.steps"] == "30"


def test_sigterm_stops_at_a_checkpoint_and_ends_the_run_killed(tmp_path, mlflow_uri):
    out = tmp_path / "run"
    proc = CliProcess(
        *["run", "digits-dann", "--out", str(out)],
        *[f"--set={o}" for o in (*TINY, "train.steps=100000", "train.checkpoint_every=5")],
    )
    checkpoint = out / "checkpoints" / "dann.ckpt"
    proc.wait_for_file(checkpoint)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-3000:]
    assert "SIGTERM" in stderr and "--resume" in stderr and "Traceback" not in stderr
    step = load_checkpoint(checkpoint)["step"]
    assert 5 <= step < 100000
    run_id = json.loads((out / "run.json").read_text())["mlflow_run_id"]
    run = MlflowClient(tracking_uri=mlflow_uri).get_run(run_id)
    assert run.info.status == "KILLED"
    assert run.data.tags["error_type"] == "TrainingInterrupted"
    assert f"interrupted at step {step}" in run.data.tags["error"]


def test_a_method_that_diverges_is_reported_and_the_others_still_evaluated(tmp_path):
    overrides = [*TINY, "methods=[source-only,dann]", "model.lambda_max=1e12"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        summary = _run(overrides, tmp_path / "out")
    assert "became NaN or infinite" in summary["diverged"]["dann"]
    assert "warning: dann diverged" in printed.getvalue()
    assert "source-only/target_accuracy" in summary["metrics"]
    assert not any(key.startswith("dann/") for key in summary["metrics"])
    with pytest.raises(CounterfeitError, match="NaN or infinite"):  # alone, it ends the run
        _run([*TINY, "model.lambda_max=1e12"], tmp_path / "alone")
