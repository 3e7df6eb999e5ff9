"""Finding, reading, overriding and validating recipes.

``load_recipe("digits-dann", ["train.steps=100"])`` looks the name up among
the built-in recipes (``counterfeit/recipes/builtin/*.yaml``) or reads a YAML path, applies
``--set`` overrides (values parsed as YAML: ``3``, ``0.1``, ``true``, ``[a, b]``),
and validates against the task's schema. Every failure is a
:class:`gan.errors.ConfigError` naming the file and the key.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from counterfeit.gan.errors import ConfigError

if TYPE_CHECKING:  # the schemas import torch; reading and listing recipes does not need it
    from pydantic import BaseModel, ValidationError

    from counterfeit.recipes.schema import RecipeBase

BUILTIN_DIR = Path(__file__).parent / "builtin"


@dataclass
class LoadedRecipe:
    recipe: RecipeBase
    source: str  # file path or "built-in NAME"
    raw: dict[str, Any]  # after overrides, before validation defaults


def builtin_recipes() -> dict[str, Path]:
    """Built-in recipe names -> their YAML files."""
    return {path.stem: path for path in sorted(BUILTIN_DIR.glob("*.yaml"))}


def describe_builtin() -> list[tuple[str, str, str]]:
    """(name, task, one-line description) of every built-in recipe."""
    rows = []
    for name, path in builtin_recipes().items():
        raw = yaml.safe_load(path.read_text()) or {}
        rows.append((name, str(raw.get("task", "?")), str(raw.get("description", "")).strip()))
    return rows


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(
            f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read recipe {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path} is not a text file, so not a recipe (a recipe is a YAML text file)."
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a recipe must be a YAML mapping (key: value), got {type(data).__name__}."
        )
    return data


def resolve_source(name_or_path: str) -> Path:
    """A built-in name or a path to a YAML file."""
    builtins = builtin_recipes()
    if name_or_path in builtins:
        return builtins[name_or_path]
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give a recipe's YAML file or a built-in name.")
    if path.suffix in (".yaml", ".yml") or "/" in name_or_path:
        raise ConfigError(f"recipe file not found: {path}")
    close = difflib.get_close_matches(name_or_path, builtins, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"unknown recipe '{name_or_path}'.{hint} Built-in recipes: {', '.join(builtins)}. "
        "Or pass a path to a YAML file (`counterfeit recipes` lists them with descriptions)."
    )


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides to a copy of ``raw``."""
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE (e.g. train.steps=200), got '{item}'.")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"--set {key}: '{part}' is a value, not a section.")
            node = child
        node[parts[-1]] = value
    return out


def validate(raw: dict[str, Any], source: str) -> RecipeBase:
    """Validate ``raw`` against its task's schema."""
    from pydantic import ValidationError

    from counterfeit.recipes.tasks import TASKS, task_class

    task = raw.get("task")
    if task is None:
        raise ConfigError(f"{source}: missing key 'task' (one of {', '.join(TASKS)}).")
    if task not in TASKS:
        raise ConfigError(f"{source}: unknown task '{task}'; known tasks: {', '.join(TASKS)}.")
    schema = task_class(task).schema
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, schema)) from None


def load_recipe(name_or_path: str, overrides: list[str] | None = None) -> LoadedRecipe:
    """Find, read, override and validate a recipe."""
    path = resolve_source(name_or_path)
    raw = apply_overrides(read_yaml(path), overrides or [])
    source = str(path)
    return LoadedRecipe(validate(raw, source), source, raw)


def format_validation_error(exc: ValidationError, source: str, schema: type[BaseModel]) -> str:
    """One line per problem, each naming the dotted key; suggest close key names."""
    known = sorted(_dotted_keys(schema))
    lines = [f"invalid recipe {source}:"]
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            lines.append(f"  - {key}: unknown key{hint}")
        elif error["type"] == "missing":
            lines.append(f"  - {key}: required key is missing")
        else:
            lines.append(f"  - {key + ': ' if key else ''}{_problem(error)}")
    return "\n".join(lines)


def _problem(error: dict[str, Any]) -> str:
    """What is wrong with one value, and the value given.

    A check over a whole block (a model validator) gets the block as its input: its
    message names the keys, and the block itself is not shown.
    """
    message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    got = error.get("input")
    if "got " in message:
        return message
    if not isinstance(got, dict):
        return f"{message} (got {got!r})"
    block_check = error["type"] in ("value_error", "assertion_error")
    return message if block_check else f"{message} (got a mapping)"


def _dotted_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    from pydantic import BaseModel

    keys: set[str] = set()
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        keys.add(dotted)
        annotation = field.annotation
        candidates = getattr(annotation, "__args__", (annotation,))
        for candidate in candidates:
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                keys |= _dotted_keys(candidate, f"{dotted}.")
    return keys
