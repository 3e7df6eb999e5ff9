"""`counterfeit sweep`: wall time with 1 and 2 workers, and members equal to runs alone.

    python benchmarks/sweep_speed.py                              # digits-dann, seeds 0-3, 600 steps
    python benchmarks/sweep_speed.py --steps 50 --seeds 0-1       # a quick check that it works
    python benchmarks/sweep_speed.py --markdown docs/results.md   # append the table

For each worker count W it times ``counterfeit sweep RECIPE --seeds S --set train.steps=N
--workers W --threads-per-worker 1``; then it runs every seed alone (``counterfeit run``, one
thread) and checks that each member's metrics equal the run alone's, bit for bit. Every run
logs to a private MLflow store in the output folder. Measure on an idle machine: the speed-up
is the point, and other processes on the cores change it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from counterfeit.recipes.sweep.plan import parse_seeds

CLI = [sys.executable, "-m", "counterfeit.recipes.cli"]


def counterfeit(args: list[str], env: dict[str, str], log: Path) -> float:
    """Run ``counterfeit ARGS`` with its output in ``log``; returns the wall time (s)."""
    started = time.perf_counter()
    with open(log, "w") as handle:
        code = subprocess.call([*CLI, *args], env=env, stdout=handle, stderr=subprocess.STDOUT)
    if code != 0:
        raise SystemExit(f"`counterfeit {' '.join(args)}` exited {code}; see {log}")
    return time.perf_counter() - started


def metrics(folder: Path) -> dict[str, float]:
    return json.loads((folder / "summary.json").read_text())["metrics"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="digits-dann")
    parser.add_argument("--seeds", default="0-3")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--workers", default="1,2", help="worker counts to time")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", help="output folder (default: a new temporary folder)")
    parser.add_argument("--markdown", help="append the report to this file")
    args = parser.parse_args()

    seeds = parse_seeds(args.seeds)
    out = Path(args.out or tempfile.mkdtemp(prefix="sweep-speed-"))
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{out.resolve() / 'mlflow.db'}"}
    settings = [f"train.steps={args.steps}", "train.progress=false", *args.overrides]
    sets = [f"--set={s}" for s in settings]

    walls: dict[int, float] = {}
    for workers in [int(w) for w in args.workers.split(",")]:
        folder = out / f"workers-{workers}"
        command = ["sweep", args.recipe, "--seeds", args.seeds, "--workers", str(workers)]
        command += ["--threads-per-worker", "1", "--out", str(folder), *sets]
        walls[workers] = counterfeit(command, env, out / f"workers-{workers}.log")
        print(f"sweep, {workers} worker(s): {walls[workers]:.1f} s", flush=True)

    alone_env = {**env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    alone_wall = 0.0
    for seed in seeds:
        folder = out / "alone" / f"seed-{seed}"
        command = ["run", args.recipe, "--seed", str(seed), "--out", str(folder), *sets]
        alone_wall += counterfeit(command, alone_env, out / f"alone-seed-{seed}.log")
    print(f"each seed alone, one after another: {alone_wall:.1f} s", flush=True)

    rows = []
    for workers, wall in walls.items():
        equal = sum(
            metrics(out / f"workers-{workers}" / f"seed-{s}")
            == metrics(out / "alone" / f"seed-{s}")
            for s in seeds
        )
        speedup = walls[min(walls)] / wall
        rows.append(
            f"| sweep, {workers} worker(s) x 1 thread | {wall:.1f} | {speedup:.2f} | "
            f"{equal}/{len(seeds)} |"
        )
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    report = "\n".join(
        [
            f"## counterfeit sweep: workers ({stamp}; {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores)",
            "",
            f"Command: `python {' '.join(sys.argv)}` ({args.recipe}, seeds {args.seeds}, "
            f"{args.steps} steps).",
            "",
            f"| run | wall s | speed-up vs {min(walls)} worker(s) | members equal to the run alone |",
            "|---|---|---|---|",
            *rows,
            f"| each seed alone (`counterfeit run`, 1 thread), one after another | "
            f"{alone_wall:.1f} | | |",
            "",
        ]
    )
    print("\n" + report)
    if args.markdown:
        with open(args.markdown, "a") as handle:
            handle.write("\n" + report)
    if any(f"{len(seeds)}/{len(seeds)} |" not in row for row in rows):
        raise SystemExit(f"a member's metrics differ from its run alone; see {out}")


if __name__ == "__main__":
    main()
