"""``counterfeit tracking``: MLflow tracking of a run folder after the run.

    counterfeit tracking replay RUN_DIR [--uri URI]

sends the tracking calls a run kept in ``RUN_DIR/tracking-buffer`` while its MLflow store
did not answer (:func:`~counterfeit.gan.tracking_buffer.replay_buffer`).
"""

from __future__ import annotations

import argparse

from counterfeit.recipes import preflight


def add_tracking_command(commands) -> None:
    """Add ``tracking`` and its actions to the CLI's sub-commands."""
    tracking = commands.add_parser("tracking", help="MLflow tracking of a run folder")
    actions = tracking.add_subparsers(dest="action", required=True, metavar="ACTION")
    replay = actions.add_parser(
        "replay",
        help="send the tracking calls a run kept while MLflow was unreachable",
        description="Send the tracking calls kept in RUN_DIR/tracking-buffer (written while "
        "the MLflow store did not answer) to the run's MLflow run, in order, with their steps "
        "and times. A replay that stops half-way continues where it stopped.",
    )
    replay.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (--out of the run)")
    replay.add_argument("--uri", help="the tracking store (default: the one the run used)")
    replay.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    preflight.existing_folder(args.run_dir, "RUN_DIR")
    from counterfeit.gan.tracking_buffer import replay_buffer

    counts = replay_buffer(args.run_dir, uri=args.uri)
    kinds = ", ".join(f"{n} {op}" for op, n in sorted(counts.items()))
    print(f"replayed {sum(counts.values())} tracking calls from {args.run_dir} ({kinds})")
    return 0
