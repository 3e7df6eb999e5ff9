"""The ``counterfeit`` command line.

    counterfeit run NAME_OR_PATH [--set key=value ...] [--out DIR] [--device auto|cpu|cuda]
                    [--seed N] [--resume] [--overwrite]
    counterfeit recipes

Errors a user can cause are printed as one clear message (exit status 2);
Ctrl-C during training writes a checkpoint and exits with status 130.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gan.errors import CounterfeitError, TrainingInterrupted
from gan.runtime import DEVICE_CHOICES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="counterfeit",
        description="Synthetic-to-real adaptation, robustness and GANs for PyTorch.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a recipe end to end")
    run.add_argument(
        "recipe", help="a built-in recipe name (see `counterfeit recipes`) or a YAML path"
    )
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set train.steps=200 (repeatable)",
    )
    run.add_argument("--out", help="output folder (default: runs/RECIPE_NAME)")
    run.add_argument("--device", help="auto, cpu, cuda or cuda:N (overrides the recipe)")
    run.add_argument("--seed", type=int, help="random seed (overrides the recipe)")
    run.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its checkpoints"
    )
    run.add_argument("--overwrite", action="store_true", help="replace a previous run in --out")
    run.set_defaults(handler=_run)

    recipes = commands.add_parser("recipes", help="list the built-in recipes")
    recipes.set_defaults(handler=_recipes)
    return parser


def _run(args: argparse.Namespace) -> int:
    from recipes.loader import load_recipe
    from recipes.run import run_recipe

    overrides = list(args.overrides)
    if args.device is not None:
        if args.device not in DEVICE_CHOICES and not args.device.startswith("cuda:"):
            raise CounterfeitError(
                f"--device must be one of {', '.join(DEVICE_CHOICES)} or cuda:N."
            )
        overrides.append(f"device={args.device}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    loaded = load_recipe(args.recipe, overrides)
    run_recipe(loaded, out=args.out, resume=args.resume, overwrite=args.overwrite)
    return 0


def _recipes(args: argparse.Namespace) -> int:
    from recipes.loader import describe_builtin

    rows = describe_builtin()
    width = max(len(name) for name, _, _ in rows)
    for name, task, description in rows:
        print(f"{name.ljust(width)}  [{task}]  {description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``counterfeit`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except TrainingInterrupted as exc:
        print(f"counterfeit: {exc}", file=sys.stderr)
        return 130
    except CounterfeitError as exc:
        print(f"counterfeit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("counterfeit: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
