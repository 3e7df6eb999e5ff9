"""What a run logs while its MLflow store is unreachable, kept in the run folder and replayed later.

When the tracking server goes away in the middle of a run, :class:`~counterfeit.gan.tracking.Tracker`
stops calling it and appends every later call here instead (``OUT/tracking-buffer/calls.jsonl``,
with copies of the artifacts beside it), so training, checkpoints and the summary go on as usual.
Once the server is back, :func:`replay_buffer` (``counterfeit tracking replay OUT``) sends the
buffered calls to the same MLflow run, in order, with their original timestamps and steps.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from counterfeit.gan.errors import ConfigError

BUFFER_DIR = "tracking-buffer"
CALLS_FILE = "calls.jsonl"
PROGRESS_FILE = "replayed-calls"
REPLAYED_SUFFIX = ".replayed"


class OfflineBuffer:
    """An append-only record of tracking calls for one MLflow run.

    Args:
        folder: where to keep it (``OUT/tracking-buffer``).
        run_id: the MLflow run the calls belong to.
        tracking_uri: the store they were meant for (replay uses it unless told otherwise).
    """

    def __init__(self, folder: str | Path, run_id: str | None, tracking_uri: str) -> None:
        self.folder = Path(folder)
        self.run_id = run_id
        self.tracking_uri = tracking_uri
        self._artifacts = 0

    @property
    def calls_file(self) -> Path:
        return self.folder / CALLS_FILE

    def append(self, op: str, **fields: Any) -> None:
        """Record one call (``op`` is ``metrics``, ``params``, ``tags``, ``artifact`` or ``end``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {"op": op, "run_id": self.run_id, "uri": self.tracking_uri, **fields}
        with self.calls_file.open("a") as stream:
            stream.write(json.dumps(record, default=str) + "\n")

    def keep_artifact(self, path: Path, artifact_path: str | None) -> None:
        """Copy a file or folder into the buffer (it may be a temporary file) and record it."""
        self._artifacts += 1
        kept = self.folder / "artifacts" / f"{self._artifacts:05d}" / path.name
        kept.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, kept)
        else:
            shutil.copy2(path, kept)
        self.append(
            "artifact", path=str(kept.relative_to(self.folder)), artifact_path=artifact_path
        )


def buffered_calls(run_dir: str | Path) -> list[dict[str, Any]]:
    """The calls buffered in ``run_dir`` (a run folder or its ``tracking-buffer``), in order."""
    folder = _buffer_folder(run_dir)
    lines = (folder / CALLS_FILE).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def replay_buffer(run_dir: str | Path, uri: str | None = None) -> dict[str, int]:
    """Send the calls buffered in ``run_dir`` to their MLflow run; returns counts by kind.

    Args:
        run_dir: a run folder holding ``tracking-buffer/`` (or that folder itself).
        uri: the tracking store to send them to (default: the one they were meant for).

    The buffer is renamed ``tracking-buffer.replayed`` once every call went through, so a
    second replay sends nothing twice. Raises :class:`ConfigError` if there is nothing to
    replay or the store still cannot be reached.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    folder = _buffer_folder(run_dir)
    calls = buffered_calls(folder)
    if not calls:
        raise ConfigError(f"{folder / CALLS_FILE} holds no calls to replay.")
    target = uri or calls[0]["uri"]
    client = MlflowClient(tracking_uri=target)
    counts: dict[str, int] = {}
    progress = folder / PROGRESS_FILE
    done = int(progress.read_text()) if progress.is_file() else 0
    try:
        for index, call in enumerate(calls[done:], start=done):
            run_id = call["run_id"]
            op = call["op"]
            if op == "metrics":
                metrics = [
                    Metric(k, float(v), call["timestamp"], call["step"])
                    for k, v in call["metrics"].items()
                ]
                client.log_batch(run_id, metrics=metrics)
            elif op == "params":
                params = [Param(k, v) for k, v in call["params"].items()]
                for start in range(0, len(params), 100):
                    client.log_batch(run_id, params=params[start : start + 100])
            elif op == "tags":
                for key, value in call["tags"].items():
                    client.set_tag(run_id, key, value)
            elif op == "artifact":
                path = folder / call["path"]
                if path.is_dir():
                    client.log_artifacts(run_id, str(path), call["artifact_path"])
                else:
                    client.log_artifact(run_id, str(path), call["artifact_path"])
            elif op == "end":
                client.set_terminated(run_id, status=call["status"], end_time=call["timestamp"])
            counts[op] = counts.get(op, 0) + 1
            progress.write_text(str(index + 1))
    except Exception as exc:  # MlflowException, connection errors
        raise ConfigError(
            f"cannot replay {folder} into '{target}': {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:300]}. Is the tracking server up? Nothing was lost: "
            "run the replay again once it is; it continues after the calls already sent."
        ) from None
    folder.rename(folder.with_name(folder.name + REPLAYED_SUFFIX))
    return counts


def now_ms() -> int:
    return int(time.time() * 1000)


def _buffer_folder(run_dir: str | Path) -> Path:
    path = Path(run_dir)
    folder = path if path.name == BUFFER_DIR else path / BUFFER_DIR
    if not (folder / CALLS_FILE).is_file():
        raise ConfigError(
            f"no tracking buffer in {path} (looked for {folder / CALLS_FILE}): this run's "
            "tracking calls all reached MLflow, or it was already replayed."
        )
    return folder
