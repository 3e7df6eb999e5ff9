"""MLflow tracking: every MLflow call in counterfeit goes through :class:`Tracker`.

A Tracker is one MLflow run. It talks to MLflow through an explicit
:class:`mlflow.MlflowClient` (no global "active run"), so library users can
hold several runs at once and tests can point it anywhere.

Where runs go: ``uri`` when given, else ``MLFLOW_TRACKING_URI``, else MLflow's
own default (an embedded SQLite store, ``mlflow.db`` in the working
directory). Open it with ``mlflow ui`` (or ``mlflow ui --backend-store-uri URI``).
:func:`check_store` tells in seconds whether a store can take a run: a local one is
writable, a server answers.

Tracking never stops training. Requests to a tracking server are retried a bounded number
of times (``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` / ``_TIMEOUT`` / ``_BACKOFF_FACTOR`` default to
2 retries, 10 s, factor 1 here, unless set); when a call still fails, the Tracker warns once
and appends that call and every later one to an :class:`~counterfeit.gan.tracking_buffer.OfflineBuffer`
in the run folder, to be replayed with :func:`~counterfeit.gan.tracking_buffer.replay_buffer`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from counterfeit.gan.errors import ConfigError, TrainingInterrupted
from counterfeit.gan.tracking_buffer import BUFFER_DIR, OfflineBuffer, now_ms

MAX_PARAM_LENGTH = 6000
# Bounded retries for a tracking server (MLflow's own defaults retry for minutes).
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
# A new run is nested under the run this names (`counterfeit sweep` sets it for its members).
PARENT_RUN_ENV = "COUNTERFEIT_PARENT_RUN_ID"
# How a tracking server is probed before a run starts: tries, seconds each, pause after each.
SERVER_PROBE = (3, 2.0, 0.5)
# A model kept in MLflow: ``runs:/RUN_ID/PATH``, ``models:/NAME/VERSION``, ``models:/NAME@ALIAS``.
MODEL_URI_SCHEMES = ("runs:/", "models:/")


def is_mlflow_uri(location: str | Path) -> bool:
    """True for a model kept in MLflow (``runs:/...``, ``models:/...``), not a local file."""
    return str(location).startswith(MODEL_URI_SCHEMES)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists become comma-joined strings."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = ",".join(str(v) for v in value)
        else:
            flat[name] = value
    return flat


class Tracker:
    """One MLflow run: params, step metrics, artifacts, figures, image grids, models.

    Args:
        experiment: MLflow experiment name (created when missing).
        run_name: the run's display name.
        uri: tracking URI; None uses ``MLFLOW_TRACKING_URI`` or MLflow's default.
        tags: run tags.
        enabled: False gives a tracker that records nothing (e.g. ranks > 0).
        run_id: continue this existing run (e.g. when a training run resumes).
        buffer_dir: the run folder; when the store becomes unreachable, calls are kept in
            ``buffer_dir/tracking-buffer`` (without it they are dropped, with a warning).

    Use as a context manager; the run ends FINISHED, FAILED or KILLED (Ctrl-C, or
    :class:`~counterfeit.gan.errors.TrainingInterrupted`); a run that did not finish is
    tagged with the exception: ``error`` (its message, one line) and ``error_type``.
    """

    def __init__(
        self,
        experiment: str = "counterfeit",
        run_name: str | None = None,
        uri: str | None = None,
        tags: Mapping[str, str] | None = None,
        enabled: bool = True,
        run_id: str | None = None,
        buffer_dir: str | Path | None = None,
    ) -> None:
        self.experiment = experiment
        self.run_name = run_name
        self.uri = uri
        self.tags = dict(tags or {})
        self.enabled = enabled
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self._resume_id = run_id
        self._checked = False
        self._client = None
        self._buffer_dir = Path(buffer_dir) if buffer_dir is not None else None
        self.buffer: OfflineBuffer | None = None

    # -- lifecycle ------------------------------------------------------------

    def check(self) -> None:
        """Fail in seconds, before any run exists, when the store cannot take one
        (see :func:`check_store`); nothing is created."""
        if self.enabled and not self._checked:
            check_store(self.tracking_uri)
            self._checked = True

    def start(self) -> Tracker:
        """Create the run, or reopen ``run_id`` (idempotent)."""
        if not self.enabled or self.run_id is not None:
            return self
        from mlflow import MlflowClient

        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        uri = self.uri or os.environ.get("MLFLOW_TRACKING_URI") or None
        self.check()
        try:
            self._client = MlflowClient(tracking_uri=uri)
            if self._resume_id is not None:
                self.experiment_id = self._client.get_run(self._resume_id).info.experiment_id
                self._client.update_run(self._resume_id, status="RUNNING")
                self.run_id = self._resume_id
                return self
            found = self._client.get_experiment_by_name(self.experiment)
            experiment_id = (
                found.experiment_id if found else self._client.create_experiment(self.experiment)
            )
            parent = os.environ.get(PARENT_RUN_ENV)
            tags = {**self.tags, "mlflow.parentRunId": parent} if parent else self.tags
            run = self._client.create_run(experiment_id, run_name=self.run_name, tags=tags)
            self.experiment_id = experiment_id
        except Exception as exc:  # MlflowException, connection errors...
            raise ConfigError(
                f"cannot start an MLflow run at '{self.tracking_uri}': "
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}. Check "
                "MLFLOW_TRACKING_URI / tracking.uri, or set tracking.enabled: false."
            ) from None
        self.run_id = run.info.run_id
        return self

    def end(self, status: str = "FINISHED") -> None:
        if self._client is not None and self.run_id is not None:
            self._call(
                lambda: self._client.set_terminated(self.run_id, status=status),
                "end",
                status=status,
                timestamp=now_ms(),
            )

    def __enter__(self) -> Tracker:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.end("FINISHED")
            return
        self.set_tags(
            {"error": _one_line(exc) or exc_type.__name__, "error_type": exc_type.__name__}
        )
        if issubclass(exc_type, (KeyboardInterrupt, TrainingInterrupted)):
            self.end("KILLED")
        else:
            self.end("FAILED")

    @property
    def tracking_uri(self) -> str:
        if self._client is not None:
            return self._client.tracking_uri
        import mlflow

        return self.uri or mlflow.get_tracking_uri()

    @property
    def is_server(self) -> bool:
        """Whether the store is a tracking server (an http or https URI)."""
        return urlparse(self.tracking_uri).scheme in ("http", "https")

    def where(self) -> str:
        """Where to look at the run: its page on a server, else the ``mlflow ui`` command."""
        if self.is_server:
            base = self.tracking_uri.rstrip("/")
            if self.experiment_id is None or self.run_id is None:
                return base
            return f"{base}/#/experiments/{self.experiment_id}/runs/{self.run_id}"
        return f"mlflow ui --backend-store-uri {self.tracking_uri}"

    @property
    def active(self) -> bool:
        return self.enabled and self.run_id is not None

    @property
    def offline(self) -> bool:
        """True once a call failed: later calls go to the buffer, not to MLflow."""
        return self.buffer is not None

    def _call(self, send: Callable[[], Any], op: str, **record: Any) -> None:
        """Send one call to MLflow, or buffer it once the store has failed."""
        if self.buffer is None:
            try:
                send()
                return
            except Exception as exc:  # MlflowException, connection errors, ...
                self._go_offline(exc)
        if self._buffer_dir is not None:
            self.buffer.append(op, **record)

    def _go_offline(self, exc: Exception) -> None:
        folder = self._buffer_dir / BUFFER_DIR if self._buffer_dir is not None else Path(".")
        self.buffer = OfflineBuffer(folder, self.run_id, self.tracking_uri)
        reason = f"{type(exc).__name__}: {_one_line(exc, 200)}" if str(exc).strip() else ""
        where = (
            f"training goes on; tracking calls are kept in {folder} (replay them with "
            f"`counterfeit tracking replay {self._buffer_dir}` once the store is back)"
            if self._buffer_dir is not None
            else "training goes on; later metrics are not recorded"
        )
        print(
            f"warning: MLflow at '{self.tracking_uri}' stopped answering ({reason}); {where}.",
            file=sys.stderr,
            flush=True,
        )

    def scoped(self, prefix: str) -> ScopedTracker:
        """A view of this run that prefixes metric names (e.g. ``"source-only/"``)."""
        return ScopedTracker(self, prefix)

    # -- logging ----------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log (nested) params, flattened to dotted keys."""
        if not self.active:
            return
        from mlflow.entities import Param

        items = [Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in sorted(flatten(params).items())]

        def send() -> None:
            for start in range(0, len(items), 100):  # MLflow caps a batch at 100 params
                self._client.log_batch(self.run_id, params=items[start : start + 100])

        self._call(send, "params", params={p.key: p.value for p in items})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if not self.active:
            return
        from mlflow.entities import Metric

        now = now_ms()
        entries = [Metric(_metric_key(k), float(v), now, step or 0) for k, v in metrics.items()]

        def send() -> None:
            for start in range(0, len(entries), 1000):
                self._client.log_batch(self.run_id, metrics=entries[start : start + 1000])

        record = {m.key: m.value for m in entries}
        self._call(send, "metrics", metrics=record, step=step or 0, timestamp=now)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if not self.active:
            return
        tags = {key: str(value) for key, value in tags.items()}

        def send() -> None:
            for key, value in tags.items():
                self._client.set_tag(self.run_id, key, value)

        self._call(send, "tags", tags=tags)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Upload a file or a whole directory."""
        if not self.active:
            return
        path = Path(path)

        def send() -> None:
            if path.is_dir():
                self._client.log_artifacts(self.run_id, str(path), artifact_path)
            else:
                self._client.log_artifact(self.run_id, str(path), artifact_path)

        if self.buffer is None:
            self._call(send, "artifact")
            if self.buffer is None:
                return
        if self._buffer_dir is not None:
            self.buffer.keep_artifact(path, artifact_path)

    def register_model(self, artifact: str, name: str) -> str | None:
        """Register the run's artifact ``artifact`` (e.g. ``models/dann.pt2``) as a new
        version of the registered model ``name`` (created if new); returns the version.

        Not buffered: once the store has failed, nothing is registered and a warning says so.
        """
        if not self.active:
            return None
        if self.offline:
            print(
                f"warning: MLflow is unreachable; {artifact} was not registered as '{name}'.",
                file=sys.stderr,
                flush=True,
            )
            return None
        from mlflow.exceptions import MlflowException

        client = self._client
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        source = f"{client.get_run(self.run_id).info.artifact_uri}/{artifact}"
        return client.create_model_version(name, source=source, run_id=self.run_id).version

    def log_dict(self, data: Mapping[str, Any], filename: str) -> None:
        """Log ``data`` as a JSON artifact named ``filename``."""
        if not self.active:
            return
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / filename
            file.write_text(json.dumps(data, indent=2, default=str))
            self.log_artifact(file)

    def log_figure(self, figure, filename: str, artifact_path: str = "plots") -> None:
        """Log a matplotlib figure as a PNG artifact."""
        if not self.active:
            return
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / filename
            figure.savefig(file, dpi=120, bbox_inches="tight")
            self.log_artifact(file, artifact_path)

    def log_image_grid(
        self, images: Any, filename: str, artifact_path: str = "samples", nrow: int = 10
    ) -> None:
        """Log images (N, C, H, W) in [0, 1] as one PNG grid artifact named ``filename``."""
        if not self.active:
            return
        from counterfeit.gan.plots import save_image_grid

        with tempfile.TemporaryDirectory() as tmp:
            self.log_artifact(save_image_grid(images, Path(tmp) / filename, nrow), artifact_path)


def check_store(uri: str) -> None:
    """Fail in seconds, naming ``uri`` and how to change it, when the store cannot take a run.

    A server (http, https) must answer a request (any HTTP status will do: it is there);
    a local store (SQLite file, folder) must be writable.

    Raises:
        ConfigError: the server does not answer, or the local store is read-only.
    """
    if urlparse(uri).scheme in ("http", "https"):
        check_server(uri)
    else:
        check_store_writable(uri)


def check_server(uri: str, probe: tuple[int, float, float] = SERVER_PROBE) -> None:
    """A tracking server at ``uri`` answers one request within ``probe`` (tries, timeout,
    pause): at most 3 x 2 s plus 1.5 s of pauses by default, where MLflow's client retries
    for minutes."""
    tries, timeout, pause = probe
    problem = ""
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
                return
        except urllib.error.HTTPError:  # it answered: an auth wall or no /health route
            return
        except (OSError, ValueError) as exc:
            problem = _one_line(getattr(exc, "reason", None) or exc) or type(exc).__name__
        if attempt + 1 < tries:
            time.sleep(pause * (attempt + 1))
    raise ConfigError(
        f"cannot reach the MLflow tracking server at '{uri}' ({problem}; {tries} tries). "
        "Start it, point MLFLOW_TRACKING_URI (or the recipe's tracking.uri) at a running "
        "server, or run without tracking: --set tracking.enabled=false."
    )


def check_store_writable(uri: str) -> None:
    """Fail at once, naming the place, when a local store (SQLite file, folder) is not writable.

    MLflow itself retries a read-only SQLite store for minutes before it gives up.
    """
    path: Path | None = None
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
    elif uri.startswith("file:"):
        path = Path(urlparse(uri).path)
    elif "://" not in uri:
        path = Path(uri)
    if path is None:
        return
    existing = path if path.exists() else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if (existing != path and not existing.is_dir()) or not _writable(existing):
        raise ConfigError(
            f"the MLflow store '{uri}' is not writable ({existing} is read-only). Run from a "
            "writable folder, set MLFLOW_TRACKING_URI (or tracking.uri) to a writable place, "
            "or set tracking.enabled: false."
        )


def _writable(path: Path) -> bool:
    """Whether a file can be opened for writing, or a folder can take a new file."""
    try:
        if path.is_dir():
            with tempfile.TemporaryFile(dir=path):
                return True
        with path.open("ab"):  # an existing store file
            return True
    except OSError:
        return False


def _one_line(exc: object, limit: int = 500) -> str:
    """The first non-empty line of ``str(exc)``, cut at a word before ``limit`` characters."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[:limit].rsplit(" ", 1)[0] + "..."


def _metric_key(name: str) -> str:
    """MLflow metric names allow letters, digits, ``_ - . / space``."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name)


class ScopedTracker:
    """Logs metrics into a parent :class:`Tracker` under a name prefix."""

    def __init__(self, parent: Tracker, prefix: str) -> None:
        self.parent = parent
        self.prefix = prefix

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.parent.log_metrics({f"{self.prefix}{k}": v for k, v in metrics.items()}, step)
