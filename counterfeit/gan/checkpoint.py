"""Atomic, safe checkpoints.

A checkpoint is a plain dictionary of tensors and Python scalars written with
:func:`torch.save` to a temporary file in the same directory and renamed over
the target, so a crash never leaves a half-written file: a failed write (a full
disk, say) leaves the previous checkpoint as it was. Loading always uses
``weights_only=True``: a checkpoint can hold tensors, numbers, strings, lists
and dicts, never arbitrary pickled objects. A file that cannot be read is told
apart: cut short or damaged, not a checkpoint at all, or holding pickled objects.
"""

from __future__ import annotations

import os
import pickle
import random
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from counterfeit.gan.errors import CheckpointError

FORMAT = "counterfeit-checkpoint/1"
TEMP_SUFFIX = ".tmp"
ZIP_MAGIC = b"PK\x03\x04"  # how every file torch.save writes begins
PICKLE_MAGIC = b"\x80"  # torch's legacy (pre-zip) format is a pickle stream


def save_atomic(obj: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``obj`` to ``path`` atomically (temp file + fsync + rename).

    Temporary files that an earlier, killed write to ``path`` left behind are removed
    first.

    Raises:
        CheckpointError: the file system refused the write (no space left, read-only,
            ...); the message names the file and the free space, ``path`` keeps its
            previous content and the temporary file is removed.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        cause = _os_error(exc)
        if cause is None:
            raise
        raise CheckpointError(_write_failure(path, cause)) from exc
    return path


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of unfinished writes to ``path``; returns what went."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = sorted(path.parent.glob(f".{path.name}.*{TEMP_SUFFIX}"))
    for leftover in stale:
        leftover.unlink(missing_ok=True)
    return stale


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` (torch.save wraps a failed write in a RuntimeError)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _write_failure(path: Path, error: OSError) -> str:
    """What a failed checkpoint write says: the file, the reason, the free space, what is kept."""
    reason = error.strerror or str(error) or type(error).__name__
    try:
        free = f"{format_bytes(shutil.disk_usage(path.parent).free)} free in {path.parent}"
    except OSError:
        free = f"free space in {path.parent} unknown"
    kept = (
        f"{path} still holds the previous checkpoint, unchanged"
        if path.is_file()
        else "no earlier checkpoint exists"
    )
    return f"cannot write checkpoint {path}: {reason} ({free}); {kept}."


def format_bytes(size: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``.

    Raises:
        CheckpointError: when the file is missing, empty, cut short or damaged, not a
            checkpoint, or holds objects that are not plain tensors and containers (a
            pickled model, say); each case says which and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, KeyError...
        raise CheckpointError(_read_failure(path, exc)) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a checkpoint dictionary.")
    return state


def _read_failure(path: Path, exc: Exception) -> str:
    """Why ``torch.load`` could not read ``path``, told from the file itself."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(len(ZIP_MAGIC))
    remedy = (
        "Delete it (a training run then starts over without --resume) or put back an intact copy."
    )
    if size == 0:
        return f"checkpoint {path} is empty (0 bytes). {remedy}"
    if head == ZIP_MAGIC and not zipfile.is_zipfile(path):
        return (
            f"checkpoint {path} is cut short ({format_bytes(size)}; the end of its zip archive "
            f"is missing): a copy or a disk that ran out of space stopped mid-file. {remedy}"
        )
    if head == ZIP_MAGIC and _damaged_member(path):
        return f"checkpoint {path} is damaged (a CRC check of its contents fails). {remedy}"
    if head == ZIP_MAGIC and not _holds_pickle(path):
        return f"{path} is a zip archive but not a torch checkpoint (no data.pkl). Check the path."
    if isinstance(exc, pickle.UnpicklingError) and "weights only" in str(exc).lower():
        return (
            f"cannot read checkpoint {path}: it holds pickled Python objects, not only "
            "tensors and plain values. Checkpoints are loaded with weights_only=True and "
            "such files are refused: they can run code when loaded."
        )
    if head != ZIP_MAGIC and not head.startswith(PICKLE_MAGIC):
        return (
            f"{path} is not a checkpoint: torch.save writes a zip archive, and this file "
            f"starts with {head!r}. Check the path."
        )
    first = str(exc).splitlines()[0] if str(exc) else ""
    return (
        f"cannot read checkpoint {path} ({format_bytes(size)}): {type(exc).__name__}"
        f"{': ' + first[:200] if first else ''}. It may be damaged. {remedy}"
    )


def _holds_pickle(path: Path) -> bool:
    """Whether the zip archive at ``path`` has the ``data.pkl`` every torch.save file has."""
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("data.pkl") for name in archive.namelist())


def _damaged_member(path: Path) -> bool:
    """Whether a member of the zip archive at ``path`` fails its CRC check."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is not None
    except (zipfile.BadZipFile, OSError, EOFError):
        return True


def capture_rng_state() -> dict[str, Any]:
    """Every random-number generator's state, in ``weights_only``-safe types."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["kind"],
            np_state["keys"].cpu().numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def load_module_state(module: torch.nn.Module, state: dict, source: str) -> None:
    """``module.load_state_dict(state)`` with an error that names the mismatch."""
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = [line.strip() for line in str(exc).splitlines() if line.strip()][:4]
        raise CheckpointError(
            f"{source} does not match {type(module).__name__}: " + " ".join(first)
        ) from None


def load_method(
    path: str | os.PathLike,
    known: Mapping[str, type[torch.nn.Module]],
    needs: str,
    init_overrides: Mapping[str, Any] | None = None,
) -> torch.nn.Module:
    """Rebuild a trained method from its training checkpoint (``weights_only``), in eval mode.

    ``known`` maps the checkpoint's ``method_class`` to the class to build with the saved
    constructor arguments (updated by ``init_overrides``); ``needs`` ends the error for
    any other class (what the caller wants, with an example path).

    Raises:
        CheckpointError: the file is missing, unreadable, of another method, or mismatched.
    """
    state = load_checkpoint(path)
    name = state.get("method_class")
    if name not in known:
        raise CheckpointError(f"{path} holds a '{name}' checkpoint; {needs}")
    model = known[name](**{**state["method_init"], **(init_overrides or {})})
    load_module_state(model, state["method"], str(path))
    return model.eval()
