"""Data parallelism on CPU (gloo): gradient averaging, and torchrun with two processes."""

import atexit
import json
import os
import socket
import subprocess

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mlflow import MlflowClient

from counterfeit.gan.method import StepContext
from counterfeit.gan.runtime import DistributedContext, distributed_context
from tests.conftest import TINY_DANN, VENV_BIN

pytestmark = pytest.mark.slow  # its file runs first: see conftest


def _average_worker(rank, world, init_file, results):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    layer = torch.nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.zero_()
    optimizer = torch.optim.SGD(layer.parameters(), lr=1.0)
    ctx = StepContext(
        1,
        {"o": optimizer},
        torch.device("cpu"),
        None,
        torch.amp.GradScaler("cpu", enabled=False),
        DistributedContext(rank, world, rank),
    )
    x = torch.full((1, 3), float(rank + 1))  # rank 0 sees 1s, rank 1 sees 2s
    layer(x).sum().backward()
    ctx.optimizer_step(optimizer)
    results[rank] = layer.weight.detach().clone()
    dist.destroy_process_group()


def test_optimizer_step_averages_gradients_across_ranks(tmp_path):
    results = mp.Manager().dict()
    mp.spawn(_average_worker, args=(2, tmp_path / "init", results), nprocs=2)
    # gradient of sum(W x) wrt W is x for each output row: mean of 1 and 2 is 1.5
    expected = torch.full((2, 3), 1.0 - 1.5)
    assert torch.allclose(results[0], expected) and torch.allclose(results[1], expected)


def _join_and_exit_worker(rank, world, port, results):
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    ctx = distributed_context(torch.device("cpu"))
    joined = dist.is_initialized() and ctx.world_size == world
    atexit._run_exitfuncs()  # what the interpreter runs at exit
    results[rank] = (joined, dist.is_initialized())


def test_a_group_joined_from_the_environment_is_left_at_exit(tmp_path):
    # a gloo group left to interpreter teardown can abort an early-finishing rank
    # ("terminate called without an active exception"), so the group is destroyed at exit
    results = mp.Manager().dict()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_join_and_exit_worker, args=(2, port, results), nprocs=2)
    assert results[0] == (True, False) and results[1] == (True, False)


def test_torchrun_two_processes_only_rank_zero_logs(tmp_path, mlflow_uri):
    out = tmp_path / "ddp"
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            str(VENV_BIN / "torchrun"),
            "--standalone",
            "--nproc_per_node=2",
            "--module",
            "counterfeit.recipes.cli",
            "run",
            "digits-dann",
            "--out",
            str(out),
            "--set",
            "tracking.experiment=ddp-test",
            "--set",
            "methods=[dann]",
            "--set",
            "device=cpu",  # gloo; NCCL needs one GPU per rank
            *[f"--set={o}" for o in TINY_DANN],
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert result.stdout.count("MLflow run id:") == 1
    client = MlflowClient(tracking_uri=mlflow_uri)
    experiment = client.get_experiment_by_name("ddp-test")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1 and runs[0].info.run_id == summary["mlflow"]["run_id"]
    # each rank took 30 steps of its own shard: logged once, by rank 0
    history = client.get_metric_history(runs[0].info.run_id, "dann/loss")
    assert [m.step for m in history] == list(range(5, 31, 5))
