"""The selection report of a sweep folder (finished members only), e.g. of a sweep still
running or one made before ``counterfeit sweep`` wrote it: how well each label-free
validator chooses (see :mod:`counterfeit.adapt.selection_report`).

Usage: ``python benchmarks/selection.py SWEEP_DIR [--markdown docs/results.md]``
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from counterfeit.adapt.selection_report import (
    runs_from_summaries,
    selection_figure,
    selection_markdown,
    selection_report,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="a sweep's output folder")
    parser.add_argument("--markdown", help="append the report to this file")
    args = parser.parse_args()
    pairs = []
    for path in sorted(args.sweep.glob("**/summary.json")):
        point = path.parent.parent.relative_to(args.sweep).as_posix()
        pairs.append(("" if point == "." else point, json.loads(path.read_text())))
    runs = runs_from_summaries(pairs)
    if not runs:
        raise SystemExit(f"no finished member with a selection summary under {args.sweep}")
    plot = args.sweep / "plots" / "selection.png"
    plot.parent.mkdir(parents=True, exist_ok=True)
    selection_figure(runs).savefig(plot, dpi=110)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = (
        f"## Label-free selection on {args.sweep.name} ({stamp})\n\n"
        f"Command: `python {' '.join(sys.argv)}`\n\n"
        f"{selection_markdown(selection_report(runs))}\nFigure: `{plot}`\n"
    )
    (args.sweep / "selection.md").write_text(text)
    print(text)
    if args.markdown:
        with open(args.markdown, "a") as handle:
            handle.write("\n" + text)


if __name__ == "__main__":
    main()
