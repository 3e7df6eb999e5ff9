"""Loading a user's classifier from a file, safely.

Accepted, without running code from the file:

* a ``torch.export`` program (``.pt2``, e.g. ``runs/NAME/models/*.pt2``),
  through :func:`gan.export.load_exported`;
* a TorchScript module (``torch.jit.save``), through :func:`torch.jit.load`;
* a state_dict (``torch.save(model.state_dict())``, also ``{"state_dict": ...}``
  or a counterfeit training checkpoint) together with ``arch="module:Class"``,
  read with ``torch.load(weights_only=True)`` into ``Class()``;
* any of these kept in MLflow: ``runs:/RUN_ID/PATH``, ``models:/NAME/VERSION`` or
  ``models:/NAME@ALIAS`` (:mod:`robust.mlflow_models` downloads the file first).

A whole pickled model (``torch.save(model)``) can run arbitrary code when
loaded, so it is refused unless ``trust_pickle=True``. :func:`check_input` runs a
loaded model on one tiny batch of the data's shape and names a mismatch.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from counterfeit.gan.checkpoint import load_module_state
from counterfeit.gan.errors import CheckpointError, ConfigError, ShapeError, reason
from counterfeit.gan.export import ExportedModule, load_exported
from counterfeit.gan.tracking import is_mlflow_uri
from counterfeit.robust.mlflow_models import fetch_model_file


def detect_format(path: str | Path) -> str:
    """``"torch.export"``, ``"torchscript"`` or ``"torch.save"`` (from the archive's contents)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; --model takes a model file.")
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    if not zipfile.is_zipfile(path):
        _check_legacy_pickle(path)
        return "torch.save"  # the legacy (non-zip) torch.save format
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if any(n.endswith(("/archive_format", "/models/model.json")) for n in names):
        return "torch.export"
    if any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names):
        return "torchscript"
    return "torch.save"


def _check_legacy_pickle(path: Path) -> None:
    """Refuse a file that is not a zip archive and does not start like a pickle, naming what it is."""
    with path.open("rb") as file:
        head = file.read(512)
    fix = "--model takes a .pt2 program, a TorchScript file or a torch.save file."
    if not head:
        raise CheckpointError(f"{path} is empty (0 bytes). {fix}")
    if head.startswith(b"PK"):
        raise CheckpointError(
            f"{path} is a damaged or truncated zip archive (it starts like a .pt2, TorchScript "
            f"or torch.save file, but its end is missing): copy or export it again. {fix}"
        )
    if head.startswith(b"\x80"):  # a pickle (protocol 2+), as the legacy torch.save writes
        return
    try:
        printable = head.decode("utf-8").replace("\n", "").replace("\t", "").isprintable()
    except UnicodeDecodeError:
        printable = False
    what = "a text file" if printable else "neither a zip archive nor a pickle"
    raise CheckpointError(
        f"{path} is not a model file: it is {what} (it starts {head[:16]!r}). {fix}"
    )


def load_model(
    path: str | Path,
    *,
    arch: str | None = None,
    trust_pickle: bool = False,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """Load a classifier from ``path`` (see the module docstring for the formats).

    Args:
        arch: ``"module:Class"`` to build when ``path`` holds a state_dict;
            ``Class()`` is called without arguments. The current directory is
            importable.
        trust_pickle: allow a whole pickled model (runs code from the file).
        device: where to put the model.

    Returns:
        The model, in eval mode (``torch.export`` programs are fixed in the mode
        they were exported in).

    Raises:
        CheckpointError: missing or unreadable file, pickled model without
            ``trust_pickle``, state_dict without ``arch`` or not matching it, an MLflow
            URI that cannot be fetched.
        ConfigError: a malformed ``arch``.
    """
    if is_mlflow_uri(path):
        with tempfile.TemporaryDirectory() as folder:
            local = fetch_model_file(str(path), folder)
            return load_model(local, arch=arch, trust_pickle=trust_pickle, device=device)
    path = Path(path)
    kind = detect_format(path)
    if arch is not None and kind != "torch.save":
        raise ConfigError(
            f"--arch applies to state_dict files; {path} is a {kind} program that already "
            "holds its architecture. Drop --arch."
        )
    if kind == "torch.export":
        return load_exported(path).to(device)
    if kind == "torchscript":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated
                model = torch.jit.load(str(path), map_location=device)
        except Exception as exc:
            raise CheckpointError(f"cannot load {path} as TorchScript: {reason(exc)}") from None
        return model.eval()
    return _load_saved(path, arch, trust_pickle, device)


def _load_saved(path: Path, arch: str | None, trust_pickle: bool, device) -> nn.Module:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's weights-only unpickler names the globals it refused
        if "Unsupported global" not in str(exc):
            raise CheckpointError(
                f"cannot read {path}: not a torch.export program, TorchScript module or "
                f"torch.save file ({reason(exc)})."
            ) from None
        if not trust_pickle:
            raise CheckpointError(
                f"{path} holds pickled Python objects (a whole model saved with "
                "torch.save(model)); loading it can run arbitrary code, so it is refused. "
                "Re-save it as torch.export (.pt2), TorchScript or a state_dict (with "
                "--arch module:Class), or pass --trust-pickle (trust_pickle=True) if you "
                "trust where the file came from."
            ) from None
        return _load_pickled(path, device)
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path} holds a {type(state).__name__}, not a model or a state_dict."
        )
    weights = _state_dict(state)
    if arch is None:
        raise CheckpointError(
            f"{path} holds a state_dict ({len(weights)} tensors) but not the network it belongs "
            "to: pass --arch module:Class (arch='module:Class'), e.g. --arch mymodels:Net."
        )
    model = build_arch(arch)
    load_module_state(model, weights, str(path))
    return model.to(device).eval()


