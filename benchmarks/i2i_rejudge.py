"""Re-judge finished synth2real-cyclegan runs with judges trained differently.

    python benchmarks/i2i_rejudge.py benchmarks/out/i2i-2000/cyclegan-plain \
        benchmarks/out/i2i-2000/cyclegan-semantic --augment none --augment strong --steps 3000

Loads each run's checkpoint (``recipes.translate.load_translator``), translates the
recipe's synthetic test digits once, then trains the recipe's real-domain judge
(``recipes.tasks.cyclegan.train_classifier``, the run's seed and classifier settings)
once per ``--augment`` (``none`` or a ``gan.data.Augment`` preset) and ``--steps``, and
prints one JSON row each: the judge on real test digits, on untranslated synthetic
digits and on every run's translations. Without either flag it reproduces the run's own
numbers (with the same thread count).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from counterfeit.adapt.evaluate import accuracy, predict
from counterfeit.recipes import load_recipe
from counterfeit.recipes.tasks.common.adaptation import (
    load_domains,
    num_classes_of,
    translate_dataset,
)
from counterfeit.recipes.tasks.cyclegan import train_classifier
from counterfeit.recipes.translate import load_translator


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of synth2real-cyclegan")
    parser.add_argument(
        "--augment",
        action="append",
        choices=["none", "light", "strong"],
        help="default: the recipe's",
    )
    parser.add_argument(
        "--steps", type=int, action="append", help="judge steps (default: the recipe's)"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = load_recipe(str(args.runs[0] / "recipe.yaml")).recipe
    domains = load_domains(recipe.data, need_target_labels=True)
    bs = recipe.evaluation.batch_size
    translated = {
        run.name: translate_dataset(
            load_translator(run / "checkpoints" / "cyclegan.ckpt"),
            domains["source_test"],
            bs,
            recipe.seed,
        )
        for run in args.runs
    }
    run_config = recipe.evaluation.classifier
    configs = [
        run_config.model_copy(update={"augment": augment, "steps": steps})
        for augment in args.augment or [run_config.augment]
        for steps in args.steps or [run_config.steps]
    ]
    for config in configs:
        started = time.perf_counter()
        judge = train_classifier(
            domains["target_train"],
            num_classes_of(domains),
            config,
            recipe.seed + 1,
        )
        row = {
            "augment": config.augment,
            "steps": config.steps,
            "real": accuracy(predict(judge, domains["target_test"], bs)),
            "untranslated": accuracy(predict(judge, domains["source_test"], bs)),
            **{name: accuracy(predict(judge, d, bs)) for name, d in translated.items()},
            "seconds": round(time.perf_counter() - started),
        }
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
