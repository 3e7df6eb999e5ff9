"""Errors a user can cause and fix.

Every exception here carries a message that says what went wrong and what to
do about it. The ``counterfeit`` CLI prints them without a traceback; library
users can catch :class:`CounterfeitError` to handle all of them at once.
"""

from __future__ import annotations

import re
from pathlib import Path


class CounterfeitError(Exception):
    """Base class for problems the user can fix (bad path, bad config, bad data)."""


class ConfigError(CounterfeitError):
    """A recipe or configuration value is missing, unknown or of the wrong type."""


class DataError(CounterfeitError):
    """Data files are missing or images have an unexpected shape, range or type."""


class CheckpointError(CounterfeitError):
    """A checkpoint or saved model cannot be read, or does not match what it is loaded into."""


class ShapeError(CounterfeitError):
    """A model does not take (or return) tensors of the shape the data gives it."""


class OutputError(CounterfeitError):
    """An output folder or file cannot be created or written."""


class NonFiniteLossError(CounterfeitError):
    """Training produced a NaN or infinite value; the last good checkpoint is kept."""

    def __init__(self, step: int, metric: str, checkpoint: Path | None) -> None:
        self.step = step
        self.metric = metric
        self.checkpoint = checkpoint
        kept = (
            f" The last good checkpoint is kept at {checkpoint}."
            if checkpoint
            else " No checkpoint had been written yet."
        )
        super().__init__(
            f"training stopped: '{metric}' became NaN or infinite at step {step}.{kept} "
            "Lower the learning rate, or check the input data for NaN values."
        )


class TrainingInterrupted(CounterfeitError):
    """Training was stopped by the user (Ctrl-C); a checkpoint was written first."""

    def __init__(self, step: int, checkpoint: Path | None) -> None:
        self.step = step
        self.checkpoint = checkpoint
        where = (
            f"checkpoint written to {checkpoint}; run the same command with --resume to continue."
            if checkpoint
            else "no checkpoint directory was configured, so progress was not saved."
        )
        super().__init__(f"interrupted at step {step}: {where}")


def reason(exc: BaseException, limit: int = 240) -> str:
    """``"TypeName: the line that says what went wrong"`` of a library's exception, one line.

    Torch's messages often open with boilerplate and put the cause last (a TorchScript
    interpreter traceback, a weights-only unpickler's advice); the line that names the
    cause is picked, and a long line is cut at a word boundary with an ellipsis.
    """
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else ""
    if "Traceback of TorchScript" in text:
        line = lines[-1]
    if len(line) > limit:
        line = line[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "..."
    if re.match(r"[\w.]+(Error|Exception): ", line):  # the line names its own exception
        return line
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__
