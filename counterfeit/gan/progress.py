"""Training progress that suits where it goes.

On a terminal (or in a notebook) a live :mod:`tqdm` bar; when the output is a
pipe or a file (CI, ``nohup``, ``> log``), plain lines instead of the bar's
carriage-return frames: one every so many steps, on logging steps, so a log of
any length stays a few dozen readable lines per training run.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Literal, Protocol, TextIO

from tqdm.auto import tqdm
from tqdm.notebook import tqdm as notebook_tqdm

Mode = Literal["bar", "lines", "off"]
MAX_LINES = 50  # plain lines per training run, about


class Progress(Protocol):
    """What the Trainer reports progress through."""

    def advance(self) -> None:
        """One step done."""

    def show(self, step: int, metrics: dict[str, str]) -> None:
        """The metrics of a logging step."""

    def write(self, text: str, file: TextIO | None = None) -> None:
        """A message (an evaluation, a warning) that does not break the display."""

    def close(self) -> None:
        """The run ended (or stopped)."""


def is_live(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default: stderr, where the bar draws) shows a live display.

    True for a terminal, and in a notebook kernel where :mod:`tqdm.auto` draws a widget.
    """
    if issubclass(tqdm, notebook_tqdm):
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def progress_mode(enabled: bool, stream: TextIO | None = None) -> Mode:
    """``"bar"`` on a live display, ``"lines"`` on a pipe or file, ``"off"`` when disabled."""
    if not enabled:
        return "off"
    return "bar" if is_live(stream) else "lines"


def make_progress(
    mode: Mode, total: int, initial: int, description: str, log_every: int
) -> Progress:
    """The :class:`Progress` for ``mode`` (see :func:`progress_mode`)."""
    if mode == "bar":
        return BarProgress(total, initial, description)
    if mode == "lines":
        return LineProgress(total, initial, description, log_every)
    return SilentProgress()


class BarProgress:
    """A live tqdm bar with the latest logged metrics beside it."""

    def __init__(self, total: int, initial: int, description: str) -> None:
        self.bar = tqdm(
            total=total, initial=initial, desc=description, dynamic_ncols=True, leave=True
        )

    def advance(self) -> None:
        self.bar.update(1)

    def show(self, step: int, metrics: dict[str, str]) -> None:
        self.bar.set_postfix(metrics, refresh=False)

    def write(self, text: str, file: TextIO | None = None) -> None:
        tqdm.write(text, file=file)

    def close(self) -> None:
        self.bar.close()


class LineProgress:
    """One plain line on logging steps at least ``total / MAX_LINES`` steps apart.

    Lines go to stderr (where the bar would draw), e.g.
    ``dann: step 120/6000 (2%), 13.1 steps/s, ETA 7m29s  loss/class=1.42 ...``.
    """

    def __init__(
        self,
        total: int,
        initial: int,
        description: str,
        log_every: int,
        stream: TextIO | None = None,
    ) -> None:
        self.total = total
        self.description = description
        self.every = max(log_every, math.ceil(total / MAX_LINES))
        self.stream = stream
        self.start_step = self.step = self.printed = initial
        self.start = time.perf_counter()

    def advance(self) -> None:
        self.step += 1

    def show(self, step: int, metrics: dict[str, str]) -> None:
        if step - self.printed < self.every and step != self.total:
            return
        self.printed = step
        elapsed = time.perf_counter() - self.start
        rate = (step - self.start_step) / elapsed if elapsed > 0 else 0.0
        left = self.total - step
        eta = f", ETA {_duration(left / rate)}" if rate > 0 and left else ""
        values = "  ".join(f"{k}={v}" for k, v in metrics.items())
        self._print(
            f"{self.description}: step {step}/{self.total} ({100 * step // self.total}%), "
            f"{rate:.1f} steps/s{eta}  {values}".rstrip()
        )

    def write(self, text: str, file: TextIO | None = None) -> None:
        print(text, file=file or sys.stdout, flush=True)

    def close(self) -> None:
        if self.step != self.printed:
            self.show(self.step, {})

    def _print(self, line: str) -> None:
        print(line, file=self.stream or sys.stderr, flush=True)


class SilentProgress:
    """No progress display; messages are still printed."""

    def advance(self) -> None:
        pass

    def show(self, step: int, metrics: dict[str, str]) -> None:
        pass

    def write(self, text: str, file: TextIO | None = None) -> None:
        print(text, file=file or sys.stdout, flush=True)

    def close(self) -> None:
        pass


def _duration(seconds: float) -> str:
    """``452.3`` -> ``'7m32s'``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
