"""``counterfeit`` commands in real child processes that start without paying for imports.

A ``counterfeit run`` spends about ten seconds of a 2-core machine importing torch,
``torch._dynamo`` (which the first optimizer pulls in), MLflow, SciPy, scikit-learn and
matplotlib before it does anything; the suite starts some twenty of them. Here each pytest
worker keeps one :mod:`multiprocessing` fork server that imports those modules once (it runs
no torch code, so its children start clean), and every command is a fresh fork of it running
:func:`counterfeit.recipes.cli.main`: its own process, environment, working directory,
signals, exit status and output pipes, as from the console script. The tests that check the
installed script itself (its start-up without torch, no traceback on a crash) still start it
with :mod:`subprocess`.
"""

from __future__ import annotations

import atexit
import io
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path

PRELOAD = [
    "torch",
    "torch._dynamo",
    "torch.export",
    "mlflow",
    "mlflow.store.tracking.sqlalchemy_store",
    "matplotlib.pyplot",
    "sklearn.datasets",
    "sklearn.linear_model",
    "scipy.stats",
    "counterfeit.recipes.cli",
    "counterfeit.recipes.run",
    "counterfeit.recipes.tasks.dann",
    "counterfeit.recipes.sweep",
]
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(PRELOAD)


def _main(
    args: list[str],
    env: dict[str, str],
    cwd: str | None,
    stdout: Connection,
    stderr: Connection,
    ignore_sigint: bool,
) -> None:
    """The child: become a fresh ``counterfeit ARGS`` process and exit with its status."""
    os.environ.clear()
    os.environ.update(env)
    if cwd is not None:
        os.chdir(cwd)
    os.dup2(stdout.fileno(), 1)
    os.dup2(stderr.fileno(), 2)
    stdout.close()
    stderr.close()
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=False)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN if ignore_sigint else signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.argv = ["counterfeit", *args]
    from counterfeit.recipes.cli import main

    try:
        code = main(args)
    except BaseException:  # what the interpreter would print for an uncaught exception
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()  # a forked child skips the interpreter's exit handlers
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


class CliProcess:
    """``counterfeit ARGS`` running in a child process; the subset of :class:`subprocess.Popen`
    the tests use (``stdout``/``stderr`` text pipes, ``poll``, ``wait``, ``send_signal``,
    ``kill``, ``communicate``, ``returncode``). ``merge_stderr`` sends both to ``stdout``."""

    def __init__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        merge_stderr: bool = False,
        ignore_sigint: bool = False,
    ) -> None:
        out_read, out_write = _CONTEXT.Pipe(duplex=False)
        err_read, err_write = (None, out_write) if merge_stderr else _CONTEXT.Pipe(duplex=False)
        self.args = ["counterfeit", *args]
        self._process = _CONTEXT.Process(
            target=_main,
            args=(
                list(args),
                dict(os.environ if env is None else env),
                None if cwd is None else str(cwd),
                out_write,
                err_write,
                ignore_sigint,
            ),
            daemon=False,
        )
        self._process.start()
        out_write.close()
        if err_read is not None:
            err_write.close()
        self.pid = self._process.pid
        self.stdout = _text(out_read)
        self.stderr = None if err_read is None else _text(err_read)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not self._process.is_alive():
            self._process.join()
            self.returncode = self._process.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.poll() is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode  # type: ignore[return-value]

    def wait_for_file(self, path: Path, timeout: float = 300) -> None:
        """Return once ``path`` exists, the command has ended, or ``timeout`` seconds passed
        (the caller's assertions tell which)."""
        deadline = time.time() + timeout
        while not path.exists() and self.poll() is None and time.time() < deadline:
            time.sleep(0.05)

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def communicate(self, timeout: float | None = None) -> tuple[str, str | None]:
        """Read both pipes to their end and wait for the exit, like ``Popen.communicate``."""
        texts: dict[str, str] = {}
        readers = [
            threading.Thread(target=lambda n=name, f=f: texts.__setitem__(n, f.read()))
            for name, f in (("out", self.stdout), ("err", self.stderr))
            if f is not None
        ]
        for reader in readers:
            reader.start()
        self.wait(timeout)
        for reader in readers:
            reader.join(timeout)
        return texts.get("out", ""), texts.get("err")


def _text(connection: Connection) -> io.TextIOWrapper:
    """A text file over a pipe's read end (the Connection gives up its descriptor)."""
    fd = os.dup(connection.fileno())
    connection.close()
    return open(fd, encoding="utf-8", errors="replace")


def run_cli(
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess:
    """Run ``counterfeit ARGS`` to its end; ``env`` is added to this process's environment."""
    process = CliProcess(*args, env={**os.environ, **(env or {})}, cwd=cwd)
    try:
        stdout, stderr = process.communicate(timeout)
    finally:
        process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr or "")
