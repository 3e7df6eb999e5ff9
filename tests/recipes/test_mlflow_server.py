"""Logging to a real `mlflow server` started by the test on 127.0.0.1, stopped in the middle of
a run and restarted: the run finishes, and the replay puts everything on the server (for the
Tracker itself and for a whole `counterfeit run`; one server for both: each start costs ~10 s)."""

import json
import os
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.tracking import Tracker
from counterfeit.gan.tracking_buffer import buffered_calls, replay_buffer
from tests.cli_process import CliProcess, run_cli
from tests.conftest import TINY_DANN, MlflowServer

pytestmark = pytest.mark.slow  # its file runs first: see conftest

TINY = [*TINY_DANN, "methods=[dann]"]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("server")).start()
    yield server
    server.stop()


def test_server_stopped_mid_run_finishes_then_replays_everything(mlflow_server, tmp_path):
    """A run that starts on a real server, loses it after its first calls, finishes with
    its calls buffered, and once replayed holds on the server what a connected run would."""
    out = tmp_path / "run"
    proc = CliProcess(
        *["run", "digits-dann", "--out", str(out)],
        *[f"--set={o}" for o in (*TINY, "tracking.experiment=server-test")],
        env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_server.url},
    )
    try:
        for line in proc.stdout:
            if line.startswith("MLflow run "):
                break
        mlflow_server.stop()
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        proc.kill()
        mlflow_server.start()
    assert proc.returncode == 0, stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mlflow"]["tracking_uri"] == mlflow_server.url
    assert (out / "checkpoints" / "dann.ckpt").is_file()
    assert "stopped answering" in stderr and "Traceback" not in stderr
    assert (out / "tracking-buffer" / "calls.jsonl").is_file()
    assert summary["mlflow"]["offline_buffer"] == str(out / "tracking-buffer")
    assert f"counterfeit tracking replay {out}" in stdout

    replayed = run_cli("tracking", "replay", str(out))
    assert replayed.returncode == 0, replayed.stderr[-3000:]
    assert "replayed" in replayed.stdout
    client = MlflowClient(tracking_uri=mlflow_server.url)
    run = client.get_run(summary["mlflow"]["run_id"])
    assert run.info.status == "FINISHED"
    for key, value in summary["metrics"].items():
        assert run.data.metrics[key] == pytest.approx(value)
    assert [m.step for m in client.get_metric_history(run.info.run_id, "dann/loss")][-1] == 30
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"summary.json", "plots", "models"} <= artifacts
    downloaded = client.download_artifacts(run.info.run_id, "summary.json", str(tmp_path))
    assert json.loads(Path(downloaded).read_text())["metrics"] == summary["metrics"]
    # the closing message links the run's page on the server, not an `mlflow ui` command
    page = f"{mlflow_server.url}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    assert page in stdout and "--backend-store-uri http" not in stdout
    again = run_cli("tracking", "replay", str(out))
    assert again.returncode == 2 and "no tracking buffer" in again.stderr


def test_the_tracker_buffers_while_the_server_is_down_then_replays(mlflow_server, tmp_path):
    server = mlflow_server  # stopped and started again below
    run_dir = tmp_path / "run"
    try:
        tracker = Tracker(experiment="buffer", uri=server.url, buffer_dir=run_dir).start()
        tracker.log_params({"train": {"steps": 2}})
        tracker.log_metrics({"loss": 1.0}, step=1)
        server.stop()

        started = time.perf_counter()
        tracker.log_metrics({"loss": 0.5}, step=2)
        tracker.log_dict({"accuracy": 0.9}, "summary.json")
        tracker.set_tags({"phase": "after"})
        tracker.end("FINISHED")
        assert time.perf_counter() - started < 60, "retries must be bounded"
        assert tracker.offline
        assert [c["op"] for c in buffered_calls(run_dir)] == ["metrics", "artifact", "tags", "end"]

        with pytest.raises(ConfigError, match="Is the tracking server up"):
            replay_buffer(run_dir)

        server.start()
        counts = replay_buffer(run_dir)
        assert counts == {"metrics": 1, "artifact": 1, "tags": 1, "end": 1}
        client = MlflowClient(server.url)
        history = client.get_metric_history(tracker.run_id, "loss")
        assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 0.5)]
        run = client.get_run(tracker.run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["phase"] == "after"
        assert run.data.params["train.steps"] == "2"
        assert [a.path for a in client.list_artifacts(tracker.run_id)] == ["summary.json"]
        with pytest.raises(ConfigError, match="no tracking buffer"):
            replay_buffer(run_dir)
    finally:
        server.start()  # as the fixture handed it over
