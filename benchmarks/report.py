"""What the benchmark scripts share: the machine line and the Markdown report.

Each script is a set of named parts (functions of the parsed arguments that
return Markdown); :func:`run_parts` runs the chosen ones, times them, prints
the report as it grows, keeps it in ``OUT/last-PARTS.md`` and, with
``--markdown FILE``, appends it to that file (e.g. ``docs/results.md``).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch


def machine() -> str:
    """The processor, torch's thread count and torch's version, for the report header."""
    return (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
        f"thread(s), torch {torch.__version__}"
    )


def run_parts(
    title: str,
    parts: list[str],
    functions: dict[str, Callable[[argparse.Namespace], str]],
    args: argparse.Namespace,
) -> str:
    """Run ``parts`` in order and write their report (see the module docstring)."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = f"## {title} ({stamp}; {machine()})\n\nCommand: `python {' '.join(sys.argv)}`\n\n"
    for part in parts:
        started = time.perf_counter()
        text += functions[part](args)
        text += f"\n_{part}: {time.perf_counter() - started:.0f} s_\n\n"
        print(text, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"last-{'-'.join(parts)}.md").write_text(text)
    if args.markdown:
        with open(args.markdown, "a") as handle:
            handle.write(text)
    return text


def trainer_seconds(method, data, steps: int) -> float:
    """Seconds ``steps`` steps of ``method`` take through :class:`gan.Trainer` on CPU, with
    what a user gets by default (progress bar, logging every 10 steps, NaN guard) and no
    checkpoints: the Trainer side of :func:`trainer_overhead`."""
    from counterfeit.gan import Trainer, TrainerConfig

    config = TrainerConfig(max_steps=steps, log_every=10, checkpoint_every=None, device="cpu")
    return Trainer(method, data, config, description="trainer").fit().wall_time


def trainer_overhead(
    title: str,
    rounds: int,
    images_per_round: int,
    time_round: Callable[[int], tuple[float, float]],
) -> str:
    """Compare a hand-written loop with :class:`gan.Trainer` on the same nets and batches.

    ``time_round(i)`` runs round ``i`` of both loops in this process (interleaved, so that
    the machine's load hits both alike) and returns their seconds (plain, trainer). The
    Markdown gives median images/s and the median ratio trainer / plain (target >= 0.95).
    """
    plain_ips, trainer_ips, ratios = [], [], []
    for round_ in range(rounds):
        t_plain, t_trainer = time_round(round_)
        plain_ips.append(images_per_round / t_plain)
        trainer_ips.append(images_per_round / t_trainer)
        ratios.append(t_plain / t_trainer)
        print(
            f"round {round_}: plain {plain_ips[-1]:.1f} img/s, trainer {trainer_ips[-1]:.1f} img/s",
            flush=True,
        )
    return (
        f"### Trainer overhead: {title}, {rounds} interleaved rounds\n\n"
        "| loop | images/s (median) |\n| --- | --- |\n"
        f"| hand-written PyTorch | {statistics.median(plain_ips):.1f} |\n"
        f"| gan.Trainer (progress bar, logging, NaN guard) | {statistics.median(trainer_ips):.1f} |\n"
        f"\nratio trainer / plain: **{statistics.median(ratios):.3f}** (rounds: "
        f"{', '.join(f'{r:.3f}' for r in ratios)}; target >= 0.95)\n"
    )