def _load_pickled(path: Path, device) -> nn.Module:
    try:
        model = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:
        raise CheckpointError(f"cannot unpickle {path}: {reason(exc)}") from None
    if not isinstance(model, nn.Module):
        raise CheckpointError(f"{path} holds a {type(model).__name__}, not an nn.Module.")
    return model.eval()


def _state_dict(state: dict) -> dict:
    """The weights inside a state_dict file: plain, ``{"state_dict": ...}`` or a training checkpoint."""
    for key in ("state_dict", "model_state_dict", "method"):
        if isinstance(state.get(key), dict):
            return state[key]
    return state


def build_arch(arch: str) -> nn.Module:
    """Import ``module:Class`` (the current directory is importable) and call ``Class()``."""
    module_name, sep, attr = arch.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"--arch must look like module:Class (e.g. mymodels:Net), got '{arch}'.")
    try:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"--arch {arch}: cannot import '{module_name}': {exc}") from None
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"--arch {arch}: '{module_name}' has no attribute '{attr}'.")
        target = getattr(target, part)
    try:
        model = target()
    except Exception as exc:
        raise ConfigError(
            f"--arch {arch}: calling {attr}() failed: {reason(exc)}. The class must be "
            "constructible without arguments."
        ) from None
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"--arch {arch}: {attr}() returned a {type(model).__name__}, not an nn.Module."
        )
    return model


def input_shape(model: nn.Module) -> tuple[int, ...] | None:
    """The per-image input shape (C, H, W) a ``torch.export`` program was exported for, if known."""
    return model.input_shape if isinstance(model, ExportedModule) else None


# Image sides tried, after the one given, to say what a model that refuses the data expects.
PROBE_SIZES = (28, 32, 8, 16, 64, 96, 128, 224, 256)


def check_input(model: nn.Module, shape: tuple[int, int, int], name: str = "the model") -> None:
    """Run ``model`` on one tiny batch of ``shape`` (C, H, W) images before the real work.

    Raises:
        ShapeError: the model refuses such images (naming the shape it expects when a
            few common shapes find it, else torch's reason), or does not return one row
            of class scores per image.
    """
    error = _probe(model, shape)
    if error is None:
        return
    given = "x".join(map(str, shape))
    if isinstance(error, str):
        raise ShapeError(f"{name} is not a classifier of {given} images: {error}.")
    expected = _expected_shape(model, shape)
    if expected is not None:
        channels, size, _ = expected
        raise ShapeError(
            f"{name} expects {'x'.join(map(str, expected))} images; the data gives "
            f"{given}. Pass --channels {channels} --image-size {size} "
            "(data.channels, data.image_size), or a model trained on this data's shape."
        )
    raise ShapeError(
        f"{name} fails on a batch of {given} images (the data's shape): {reason(error)}. "
        "Check that it is the right model, and set --channels and --image-size "
        "(data.channels, data.image_size) to the shape it was trained on."
    )


def _probe(model: nn.Module, shape: tuple[int, int, int]) -> Exception | str | None:
    """None if ``model`` maps two ``shape`` images to two rows of scores; else what went wrong."""
    parameter = next(iter(model.parameters()), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *shape, device=device))
    except Exception as exc:
        return exc
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return f"it returns {got} for 2 images; a classifier returns (images, classes) scores"
    return None


def _expected_shape(model: nn.Module, shape: tuple[int, int, int]) -> tuple[int, int, int] | None:
    """The (C, S, S) images ``model`` takes: its .pt2 record, else the first of a few tried."""
    recorded = input_shape(getattr(model, "model", model))
    if recorded is not None and _probe(model, recorded) is None:
        return recorded
    first = next((p for p in model.parameters() if p.ndim == 4), None)  # a conv's weight
    channels = [first.shape[1]] if first is not None else list(dict.fromkeys((shape[0], 1, 3)))
    for c in channels:
        for size in dict.fromkeys((shape[1], *PROBE_SIZES)):
            if (c, size, size) != shape and _probe(model, (c, size, size)) is None:
                return (c, size, size)
    return None
