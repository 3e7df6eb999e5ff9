"""Re-judge finished synth2real-cyclegan runs with judges trained differently.

    python benchmarks/i2i_rejudge.py benchmarks/out/i2i-2000/cyclegan-plain \
        benchmarks/out/i2i-2000/cyclegan-semantic --augment none --augment strong

Loads each run's checkpoint (``recipes.translate.load_translator``), translates the
recipe's synthetic test digits once, then trains the recipe's real-domain judge
(``recipes.tasks.cyclegan.train_classifier``, same seed and steps) once per
``--augment`` (``none`` or a ``gan.data.Augment`` preset) and prints one JSON row
each: the judge on real test digits, on untranslated synthetic digits and on every
run's translations. With ``none`` it reproduces the recipe's own numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from adapt.evaluate import accuracy, predict
from gan.data.augment import Augment
from recipes import load_recipe
from recipes.tasks import dann
from recipes.tasks.cyclegan import train_classifier
from recipes.translate import load_translator, translate_dataset


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of synth2real-cyclegan")
    parser.add_argument("--augment", action="append", help="none or an Augment preset")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = load_recipe(str(args.runs[0] / "recipe.yaml")).recipe
    domains = dann.load_domains(recipe.data, need_target_labels=True)
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
    for augment in args.augment or ["none"]:
        started = time.perf_counter()
        judge = train_classifier(
            domains["target_train"],
            dann.num_classes_of(domains),
            recipe.evaluation.classifier,
            recipe.seed + 1,
            transform=None if augment == "none" else Augment(augment),
        )
        row = {
            "augment": augment,
            "real": accuracy(predict(judge, domains["target_test"], bs)),
            "untranslated": accuracy(predict(judge, domains["source_test"], bs)),
            **{name: accuracy(predict(judge, d, bs)) for name, d in translated.items()},
            "seconds": round(time.perf_counter() - started),
        }
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
