"""What a recipe reads is there: checked before a run folder or an MLflow run exists.

:func:`check_inputs` walks a validated recipe and checks, at the cost of a ``stat`` or a
zip directory each, every file and folder it names: each domain's data root or image
folder, every other path setting (weights, data folders), and the saved models a task
loads (their format read from the file's header). A missing ``data.root`` is reported
before anything is written, not after an MLflow run was started.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from counterfeit.gan.data.domains import DOMAINS, DomainSpec, domain_names
from counterfeit.gan.errors import CheckpointError, ConfigError, DataError
from counterfeit.gan.tracking import is_mlflow_uri
from counterfeit.recipes import preflight


def check_inputs(recipe: BaseModel, model_keys: Iterable[str] = ()) -> None:
    """Check every input ``recipe`` names exists; ``model_keys`` name saved models.

    Args:
        recipe: a validated recipe.
        model_keys: dotted keys of the saved models the task loads (e.g. ``classifier.path``):
            each must be a file in a format counterfeit reads. A missing one names the
            recipe that writes it when the recipe says (``produced_by``).

    Raises:
        DataError: a data root, image folder or other path setting does not exist.
        CheckpointError: a model file is missing, empty, truncated or of an unknown format.
        ConfigError: an unknown domain name.
    """
    models = set(model_keys)
    produced_by = getattr(recipe, "produced_by", None)
    for key, value, parent in _settings(recipe):
        if isinstance(value, DomainSpec):
            check_domain(value, key, parent_has_root=hasattr(parent, "root"))
        elif key in models and value is not None:
            check_model_file(Path(value), key, produced_by)
        elif _is_missing_path(value) and key.rsplit(".", 1)[-1] != "root":
            raise DataError(f"{key}: {value} does not exist (set {key} to an existing path).")


def check_domain(spec: DomainSpec, key: str, parent_has_root: bool = True) -> None:
    """A domain's files are where it reads them: its ``root`` (or ``path``) is a folder.

    Embedded domains need nothing. ``key`` is the recipe key of ``spec`` (``data.source``);
    the data root is set in the block above it (``data.root``) when ``parent_has_root``.
    """
    info = DOMAINS.get(spec.name)
    if info is None:
        raise ConfigError(
            f"{key}: unknown domain '{spec.name}'; known domains: {', '.join(domain_names())}."
        )
    if info.embedded:
        return
    if spec.name == "image-folder":
        if spec.path is None:
            raise ConfigError(f"{key}: domain 'image-folder' needs {key}.path, the image folder.")
        preflight.existing_folder(spec.path, f"{key}.path (the image folder)")
        return
    setting = f"{key.rsplit('.', 1)[0]}.root" if parent_has_root and "." in key else f"{key}.root"
    if spec.root is None:
        raise DataError(
            f"{key} ({spec.name}) reads its files from a data root, and none is set: pass "
            f"--set {setting}=DIR (docs/data.md lists the files it expects)."
        )
    preflight.existing_folder(spec.root, f"{setting} for {key} ({spec.name}):")


def check_model_file(path: Path, key: str, produced_by: str | None = None) -> None:
    """``path`` is a saved model counterfeit reads (``.pt2``, TorchScript, ``torch.save``)."""
    if is_mlflow_uri(path):
        return  # fetched and checked when the model loads
    from counterfeit.robust.loading import detect_format

    path = path.expanduser()
    if not path.exists():
        hint = (
            f" It is written by the '{produced_by}' recipe: run `counterfeit run {produced_by}` "
            f"first, or point to another model with --set {key}=PATH."
            if produced_by
            else f" Set {key} to an existing model file."
        )
        raise CheckpointError(f"model file not found: {path}.{hint}")
    detect_format(path)


def _is_missing_path(value: object) -> bool:
    return isinstance(value, Path) and not value.expanduser().exists()


def _settings(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, Any, BaseModel]]:
    """(dotted key, value, the model holding it) of every setting; domains are not entered."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}{name}"
        yield key, value, model
        if isinstance(value, BaseModel) and not isinstance(value, DomainSpec):
            yield from _settings(value, f"{key}.")
