"""Tracking never stops training: a dead server is buffered in the run folder and replayed."""

from __future__ import annotations

import time

import pytest
from mlflow import MlflowClient

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.tracking import Tracker
from counterfeit.gan.tracking_buffer import buffered_calls, replay_buffer
from tests.conftest import MlflowServer


def test_a_store_under_a_file_fails_at_once_naming_it(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="not-a-folder"):
        Tracker(uri=f"sqlite:///{blocker}/mlflow.db").start()
    assert time.perf_counter() - started < 10


@pytest.mark.slow
def test_server_stopped_mid_run_is_buffered_then_replayed(tmp_path):
    (tmp_path / "server").mkdir()
    server = MlflowServer(tmp_path / "server").start()
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
        server.stop()
