"""`counterfeit sweep` under trouble: a member that fails, and SIGTERM to a background sweep."""

import json
import os
import signal

import pytest
from mlflow import MlflowClient

from counterfeit.recipes.sweep import sweep
from tests.cli_process import CliProcess
from tests.conftest import TINY_SWEEP

pytestmark = pytest.mark.slow  # its file runs first: see conftest


def test_a_failing_member_is_recorded_with_its_error_and_the_others_finish(tmp_path):
    # mnist is read from data.root, which this recipe does not give: that member fails at run time
    result = sweep(
        "digits-dann",
        seeds=[3],
        grid={"data.target.name": ["sklearn-digits", "mnist"]},
        overrides=[*TINY_SWEEP, "methods=[dann]"],
        workers=2,
        out=tmp_path / "out",
    )
    by_name = {m.name: m for m in result.members}
    good, bad = (
        by_name["data.target.name=sklearn-digits/seed-3"],
        by_name["data.target.name=mnist/seed-3"],
    )
    assert good.status == "finished" and good.metrics
    assert bad.status == "failed" and bad.exit_code == 2
    assert "root" in bad.error and "counterfeit: error:" in bad.error
    assert [m.name for m in result.failed] == [bad.name]
    failed_group = next(g for g in result.aggregate if g["point"] == bad.point)
    assert (failed_group["finished"], failed_group["failed"], failed_group["metrics"]) == (0, 1, {})
    record = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert record["members"][1]["error"] == bad.error
    assert bad.error.splitlines()[-1] in (tmp_path / "out" / "sweep.md").read_text()


def test_sigterm_stops_a_background_sweep_and_writes_a_partial_record(tmp_path, mlflow_uri):
    """SIGTERM takes the Ctrl-C path (its handler calls SIGINT's); the sweep is started with
    SIGINT ignored, as a job launched in the background is, so its members are too."""
    out = tmp_path / "out"
    long_run = [*TINY_SWEEP, "train.steps=400", "train.eval_every=400"]
    command = ["sweep", "digits-dann", "--seeds", "0,1", "--workers", "1", "--out", str(out)]
    proc = CliProcess(
        *command,
        *[f"--set={o}" for o in long_run],
        env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri},
        ignore_sigint=True,
    )
    checkpoint = out / "seed-0" / "checkpoints" / "dann.ckpt"
    proc.wait_for_file(checkpoint)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-3000:]
    assert "--resume" in stderr and "Traceback" not in stderr
    record = json.loads((out / "sweep.json").read_text())
    assert record["status"] == "interrupted"
    first, second = record["members"]
    assert (first["status"], first["exit_code"]) == ("interrupted", 130)
    assert "--resume" in first["error"]  # the member's own message: its checkpoint is kept
    assert second["status"] == "pending" and not (out / "seed-1").exists()
    client = MlflowClient(tracking_uri=mlflow_uri)
    assert client.get_run(record["mlflow"]["parent_run_id"]).info.status == "KILLED"
    assert client.get_run(first["mlflow_run_id"]).info.status == "KILLED"
