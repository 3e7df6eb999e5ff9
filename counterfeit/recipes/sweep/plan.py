"""What a sweep runs: seeds, grid points and one member per (grid point, seed).

Everything here is checked before a folder or an MLflow run exists: the seed list, the grid
syntax, and every grid point's recipe (loaded with its overrides, so a misspelt key or a bad
value is a :class:`~counterfeit.gan.errors.ConfigError` naming it).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from counterfeit.gan.errors import ConfigError
from counterfeit.recipes.loader import LoadedRecipe, builtin_recipes, load_recipe

Grid = Mapping[str, Sequence[Any]] | Sequence[str] | None


@dataclass(frozen=True)
class Member:
    """One run of a sweep: a recipe at one grid point and one seed, in its own folder.

    Attributes:
        name: ``SLUG/seed-S`` (``seed-S`` without a grid), also its folder under the sweep's.
        seed: the run's seed.
        point: grid key -> value (as passed to ``--set``).
        out: the run's output folder.
        args: the ``counterfeit run`` arguments after the program (without ``--resume``).
    """

    name: str
    seed: int
    point: dict[str, str]
    out: Path
    args: tuple[str, ...]


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: the recipe, its members and where they go."""

    recipe: LoadedRecipe
    seeds: list[int]
    grid: dict[str, list[str]]
    overrides: list[str]
    out: Path
    members: list[Member]

    @property
    def points(self) -> list[dict[str, str]]:
        """The grid points in order (one empty point without a grid)."""
        return grid_points(self.grid)


def parse_seeds(spec: str | int | Sequence[int]) -> list[int]:
    """``"0-9"``, ``"0,3,7"``, ``"0-3,7"``, an int or a list of ints -> distinct seeds, in order.

    Raises:
        ConfigError: naming the part that is not a non-negative integer or an ``A-B`` range.
    """
    if isinstance(spec, int):
        items: list[int] = [spec]
    elif isinstance(spec, str):
        items = []
        for part in spec.split(","):
            match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
            if not match:
                raise ConfigError(
                    f"--seeds: '{part.strip()}' in '{spec}' is not a seed or a range; "
                    "write e.g. 0-9, 0,3,7 or 0-3,7."
                )
            low = int(match.group(1))
            high = int(match.group(2)) if match.group(2) is not None else low
            if high < low:
                raise ConfigError(f"--seeds: the range '{part.strip()}' runs backwards.")
            items.extend(range(low, high + 1))
    else:
        items = list(spec)
        for seed in items:
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise ConfigError(f"seeds: {seed!r} is not a non-negative integer.")
    if not items:
        raise ConfigError("--seeds names no seed.")
    repeated = sorted({s for s in items if items.count(s) > 1})
    if repeated:
        raise ConfigError(f"--seeds lists seed {repeated[0]} twice.")
    return items


def parse_grid(grid: Grid) -> dict[str, list[str]]:
    """``["key=v1,v2", ...]`` or ``{"key": [v1, v2]}`` -> key -> value texts for ``--set``.

    Raises:
        ConfigError: for an item without ``=`` or values, an empty value, a repeated key or
            value, or the key ``seed`` (seeds are given by ``--seeds``).
    """
    if not grid:
        return {}
    if isinstance(grid, Mapping):
        items = [(str(k), [format_value(v) for v in values]) for k, values in grid.items()]
    else:
        items = []
        for item in grid:
            key, sep, text = item.partition("=")
            if not sep or not key.strip() or not text.strip():
                raise ConfigError(
                    f"--grid expects KEY=V1,V2,... (e.g. model.lr=0.01,0.1), got '{item}'."
                )
            items.append((key.strip(), [v.strip() for v in text.split(",")]))
    parsed: dict[str, list[str]] = {}
    for key, values in items:
        if key in parsed:
            raise ConfigError(f"--grid names '{key}' twice; give its values once, comma-separated.")
        if key == "seed":
            raise ConfigError("--grid seed=...: give seeds with --seeds (e.g. --seeds 0-4).")
        if not values or any(v == "" for v in values):
            raise ConfigError(f"--grid {key}: an empty value in {values}.")
        if len(set(values)) != len(values):
            raise ConfigError(f"--grid {key}: a value is listed twice in {values}.")
        parsed[key] = values
    return parsed


def format_value(value: Any) -> str:
    """A Python value as the YAML text ``--set`` reads back to the same value."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


def grid_points(grid: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """Every combination of the grid's values, the first key varying slowest."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def slug(point: Mapping[str, str]) -> str:
    """A grid point as a folder name: ``model.lr=0.01,train.steps=5`` (unsafe characters -> -)."""
    text = ",".join(f"{k}={v}" for k, v in point.items())
    return re.sub(r"[^A-Za-z0-9._=,+-]+", "-", text)


def numeric_values(values: Sequence[str]) -> list[float] | None:
    """The values as numbers when every one reads as an int or a float, else None."""
    numbers = []
    for text in values:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        numbers.append(float(value))
    return numbers


def plan_sweep(
    recipe: str,
    seeds: str | int | Sequence[int],
    grid: Grid,
    overrides: Sequence[str],
    out: str | Path | None,
) -> SweepPlan:
    """Validate everything a user gives and name every member; creates nothing.

    Raises:
        ConfigError: bad seeds or grid syntax, an unknown recipe, or a grid point whose recipe
            does not validate (the message names the grid point and the key).
    """
    seed_list = parse_seeds(seeds)
    parsed_grid = parse_grid(grid)
    overrides = list(overrides)
    points = grid_points(parsed_grid)
    loaded = None
    for point in points:
        point_overrides = [f"{k}={v}" for k, v in point.items()]
        try:
            candidate = load_recipe(recipe, [*overrides, *point_overrides])
        except ConfigError as exc:
            where = f"grid point {slug(point)}: " if point else ""
            raise ConfigError(f"{where}{exc}") from None
        loaded = loaded or candidate
    assert loaded is not None
    out_dir = Path(out) if out else Path("runs") / f"sweep-{loaded.recipe.name}"
    run_name = loaded.recipe.tracking.run_name or loaded.recipe.name
    recipe_arg = recipe if recipe in builtin_recipes() else str(Path(loaded.source).resolve())
    members = []
    for point in points:
        for seed in seed_list:
            name = f"{slug(point)}/seed-{seed}" if point else f"seed-{seed}"
            member_out = out_dir / name
            settings = [*overrides, *(f"{k}={v}" for k, v in point.items())]
            settings.append(f"tracking.run_name={run_name} {name}")
            args = (
                recipe_arg,
                "--seed",
                str(seed),
                "--out",
                str(member_out.resolve()),
                *(f"--set={s}" for s in settings),
            )
            members.append(Member(name, seed, dict(point), member_out, args))
    return SweepPlan(loaded, seed_list, parsed_grid, overrides, out_dir, members)


def check_out_dir(plan: SweepPlan, resume: bool, state_file: str) -> None:
    """Refuse to mix a new sweep into a folder holding another one (unless resuming).

    Raises:
        ConfigError: ``OUT`` holds a sweep or member runs and ``resume`` is False.
    """
    if resume:
        return
    taken = [plan.out / state_file] + [m.out for m in plan.members]
    found = next((path for path in taken if path.exists()), None)
    if found is not None:
        raise ConfigError(
            f"{plan.out} already holds a sweep ({found} exists). Pass --resume to continue it, "
            "or --out NEW_DIR."
        )
