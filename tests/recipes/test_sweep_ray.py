"""`counterfeit sweep --backend ray`: the same members as Ray tasks, on a local Ray."""

import json

import pytest
from mlflow import MlflowClient

from counterfeit.recipes.sweep import sweep
from tests.conftest import TINY_SWEEP

pytestmark = pytest.mark.slow  # its file runs first: see conftest

ray = pytest.importorskip("ray", reason="Ray is optional: pip install 'counterfeit[ray]'")


@pytest.fixture
def local_ray():
    """A Ray of two CPUs on 127.0.0.1, started for the test and stopped after it."""
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=100 * 2**20,
        log_to_driver=False,
    )
    yield ray.get_runtime_context().get_node_id()
    ray.shutdown()


def test_ray_backend_runs_each_member_as_a_task(local_ray, tmp_path, mlflow_uri):
    out = tmp_path / "out"
    one_method = [*TINY_SWEEP, "methods=[dann]"]
    result = sweep("digits-dann", seeds=[0, 1], overrides=one_method, out=out, backend="ray")
    assert [(m.name, m.status, m.exit_code) for m in result.members] == [
        ("seed-0", "finished", 0),
        ("seed-1", "finished", 0),
    ]
    assert all(m.worker.startswith(f"ray node {local_ray} ") for m in result.members)
    summaries = [json.loads((out / f"seed-{s}" / "summary.json").read_text()) for s in (0, 1)]
    assert [m.metrics for m in result.members] == [s["metrics"] for s in summaries]
    accuracy = result.aggregate[0]["metrics"]["dann/target_accuracy"]
    assert accuracy["mean"] == pytest.approx(
        sum(s["metrics"]["dann/target_accuracy"] for s in summaries) / 2
    )
    client = MlflowClient(tracking_uri=mlflow_uri)
    parent = client.get_run(result.parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'"
    )
    assert {c.info.run_id for c in children} == {s["mlflow"]["run_id"] for s in summaries}
    assert ray.is_initialized()  # the sweep used the Ray it found and left it running
