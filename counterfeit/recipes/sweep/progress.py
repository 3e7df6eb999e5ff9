"""Progress of a sweep: one line per member start and end, and a bar on a terminal.

The lines go to stdout (readable in a log file); the tqdm bar over members goes to stderr
only when stderr is a terminal.
"""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    """Prints ``[sweep] start|finished|failed|interrupted NAME ...`` lines and moves a bar.

    Args:
        total: members to run in this call.
        headline: the metric shown when a member finishes (default: its first metric).
        bar: show a tqdm bar (default: when stderr is a terminal).
    """

    def __init__(self, total: int, headline: str | None = None, bar: bool | None = None) -> None:
        self.total = total
        self.headline = headline
        self.done = 0
        self._bar = None
        if bar if bar is not None else sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="member", desc="sweep", file=sys.stderr)

    def started(self, name: str, resumed: bool = False) -> None:
        how = " (resuming from its checkpoints)" if resumed else ""
        self._print(f"[sweep] start    {name}{how}")

    def ended(self, result: Any) -> None:
        """Report a :class:`~counterfeit.recipes.sweep.member.MemberResult` that ended."""
        self.done += 1
        wall = f"{result.wall_seconds:.1f}s" if result.wall_seconds is not None else "-"
        detail = ""
        if result.status == "finished" and result.metrics:
            name = self.headline if self.headline in result.metrics else next(iter(result.metrics))
            detail = f"  {name}={result.metrics[name]:.4f}"
        elif result.error:
            last = result.error.strip().splitlines()[-1] if result.error.strip() else ""
            detail = f"  exit {result.exit_code}: {last}"
        self._print(
            f"[sweep] {result.status:<8} {result.name}  {wall}  ({self.done}/{self.total}){detail}"
        )
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def _print(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)
