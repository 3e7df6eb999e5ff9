"""The recipes that ``counterfeit robustness`` and ``counterfeit patch`` build from
their arguments (raw YAML data, validated and run like any recipe).

The text arguments are parsed first and the data last: a typo in ``--eps`` is reported
before the dataset registry (and torch) is imported.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path
from typing import Any

from counterfeit.gan.errors import ConfigError


def dataset_from_arg(data: str) -> dict[str, Any]:
    """The recipe's dataset entry for a command's ``--data``: a domain name or a folder."""
    from counterfeit.gan.data.domains import domain_names

    if data in domain_names():
        return {"name": data}
    folder = Path(data).expanduser()
    if folder.is_dir():
        return {"name": "image-folder", "path": str(folder)}
    raise ConfigError(
        f"--data '{data}' is neither a domain ({', '.join(domain_names())}) nor a folder "
        "of images (CLASS/*.png)."
    )


MINIMUM_NORM = ("deepfool", "cw")  # given with --attacks, run without a budget


def robustness_recipe(args: argparse.Namespace) -> dict[str, Any]:
    """The ``robustness`` recipe (as raw YAML data) that ``counterfeit robustness`` runs."""
    model = Path(args.model)
    evaluation: dict[str, Any] = {"n": args.n, "batch_size": args.batch_size}
    if args.eps is not None:
        evaluation["eps"] = [_number(e) for e in args.eps.split(",") if e.strip()]
    if args.norm is not None:
        evaluation["norm"] = args.norm
    if args.attacks is not None:
        names = [a.strip() for a in args.attacks.split(",") if a.strip()]
        evaluation["minimum_norm"] = [a for a in names if a in MINIMUM_NORM]
        budget_attacks = [a for a in names if a not in MINIMUM_NORM]
        if budget_attacks:  # none given: the default ones run beside the minimum-norm ones
            evaluation["attacks"] = budget_attacks
    if args.corruptions is not None:
        text = args.corruptions.strip()
        evaluation["corruptions"] = (
            text if text in ("all", "none") else [c.strip() for c in text.split(",") if c.strip()]
        )
    normalize = _normalize(args.normalize)
    dataset = dataset_from_arg(args.data)
    raw: dict[str, Any] = {
        "name": f"robustness-{model.stem}",
        "task": "robustness",
        "model": str(model),
        "arch": args.arch,
        "trust_pickle": args.trust_pickle,
        "data": {
            "dataset": dataset,
            "root": args.data_root,
            "split": args.split,
            "image_size": args.image_size,
            "channels": args.channels,
        },
        "evaluation": evaluation,
        "tracking": {"enabled": not args.no_mlflow},
    }
    if normalize is not None:
        raw["normalize"] = normalize
    if args.device is not None:
        raw["device"] = args.device
    if args.seed is not None:
        raw["seed"] = args.seed
    return raw


def patch_recipe(args: argparse.Namespace) -> dict[str, Any]:
    """The ``patch`` recipe (as raw YAML data) that ``counterfeit patch`` runs."""
    model = Path(args.model)
    classifier: dict[str, Any] = {
        "path": str(model),
        "arch": args.arch,
        "trust_pickle": args.trust_pickle,
    }
    normalize = _normalize(args.normalize)
    if normalize is not None:
        classifier["normalize"] = normalize
    patch: dict[str, Any] = {
        "target": args.target,
        "shape": args.shape,
        "area": args.area,
        "steps": args.steps,
        "batch_size": args.batch_size,
    }
    if args.lr is not None:
        patch["lr"] = args.lr
    if args.loss is not None:
        patch["loss"] = args.loss
    if args.rotation is not None:
        patch["rotation"] = args.rotation
    if args.scale is not None:
        try:
            low, high = (float(v) for v in args.scale.split(","))
        except ValueError:
            raise ConfigError(
                f"--scale expects MIN,MAX such as 0.8,1.2, got '{args.scale}'."
            ) from None
        patch["scale"] = [low, high]
    evaluation: dict[str, Any] = {"n": args.n}
    if args.areas is not None:
        try:
            evaluation["areas"] = [float(v) for v in args.areas.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(
                f"--areas expects comma-separated fractions such as 0.05,0.1,0.2, got "
                f"'{args.areas}'."
            ) from None
    dataset = dataset_from_arg(args.data)
    raw: dict[str, Any] = {
        "name": f"patch-{model.stem}-target{args.target}",
        "task": "patch",
        "data": {
            "dataset": dataset,
            "root": args.data_root,
            "image_size": args.image_size,
            "channels": args.channels,
        },
        "classifier": classifier,
        "patch": patch,
        "evaluation": evaluation,
        "tracking": {"enabled": not args.no_mlflow},
    }
    if args.device is not None:
        raw["device"] = args.device
    if args.seed is not None:
        raw["seed"] = args.seed
    return raw


def _normalize(text: str | None) -> dict[str, list[float]] | None:
    """``--normalize MEAN,STD`` as the recipe's ``normalize`` block (None when not given)."""
    if text is None:
        return None
    from counterfeit.robust.normalize import parse_normalize

    mean, std = parse_normalize(text)
    return {"mean": mean, "std": std}


def _number(text: str) -> float:
    """``0.1`` or a fraction such as ``8/255``."""
    try:
        return float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"--eps expects numbers such as 0.1 or 8/255, got '{text}'.") from None
