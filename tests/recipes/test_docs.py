"""The docs state what the code does: recipe defaults, the recipe table, documented commands.

docs/recipes.md gives each task's keys as a YAML block whose values are the defaults a
recipe gets when it leaves the key out; a key whose line ends in ``# required`` has no
default (its value is an example). These tests load each block through the public API
(``counterfeit.recipes.load_recipe``) and compare every stated default with the value
the schema fills in, so the page cannot drift from the code.
"""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from counterfeit.recipes import builtin_recipes, load_recipe

DOCS = Path(__file__).resolve().parents[2] / "docs"
ROOT = DOCS.parent
RECIPES_MD = DOCS / "recipes.md"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)

Path_ = tuple[str, ...]


def fenced_blocks(text: str, languages: set[str]) -> list[str]:
    """The bodies of the fenced code blocks whose language is in ``languages``."""
    return [body for lang, body in FENCE.findall(text) if lang in languages]


def task_blocks() -> list[str]:
    """The YAML blocks of docs/recipes.md that describe a task (they hold a ``task`` key)."""
    blocks = []
    for body in fenced_blocks(RECIPES_MD.read_text(), {"yaml"}):
        data = yaml.safe_load(body)
        if isinstance(data, dict) and "task" in data:
            blocks.append(body)
    return blocks


def key_lines(node: yaml.Node, prefix: Path_ = ()) -> dict[Path_, int]:
    """Each mapping key's dotted path -> the 0-based line it is written on."""
    lines: dict[Path_, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, key.value)
            lines[path] = key.start_mark.line
            lines.update(key_lines(value, path))
    return lines


def required_paths(body: str) -> set[Path_]:
    """The outermost keys on the lines whose comment starts with ``required``."""
    text_lines = body.splitlines()
    marked = set()
    for path, line in key_lines(yaml.compose(body)).items():
        _, hash_, comment = text_lines[line].partition(" #")
        if hash_ and comment.strip().startswith("required"):
            marked.add(path)
    return {path for path in marked if not any(path[:i] in marked for i in range(1, len(path)))}


def leaves(data: Any, prefix: Path_ = ()) -> dict[Path_, Any]:
    """Dotted path -> value, descending into non-empty mappings only."""
    if isinstance(data, dict) and data:
        out: dict[Path_, Any] = {}
        for key, value in data.items():
            out.update(leaves(value, (*prefix, key)))
        return out
    return {prefix: data}


def lookup(data: Any, path: Path_) -> Any:
    for key in path:
        data = data[key]
    return data


def subset(data: dict[str, Any], paths: set[Path_]) -> dict[str, Any]:
    """Only the keys on ``paths`` (with everything below them) of ``data``."""
    out: dict[str, Any] = {}
    for path in paths:
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = copy.deepcopy(lookup(data, path))
    return out


def without(data: dict[str, Any], path: Path_) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


def resolve(data: dict[str, Any], tmp_path: Path, stem: str) -> dict[str, Any]:
    """``data`` written as a recipe file, loaded and validated, dumped with every default."""
    path = tmp_path / f"{stem}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_recipe(str(path)).recipe.model_dump(mode="json")


def block_id(body: str) -> str:
    return str(yaml.safe_load(body)["task"])


@pytest.mark.parametrize("body", task_blocks(), ids=block_id)
def test_the_defaults_docs_recipes_md_states_are_the_schemas(body, tmp_path):
    doc = yaml.safe_load(body)
    task = doc["task"]
    required = required_paths(body) | {("task",)}
    shown = {
        path: value
        for path, value in leaves(doc).items()
        if not any(path[: len(marked)] == marked for marked in required)
    }
    try:
        defaults = resolve(subset(doc, required), tmp_path, "required-only")
    except Exception as exc:
        pytest.fail(
            f"docs/recipes.md, task {task}: the keys marked '# required' are not a valid "
            f"recipe on their own (mark every key without a default):\n{exc}"
        )
    try:
        documented = resolve(doc, tmp_path, "as-documented")
    except Exception as exc:
        pytest.fail(f"docs/recipes.md, task {task}: the block is not a valid recipe:\n{exc}")
    drift = [
        f"  {'.'.join(path)}: docs/recipes.md says {value!r}, the code's default is "
        f"{lookup(defaults, path)!r}"
        for path, value in shown.items()
        if lookup(documented, path) != lookup(defaults, path)
    ]
    assert not drift, f"docs/recipes.md, task {task}, defaults that differ:\n" + "\n".join(drift)
    assert len(shown) >= 5, f"task {task}: too few documented defaults to be a reference"


@pytest.mark.parametrize("body", task_blocks(), ids=block_id)
def test_the_keys_docs_recipes_md_marks_required_have_no_default(body, tmp_path):
    doc = yaml.safe_load(body)
    required = required_paths(body)
    minimal = subset(doc, required | {("task",)})
    for path in sorted(required):
        key = ".".join(path)
        try:
            resolve(without(minimal, path), tmp_path, "one-left-out")
        except Exception as exc:
            assert key in str(exc), f"leaving out {key} fails for another reason: {exc}"
        else:
            pytest.fail(
                f"docs/recipes.md, task {doc['task']}: {key} is marked required, "
                "but a recipe without it loads (it has a default)"
            )


def test_every_task_of_a_builtin_recipe_has_its_defaults_in_docs_recipes_md():
    used = {load_recipe(name).recipe.task for name in builtin_recipes()}
    documented = {yaml.safe_load(body)["task"] for body in task_blocks()}
    assert used <= documented, f"tasks without a defaults block: {sorted(used - documented)}"


def test_the_builtin_recipe_table_lists_exactly_the_builtin_recipes():
    text = RECIPES_MD.read_text().split("## Built-in recipes", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([\w-]+)` \|", text, re.MULTILINE)
    assert sorted(listed) == sorted(builtin_recipes())


def run_commands() -> list:
    """(file, argv after ``run``) of every ``counterfeit run`` line in the user docs' code."""
    commands = []
    for path in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for body in fenced_blocks(path.read_text(), {"bash", "", "sh"}):
            for line in body.replace("\\\n", " ").splitlines():
                for code in re.split(r";|&&", line.split(" #", 1)[0]):
                    if "counterfeit run " in code:
                        argv = shlex.split(code[code.index("counterfeit run ") :])
                        commands.append(pytest.param(path.name, argv[2:], id=" ".join(argv[2:])))
    return commands


@pytest.mark.parametrize("source,argv", run_commands())
def test_documented_run_commands_name_a_recipe_and_valid_keys(source, argv):
    name = argv[0]
    overrides = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--set"]
    if name in builtin_recipes():
        try:
            load_recipe(name, overrides)
        except Exception as exc:
            pytest.fail(f"{source}: `counterfeit run {' '.join(argv)}` does not load:\n{exc}")
    else:
        assert name.isupper() or name.endswith((".yaml", ".yml")), (
            f"{source}: `counterfeit run {name}` names no built-in recipe"
        )
