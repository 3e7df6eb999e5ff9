"""What a user sees when a ``counterfeit`` command fails: one message, never a traceback.

Exit status:

* 2 (:data:`USER_ERROR`): a :class:`~counterfeit.gan.errors.CounterfeitError`, or a write
  the system refused (a full disk, a read-only file system, permissions): its message
  says what happened, which file, key or shape, and what to do.
* 3 (:data:`INTERNAL_ERROR`): anything else, a fault in counterfeit or a library: a
  one-line summary, and the full traceback in ``counterfeit-error.log`` in the output
  folder when it exists, else in the temporary folder (the message says where).
* 130 (:data:`INTERRUPTED`): Ctrl-C, or SIGTERM inside :func:`sigterm_stops_like_ctrl_c`.

``--debug`` prints the traceback as well.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import shlex
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from counterfeit.gan.errors import CounterfeitError, OutputError, TrainingInterrupted, reason

USER_ERROR = 2
INTERNAL_ERROR = 3
INTERRUPTED = 130
LOG_NAME = "counterfeit-error.log"
# A file the system refused (the user can free space, fix permissions or choose another path).
REFUSED = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def run_command(
    handler: Callable[[argparse.Namespace], int],
    args: argparse.Namespace,
    argv: Sequence[str] = (),
) -> int:
    """Run a command's handler; turn any exception into a message and an exit status.

    ``argv`` (the command line) heads the log of an internal error.
    """
    debug = getattr(args, "debug", False)
    try:
        return handler(args)
    except TrainingInterrupted as exc:
        _say(f"counterfeit: {exc}", debug)
        return INTERRUPTED
    except KeyboardInterrupt:
        _say("counterfeit: interrupted.", debug)
        return INTERRUPTED
    except CounterfeitError as exc:
        _say(f"counterfeit: error: {exc}", debug)
        return USER_ERROR
    except OSError as exc:
        if exc.errno not in REFUSED:
            return _internal_error(exc, args, argv, debug)
        what = f"cannot write {exc.filename}" if exc.filename else "a write was refused"
        refused = OutputError(
            f"{what}: {exc.strerror}. Free some space or fix the permissions, or choose "
            "another output path (--out)."
        )
        _say(f"counterfeit: error: {refused}", debug)
        return USER_ERROR
    except Exception as exc:
        return _internal_error(exc, args, argv, debug)


@contextlib.contextmanager
def sigterm_stops_like_ctrl_c():
    """SIGTERM (a scheduler's time limit, ``kill``) does what Ctrl-C does: during training
    the step finishes, a checkpoint is written and the run ends KILLED, ready to resume; a
    sweep stops its members the same way and records them as interrupted."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def handle(signum, frame) -> None:
        print("counterfeit: SIGTERM: stopping as for Ctrl-C.", file=sys.stderr, flush=True)
        on_ctrl_c = signal.getsignal(signal.SIGINT)
        if not callable(on_ctrl_c):  # SIGINT ignored (a background job) or not from Python
            raise KeyboardInterrupt
        on_ctrl_c(signal.SIGINT, frame)

    signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _say(message: str, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    print(message, file=sys.stderr, flush=True)


def _internal_error(
    exc: Exception, args: argparse.Namespace, argv: Sequence[str], debug: bool
) -> int:
    """One line on the terminal, the traceback in a log file; exit status 3."""
    command = shlex.join(["counterfeit", *argv])
    text = f"{command}\n{time.strftime('%Y-%m-%d %H:%M:%S')}\n\n" + "".join(
        traceback.format_exception(exc)
    )
    log = write_log(text, getattr(args, "out", None))
    if debug:
        print(text, file=sys.stderr)
    where = f"The full traceback is in {log}" if log else "The traceback could not be written"
    print(
        f"counterfeit: internal error: {reason(exc)}\n"
        f"{where} (--debug prints it). None of counterfeit's checks caught this error: "
        "unless it comes from your own code (a model, an --arch module), please report it "
        "with that log.",
        file=sys.stderr,
        flush=True,
    )
    return INTERNAL_ERROR


def write_log(text: str, out: str | Path | None) -> Path | None:
    """Write ``text`` to ``OUT/counterfeit-error.log`` when the folder ``out`` exists, else to
    a new file in the temporary folder; returns the path (None if nothing could be written)."""
    if out is not None and Path(out).is_dir():
        try:
            path = Path(out) / LOG_NAME
            path.write_text(text)
            return path
        except OSError:
            pass
    try:
        with tempfile.NamedTemporaryFile(
            "w", prefix="counterfeit-error-", suffix=".log", delete=False
        ) as file:
            file.write(text)
        return Path(file.name)
    except OSError:
        return None
