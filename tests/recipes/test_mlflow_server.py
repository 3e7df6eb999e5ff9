"""Logging to a real `mlflow server` started by the test on 127.0.0.1."""

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import TINY_DANN, VENV_BIN, run_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    port = _free_port()
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{root / 'store.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((root / "server.log").read_text()[-2000:])
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("mlflow server did not start within 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def test_recipe_logs_to_a_real_server(mlflow_server, tmp_path):
    out = tmp_path / "run"
    result = run_cli(
        "run",
        "digits-dann",
        "--out",
        str(out),
        "--set",
        "methods=[dann]",
        *[f"--set={o}" for o in TINY_DANN],
        "--set",
        "tracking.experiment=server-test",
        env={"MLFLOW_TRACKING_URI": mlflow_server},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mlflow"]["tracking_uri"] == mlflow_server

    client = MlflowClient(tracking_uri=mlflow_server)
    run = client.get_run(summary["mlflow"]["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["dann/target_accuracy"] == pytest.approx(
        summary["metrics"]["dann/target_accuracy"]
    )
    assert [m.step for m in client.get_metric_history(run.info.run_id, "dann/loss")][-1] == 30
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"summary.json", "plots", "models"} <= artifacts
    downloaded = client.download_artifacts(run.info.run_id, "summary.json", str(tmp_path))
    assert json.loads(Path(downloaded).read_text())["metrics"] == summary["metrics"]


def test_unreachable_server_is_a_clear_error(tmp_path):
    port = _free_port()
    result = run_cli(
        "run",
        "digits-dann",
        "--out",
        str(tmp_path / "r"),
        *[f"--set={o}" for o in TINY_DANN],
        env={
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "3",
        },
    )
    assert result.returncode == 2
    assert f"127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr
