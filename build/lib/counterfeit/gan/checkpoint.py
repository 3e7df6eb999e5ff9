"""Atomic, safe checkpoints.

A checkpoint is a plain dictionary of tensors and Python scalars written with
:func:`torch.save` to a temporary file in the same directory and renamed over
the target, so a crash never leaves a half-written file. Loading always uses
``weights_only=True``: a checkpoint can hold tensors, numbers, strings, lists
and dicts, never arbitrary pickled objects.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from counterfeit.gan.errors import CheckpointError

FORMAT = "counterfeit-checkpoint/1"


def save_atomic(obj: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``obj`` to ``path`` atomically (temp file + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``.

    Raises:
        CheckpointError: when the file is missing, unreadable, or holds objects
            that are not plain tensors and containers (a pickled model, say).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(exc).__name__}: {str(exc).splitlines()[0]}. "
            "Checkpoints are loaded with weights_only=True; files holding pickled Python "
            "objects are refused."
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a checkpoint dictionary.")
    return state


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
