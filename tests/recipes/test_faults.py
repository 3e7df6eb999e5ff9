"""kill -9 at three points of a run, then --resume: the same final numbers as no kill.

One uninterrupted reference run goes alongside a chain of runs of the same recipe,
each killed with SIGKILL at another point and resumed with ``--resume``:

1. just after the first checkpoint is written (step 10);
2. between checkpoints, once the evaluation at step 15 is printed, so that work
   after the checkpoint is lost and redone;
3. the moment a temporary checkpoint file appears (the write of step 20, when the
   poll catches it), or else just after that checkpoint lands.

Before the last resume, a partial temporary checkpoint file (what a kill between
the write and the rename leaves) is put beside the checkpoint: resume must ignore
and remove it. The summaries' metrics must be equal, bit for bit.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.cli_process import CliProcess
from tests.conftest import TINY_DANN

pytestmark = pytest.mark.slow  # its file runs first: see conftest

RECIPE = [
    *TINY_DANN,
    "methods=[dann]",
    "data.target.name=sklearn-digits",
    "data.target.n=200",
    "data.target.n_test=100",
    "evaluation.embedding=none",
    "train.progress=true",
    "tracking.enabled=false",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


class Run:
    """``counterfeit run`` in the background, its merged output collected line by line."""

    def __init__(self, out: Path, *extra: str) -> None:
        args = ["run", "digits-dann", "--out", str(out), "--device", "cpu", *extra]
        self.proc = CliProcess(*args, *[f"--set={o}" for o in RECIPE], env=ENV, merge_stderr=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_until(self, condition, what: str, timeout: float = 240, poll: float = 0.01) -> None:
        """Poll ``condition()`` until true; fail if the run ends or time runs out first."""
        deadline = time.time() + timeout
        while not condition():
            assert self.proc.poll() is None, f"the run ended before {what}:\n{self.output()}"
            assert time.time() < deadline, f"no {what} within {timeout} s:\n{self.output()}"
            time.sleep(poll)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
        assert self.proc.returncode == -signal.SIGKILL

    def finish(self) -> str:
        assert self.proc.wait(timeout=300) == 0, self.output()[-3000:]
        self._reader.join(timeout=30)
        return self.output()


def _temporaries(folder: Path) -> list[Path]:
    return sorted(folder.glob(".dann.ckpt.*.tmp")) if folder.is_dir() else []


def _step_of(checkpoint: Path) -> int | None:
    from counterfeit.gan.checkpoint import load_checkpoint

    return int(load_checkpoint(checkpoint)["step"]) if checkpoint.is_file() else None


def test_kill_9_at_three_points_then_resume_ends_with_the_same_numbers(tmp_path):
    reference = Run(tmp_path / "reference")
    out = tmp_path / "killed"
    folder = out / "checkpoints"
    checkpoint = folder / "dann.ckpt"

    first = Run(out)
    first.wait_until(checkpoint.is_file, "a first checkpoint")
    first.kill()
    assert _step_of(checkpoint) == 10

    second = Run(out, "--resume")
    second.wait_until(lambda: any(line.startswith("[step 15]") for line in second.lines), "step 15")
    second.kill()
    assert _step_of(checkpoint) in (10, 20)  # lost: the steps since the last checkpoint

    third = Run(out, "--resume")
    before = checkpoint.stat().st_mtime_ns
    third.wait_until(lambda: any(line.startswith("dann: step") for line in third.lines), "a log")
    third.wait_until(
        lambda: _temporaries(folder) or checkpoint.stat().st_mtime_ns != before,
        "a checkpoint write",
        poll=0.0005,
    )
    third.kill()
    caught_mid_write = bool(_temporaries(folder))
    print(f"third kill caught a checkpoint write in progress: {caught_mid_write}")

    stray = folder / ".dann.ckpt.k1ll3d.tmp"  # a kill between the write and the rename
    stray.write_bytes(checkpoint.read_bytes()[:2000])
    resumed_from = _step_of(checkpoint)
    output = Run(out, "--resume").finish()
    assert "Traceback" not in output and "\r" not in output

    reference.finish()
    expected = json.loads((tmp_path / "reference" / "summary.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"] == expected["metrics"]
    assert summary["models"]["dann"]["resumed_from"] == resumed_from
    assert summary["models"]["dann"]["steps"] == 30
    assert _temporaries(folder) == []
