"""Shared fixtures: tiny domains, an isolated MLflow store, the CLI in a child process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# One OpenMP thread per pytest-xdist worker, in this process and the CLI runs and notebook
# kernels it starts (they inherit the environment): the suite runs as many workers as cores,
# and OpenMP threads beyond the free cores spin-wait (a notebook's PixelDA cell took 97 s
# with two threads beside a busy core, 15 s with one). Set before torch loads OpenMP.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch

from counterfeit.gan.data import DomainSpec, build_domain

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

# One torch thread per pytest-xdist worker; two when the suite runs in one process.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)

# Overrides that make the digits-dann recipe run in seconds.
TINY_DANN = [
    "train.steps=30",
    "train.batch_size=16",
    "train.log_every=5",
    "train.checkpoint_every=10",
    "train.eval_every=15",
    "train.progress=false",
    "data.source.n=200",
    "data.source.n_test=100",
    "evaluation.embedding=pca",
    "evaluation.embedding_points=40",
]

# digits-dann in seconds a member of a sweep: five steps, small source and target sets
# (scikit-learn's digits as the target: no photo blending).
TINY_SWEEP = [
    *TINY_DANN,
    "train.steps=5",
    "train.checkpoint_every=5",
    "train.eval_every=5",
    "data.target.name=sklearn-digits",
    "data.target.n=200",
    "data.target.n_test=100",
    "evaluation.embedding=none",
]


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory):
    """One SQLite MLflow store for the session (creating one costs seconds)."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).search_experiments()  # create the schema once
    return uri


@pytest.fixture(autouse=True)
def _isolated_mlflow(tmp_path, monkeypatch, mlflow_uri):
    """Tests log to the session's store, never the developer's, and run in a temp dir."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def random_digits_npz():
    """Writes a dataset file in the published npz layout (uint8 x_train, y_train,
    x_test, y_test): ``write(path, shape, n_train, n_test)``, random pixels of
    ``shape`` per image, labels cycling 0-9."""
    rng = np.random.default_rng(0)

    def write(path: Path, shape: tuple[int, ...], n_train: int, n_test: int) -> None:
        arrays = {}
        for split, n in (("train", n_train), ("test", n_test)):
            arrays[f"x_{split}"] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
            arrays[f"y_{split}"] = np.arange(n) % 10
        np.savez(path, **arrays)

    return write


@pytest.fixture(scope="session")
def tiny_domains():
    """Small source (rendered) and target (MNIST-M-style) train/test sets at 28 px."""
    source = DomainSpec(name="synthetic-digits", n=400, n_test=200)
    target = DomainSpec(name="mnistm-style")
    return {
        "source_train": build_domain(source, "train", 28),
        "source_test": build_domain(source, "test", 28),
        "target_train": build_domain(target, "train", 28).take(400),
        "target_test": build_domain(target, "test", 28).take(200),
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """A real ``mlflow server`` on 127.0.0.1 over a SQLite store in ``root``; stop and restart it."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> MlflowServer:
        """Start the server (nothing to do when it runs) and wait until it answers."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        log = (self.root / "server.log").open("a")
        self.proc = subprocess.Popen(
            [
                str(VENV_BIN / "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--backend-store-uri",
                f"sqlite:///{self.root / 'store.db'}",
                "--artifacts-destination",
                str(self.root / "artifacts"),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # no job runner: MLflow starts it and seven queue consumers, all unused here
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.root / "server.log").read_text()[-2000:])
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server did not start within {timeout} s")

    def stop(self) -> None:
        """Stop the server and every worker it started (the whole process group)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        deadline = time.time() + 30
        while time.time() < deadline:  # its workers may outlive it for a moment
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.2)


def pytest_collection_modifyitems(config, items):
    """Files holding a test marked ``slow`` (a whole module whose tests share a costly
    fixture, or one long test) go first. ``make test`` hands whole files to the workers in
    this order (``--dist loadfile --no-loadscope-reorder``): the long files start at once and
    the many short ones even the workers out at the end, instead of one worker drawing a
    minute-long file when the other has nothing left; and no module fixture is built twice."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
