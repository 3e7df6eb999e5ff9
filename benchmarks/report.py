"""What the benchmark scripts share: the machine line and the Markdown report.

Each script is a set of named parts (functions of the parsed arguments that
return Markdown); :func:`run_parts` runs the chosen ones, times them, prints
the report as it grows, keeps it in ``OUT/last-PARTS.md`` and, with
``--markdown FILE``, appends it to that file (e.g. ``docs/benchmarks.md``).
"""

from __future__ import annotations

import argparse
import datetime
import platform
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
