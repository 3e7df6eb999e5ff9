"""Checks the CLI makes on its arguments before importing torch or touching anything.

Each check costs a ``stat`` or two, so a missing file or an unwritable output folder is
reported at once, before seconds of imports, an MLflow run or an output folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from counterfeit.gan.errors import CheckpointError, DataError, OutputError
from counterfeit.gan.tracking import is_mlflow_uri


def existing_file(path: str | Path, what: str, error: type[Exception] = DataError) -> Path:
    """``path`` as a Path; ``error`` names ``what`` is missing, or is a folder, not a file."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise error(f"{what} {path} is a folder, not a file.")
    if not path.is_file():
        raise error(f"{what} not found: {path}")
    return path


def existing_checkpoint(path: str | Path) -> Path:
    """A ``--checkpoint`` that exists (a :class:`CheckpointError` otherwise)."""
    return existing_file(path, "checkpoint", CheckpointError)


def existing_model(path: str | Path) -> str | Path:
    """A ``--model`` file that exists (a :class:`CheckpointError` otherwise), or an MLflow
    model URI unchanged (it is fetched, and checked, when the model loads)."""
    if is_mlflow_uri(path):
        return str(path)
    return existing_file(path, "model file", CheckpointError)


def existing_folder(path: str | Path, what: str) -> Path:
    """A folder that exists (a :class:`DataError` naming ``what`` otherwise)."""
    path = Path(path).expanduser()
    if not path.is_dir():
        found = "is a file" if path.is_file() else "does not exist"
        raise DataError(f"{what} {path} {found}; it must be a folder.")
    return path


def writable_folder(path: str | Path, flag: str = "--out") -> Path:
    """Check that the output folder ``path`` exists or can be created, and can be written.

    The folder is not created: a temporary folder is made and removed in it, or in its
    nearest existing parent.

    Raises:
        OutputError: ``path`` or a parent is a file, or the place is not writable
            (read-only file system, permissions).
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path} is a file; give a folder (a new or an existing one).")
    parent = path
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(
            f"cannot create the output folder {path}: {parent} is a file, not a folder. "
            f"Choose another {flag}."
        )
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".counterfeit-write-test-", dir=parent))
    except OSError as exc:
        raise OutputError(
            f"cannot write the output folder {path}: {parent} is not writable "
            f"({exc.strerror or exc}). Choose another {flag} (a folder you can write to)."
        ) from None
    return path


def writable_file(path: str | Path, flag: str = "--out") -> Path:
    """Check that the output file ``path`` can be written: not a folder, its folder writable."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputError(f"{flag} {path} is a folder; give a file name.")
    writable_folder(path.parent, flag)
    return path
