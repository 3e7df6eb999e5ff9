"""One member's process: its command line, its log, and what it left in its folder.

A member is ``python -m counterfeit.recipes.cli run RECIPE --seed S --out DIR --set ...``,
with ``--resume`` when its folder already holds checkpoints. Its output goes to
``DIR/sweep-member.log``. Both backends run members through these functions; a Ray task
runs :func:`run_member`.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

RUN_MODULE = ("-m", "counterfeit.recipes.cli", "run")
LOG_FILE = "sweep-member.log"
TAIL_LINES = 20
INTERRUPT_GRACE_SECONDS = 120.0
INTERRUPTED_CODES = (130, -signal.SIGINT)


@dataclass
class MemberResult:
    """Where one member stands.

    Attributes:
        name: ``SLUG/seed-S`` (its folder under the sweep's).
        seed: its seed.
        point: its grid point (key -> value).
        out: its output folder.
        status: ``pending``, ``finished``, ``failed`` or ``interrupted``.
        exit_code: the exit status of its last process (None if it did not run).
        error: why it failed or stopped: the last lines of its log.
        wall_seconds: the wall time of its last process.
        metrics: its summary's metrics (finished members).
        mlflow_run_id: its MLflow run.
        ran: it ran in this call (False: finished by an earlier call and reused).
        resumed: it continued from its checkpoints (``counterfeit run --resume``).
        worker: the machine that ran it (with Ray: the node's id and host name).
    """

    name: str
    seed: int
    point: dict[str, str]
    out: str
    status: str = "pending"
    exit_code: int | None = None
    error: str | None = None
    wall_seconds: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    ran: bool = False
    resumed: bool = False
    worker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunningMember:
    """A started member process."""

    out: Path
    process: subprocess.Popen
    log: IO[str]
    started: float
    resumed: bool


def command(args: Sequence[str], out: Path) -> tuple[list[str], bool]:
    """The member's command line, and whether it resumes (its folder holds checkpoints)."""
    resume = (out / "checkpoints").is_dir()
    return [sys.executable, *RUN_MODULE, *args, *(["--resume"] if resume else [])], resume


def start_member(
    args: Sequence[str], out: str | Path, env: Mapping[str, str], cwd: str | None = None
) -> RunningMember:
    """Start one member in its own process group (a terminal's Ctrl-C reaches only the sweep,
    which forwards it), appending its output to ``OUT/sweep-member.log``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    argv, resumed = command(args, out)
    log = open(out / LOG_FILE, "a")  # noqa: SIM115 (closed by finish_member)
    log.write(f"$ {shlex.join(argv)}\n")
    log.flush()
    process = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
        cwd=cwd if cwd and Path(cwd).is_dir() else None,
        start_new_session=True,
    )
    return RunningMember(out, process, log, time.perf_counter(), resumed)


def interrupt(members: Iterable[RunningMember], grace: float = INTERRUPT_GRACE_SECONDS) -> None:
    """Send SIGTERM to every live member (a run stops on it as on Ctrl-C, even where a
    background launch left SIGINT ignored), wait up to ``grace`` seconds for them to write a
    checkpoint and exit, then kill the rest (at once on a second Ctrl-C)."""
    members = [m for m in members if m.process.poll() is None]
    for member in members:
        member.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    try:
        for member in members:
            member.process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        for member in members:
            if member.process.poll() is None:
                member.process.kill()
                member.process.wait()


def finish_member(running: RunningMember) -> dict[str, Any]:
    """The outcome of an ended member: status, exit code, error, wall time, metrics, run id."""
    running.log.close()
    code = running.process.returncode
    outcome: dict[str, Any] = {
        "exit_code": code,
        "wall_seconds": round(time.perf_counter() - running.started, 2),
        "resumed": running.resumed,
        "ran": True,
        "worker": socket.gethostname(),
        **read_member(running.out),
    }
    if code in INTERRUPTED_CODES:
        outcome.update(status="interrupted", error=log_tail(running.out), metrics={})
    elif code != 0:
        outcome.update(status="failed", error=log_tail(running.out), metrics={})
    elif outcome["status"] != "finished":
        outcome.update(status="failed", error=outcome["error"] or log_tail(running.out))
    return outcome


def read_member(out: str | Path) -> dict[str, Any]:
    """What a member's folder says: ``finished`` with its metrics when its summary exists and
    every metric is finite, else ``pending`` or ``failed`` (non-finite metrics)."""
    out = Path(out)
    summary_file, state_file = out / "summary.json", out / "run.json"
    run_id = None
    if state_file.is_file():
        run_id = json.loads(state_file.read_text()).get("mlflow_run_id")
    if not summary_file.is_file():
        return {"status": "pending", "metrics": {}, "error": None, "mlflow_run_id": run_id}
    summary = json.loads(summary_file.read_text())
    metrics = {k: v for k, v in summary.get("metrics", {}).items() if _is_number(v)}
    bad = [k for k, v in metrics.items() if not math.isfinite(v)]
    run_id = summary.get("mlflow", {}).get("run_id") or run_id
    if bad:
        error = f"non-finite metrics in summary.json: {', '.join(bad)}"
        return {"status": "failed", "metrics": {}, "error": error, "mlflow_run_id": run_id}
    return {"status": "finished", "metrics": metrics, "error": None, "mlflow_run_id": run_id}


def run_member(
    args: Sequence[str], out: str, env: Mapping[str, str], cwd: str | None = None
) -> dict[str, Any]:
    """Run one member to its end and return its outcome (the body of a Ray task).

    A Ctrl-C or a Ray cancellation (a KeyboardInterrupt here) is forwarded to the member.
    """
    running = start_member(args, out, env, cwd)
    try:
        running.process.wait()
    except KeyboardInterrupt:
        interrupt([running])
    return finish_member(running)


def log_tail(out: str | Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` non-empty lines of a member's log (progress bars' ``\\r`` split)."""
    path = Path(out) / LOG_FILE
    if not path.is_file():
        return ""
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - 65536))
        text = handle.read().decode("utf-8", errors="replace")
    kept = [line.rstrip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
