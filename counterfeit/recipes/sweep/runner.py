"""``sweep()``: run a recipe over seeds and a grid, each member its own process; aggregate,
report and log to MLflow."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from counterfeit.gan.errors import ConfigError
from counterfeit.gan.tracking import PARENT_RUN_ENV, Tracker
from counterfeit.recipes.boundary import sigterm_stops_like_ctrl_c
from counterfeit.recipes.sweep.local import run_local
from counterfeit.recipes.sweep.member import MemberResult, read_member
from counterfeit.recipes.sweep.plan import Grid, Member, SweepPlan, check_out_dir, plan_sweep, slug
from counterfeit.recipes.sweep.progress import Progress
from counterfeit.recipes.sweep.report import (
    STATE_FILE,
    read_state,
    write_markdown,
    write_plots,
    write_selection_plot,
    write_state,
)
from counterfeit.recipes.sweep.stats import INTERVAL, aggregate, paired

BACKENDS = ("local", "ray")
STATS_LOGGED = ("n", "mean", "sd", "median", "min", "max")


@dataclass
class SweepResult:
    """What a sweep did.

    Attributes:
        recipe: the recipe's name.
        out: the sweep's folder.
        status: ``finished`` or ``interrupted``.
        members: every member's :class:`~counterfeit.recipes.sweep.member.MemberResult`.
        aggregate: per grid point: ``point``, ``slug``, member counts, ``metrics`` (metric ->
            n, mean, sd, median, min, max, ci95) and ``paired`` (per-seed method differences).
        parent_run_id: the sweep's MLflow run (None without tracking).
        paths: ``sweep.json``, ``sweep.md`` and the plots written.
    """

    recipe: str
    out: Path
    status: str
    members: list[MemberResult]
    aggregate: list[dict[str, Any]]
    parent_run_id: str | None
    paths: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[MemberResult]:
        return [m for m in self.members if m.status == "failed"]


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a sweep; ``result`` holds what was done (also in ``OUT/sweep.json``)."""

    def __init__(self, result: SweepResult) -> None:
        self.result = result
        stopped = sum(m.status == "interrupted" for m in result.members)
        super().__init__(
            f"sweep interrupted: {stopped} running member(s) stopped after writing a checkpoint; "
            f"partial results in {result.out / STATE_FILE}. Run the same command with --resume "
            "to finish it."
        )


def sweep(
    recipe: str,
    seeds: str | int | Sequence[int] = "0-4",
    grid: Grid = None,
    overrides: Sequence[str] = (),
    workers: int | None = None,
    threads_per_worker: int = 1,
    out: str | Path | None = None,
    resume: bool = False,
    backend: str = "local",
    address: str | None = None,
    headline: str | None = None,
    progress_bar: bool | None = None,
) -> SweepResult:
    """Run ``recipe`` for every seed and grid point, each as its own ``counterfeit run``.

    Args:
        recipe: a built-in recipe name or a YAML path.
        seeds: ``"0-9"``, ``"0,3,7"``, an int or a list of ints.
        grid: ``{"model.lr": [0.01, 0.1]}`` or ``["model.lr=0.01,0.1"]``: every combination
            of the values is a grid point.
        overrides: ``KEY=VALUE`` settings applied to every member (as ``--set``).
        workers: members at once (default: the usable cores // ``threads_per_worker``; with
            Ray: every member, Ray queues them).
        threads_per_worker: each member's OMP/MKL (and so torch) threads.
        out: the sweep's folder (default ``runs/sweep-RECIPE``); members go to
            ``OUT/SLUG/seed-S`` (``OUT/seed-S`` without a grid).
        resume: run only the members without a summary, continuing each from its
            checkpoints; reuse the finished ones and the sweep's MLflow run.
        backend: ``local`` (subprocesses here) or ``ray`` (Ray tasks).
        address: the Ray cluster (see :func:`~counterfeit.recipes.sweep.ray_backend.connect_ray`).
        headline: the metric shown per member (default: each summary's first metric).
        progress_bar: show a tqdm bar (default: when stderr is a terminal).

    Returns:
        A :class:`SweepResult`; ``OUT/sweep.json``, ``OUT/sweep.md`` and ``OUT/plots/`` are
        written, and one MLflow run holds the aggregate with one nested run per member.

    Raises:
        ConfigError: bad seeds, grid, recipe, worker counts or backend, or an ``out`` that
            holds another sweep, before any folder or MLflow run is created.
        SweepInterrupted: Ctrl-C or SIGTERM; the running members were stopped and recorded.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{backend}'; choose one of {', '.join(BACKENDS)}.")
    if threads_per_worker < 1 or (workers is not None and workers < 1):
        raise ConfigError("--workers and --threads-per-worker must be at least 1.")
    plan = plan_sweep(recipe, seeds, grid, overrides, out)
    check_out_dir(plan, resume, STATE_FILE)
    ray, started_ray = None, False
    if backend == "ray":
        from counterfeit.recipes.sweep.ray_backend import connect_ray

        ray, started_ray = connect_ray(address)
    elif workers is None:
        workers = max(1, _usable_cores() // threads_per_worker)
    try:
        with sigterm_stops_like_ctrl_c():
            return _Sweep(plan, workers, threads_per_worker, resume, backend, headline).run(
                ray, progress_bar
            )
    finally:
        if started_ray:
            ray.shutdown()


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _Sweep:
    """One call of :func:`sweep`: the members' records, the parent run, the report."""

    def __init__(
        self,
        plan: SweepPlan,
        workers: int | None,
        threads: int,
        resume: bool,
        backend: str,
        headline: str | None,
    ) -> None:
        self.plan = plan
        self.workers = workers
        self.threads = threads
        self.backend = backend
        self.headline = headline
        self.parent: Tracker | None = None
        previous = read_state(plan.out) if resume else {}
        self.parent_id = previous.get("mlflow", {}).get("parent_run_id")
        old = {m["name"]: m for m in previous.get("members", [])}
        self.results = {m.name: self._initial(m, old.get(m.name), resume) for m in plan.members}

    @staticmethod
    def _initial(member: Member, old: dict | None, resume: bool) -> MemberResult:
        result = MemberResult(member.name, member.seed, member.point, str(member.out))
        state = read_member(member.out) if resume else {}
        if state.get("status") == "finished":
            result.status, result.metrics = "finished", state["metrics"]
            result.mlflow_run_id = state["mlflow_run_id"]
            if old:
                result.exit_code, result.wall_seconds = old["exit_code"], old["wall_seconds"]
        return result

    def run(self, ray: Any, progress_bar: bool | None) -> SweepResult:
        recipe = self.plan.recipe.recipe
        todo = [m for m in self.plan.members if self.results[m.name].status != "finished"]
        self.parent = parent = Tracker(
            experiment=recipe.tracking.experiment,
            run_name=f"sweep {recipe.name}",
            uri=recipe.tracking.uri,
            tags={"recipe": recipe.name, "task": recipe.task, "sweep": "parent"},
            enabled=recipe.tracking.enabled,
            run_id=self.parent_id,
            buffer_dir=self.plan.out,
        )
        self.plan.out.mkdir(parents=True, exist_ok=True)
        progress = Progress(len(todo), self.headline, progress_bar)
        try:
            with parent:
                if self.parent_id is None:
                    parent.log_params(self._settings())
                write_state(self.plan.out, self._record("running"))
                env = self._member_env(parent)

                def on_start(member: Member, resumed: bool) -> None:
                    self.results[member.name].status = "running"
                    progress.started(member.name, resumed)

                def on_end(member: Member, outcome: dict[str, Any]) -> None:
                    result = self.results[member.name]
                    for key, value in outcome.items():
                        setattr(result, key, value)
                    progress.ended(result)
                    write_state(self.plan.out, self._record("running"))

                try:
                    if self.backend == "ray":
                        from counterfeit.recipes.sweep.ray_backend import run_ray

                        run_ray(ray, todo, self.workers, self.threads, env, on_start, on_end)
                    else:
                        run_local(todo, self.workers, env, on_start, on_end)
                except KeyboardInterrupt:
                    raise SweepInterrupted(self._finish("interrupted", plots=False)) from None
                return self._finish("finished", plots=True)
        finally:
            progress.close()

    def _member_env(self, parent: Tracker) -> dict[str, str]:
        env = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)}
        if parent.active:
            env[PARENT_RUN_ENV] = parent.run_id
        if os.environ.get("MLFLOW_TRACKING_URI"):
            env["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_TRACKING_URI"]
        return env

    def _settings(self) -> dict[str, Any]:
        return {
            "recipe": self.plan.recipe.recipe.name,
            "seeds": self.plan.seeds,
            "grid": self.plan.grid,
            "overrides": self.plan.overrides,
            "workers": self.workers or "all",
            "threads_per_worker": self.threads,
            "backend": self.backend,
        }

    def _groups(self) -> list[dict[str, Any]]:
        groups = []
        for point in self.plan.points:
            members = [r for r in self.results.values() if r.point == point]
            by_seed = {r.seed: r.metrics for r in members if r.status == "finished"}
            groups.append(
                {
                    "point": point,
                    "slug": slug(point),
                    "members": len(members),
                    "finished": len(by_seed),
                    "failed": sum(r.status == "failed" for r in members),
                    "metrics": aggregate(by_seed),
                    "paired": paired(by_seed),
                }
            )
        return groups

    def _record(self, status: str) -> dict[str, Any]:
        parent = self.parent
        return {
            "recipe": self.plan.recipe.recipe.name,
            "source": self.plan.recipe.source,
            "status": status,
            **self._settings(),
            "interval": INTERVAL,
            "mlflow": {
                "parent_run_id": parent.run_id if parent is not None else None,
                "experiment": self.plan.recipe.recipe.tracking.experiment,
                "tracking_uri": parent.tracking_uri
                if parent is not None and parent.active
                else None,
            },
            "members": [r.to_dict() for r in self.results.values()],
            "aggregate": self._groups(),
            "selection": self._selection(),
        }

    def _selection_runs(self) -> dict[int, dict[str, Any]]:
        """The finished members' scored checkpoints (recipes with ``selection``), models
        named by grid point when there is a grid."""
        from counterfeit.adapt.selection_report import runs_from_summaries

        several = len(self.plan.points) > 1
        summaries = [
            (
                slug(r.point) if several else "",
                json.loads((Path(r.out) / "summary.json").read_text()),
            )
            for r in self.results.values()
            if r.status == "finished"
        ]
        return runs_from_summaries(summaries)

    def _selection(self) -> dict[str, Any] | None:
        """The label-free selection report (:mod:`counterfeit.adapt.selection_report`), or
        None when no member kept scored checkpoints."""
        from counterfeit.adapt.selection_report import selection_report

        runs = self._selection_runs()
        return selection_report(runs) if runs else None

    def _finish(self, status: str, plots: bool) -> SweepResult:
        """Write sweep.json, sweep.md (and the plots); log the aggregate to the parent run."""
        record = self._record(status)
        out = self.plan.out
        headline = self.headline or next(
            (next(iter(r.metrics)) for r in self.results.values() if r.metrics), None
        )
        paths: dict[str, Any] = {
            "sweep_json": write_state(out, record),
            "sweep_md": write_markdown(out, record, headline),
            "plots": write_plots(out, record) if plots else [],
        }
        if plots and record["selection"] is not None:
            paths["plots"].append(write_selection_plot(out, self._selection_runs()))
        self._log(record, paths)
        return SweepResult(
            record["recipe"],
            out,
            status,
            list(self.results.values()),
            record["aggregate"],
            self.parent.run_id if self.parent.active else None,
            paths,
        )

    def _log(self, record: dict[str, Any], paths: dict[str, Any]) -> None:
        parent = self.parent
        if not parent.active:
            return
        several = len(record["aggregate"]) > 1
        metrics: dict[str, float] = {}
        for group in record["aggregate"]:
            prefix = f"{group['slug']}/" if several else ""
            rows = [(name, s) for name, s in group["metrics"].items()]
            rows += [(f"{p['a']} - {p['b']}/{p['metric']}", p) for p in group["paired"]]
            for name, stats in rows:
                for key in STATS_LOGGED:
                    if stats[key] is not None:
                        metrics[f"{prefix}{name}/{key}"] = stats[key]
                if stats["ci95"]:
                    metrics[f"{prefix}{name}/ci95_low"] = stats["ci95"][0]
                    metrics[f"{prefix}{name}/ci95_high"] = stats["ci95"][1]
        for status in ("finished", "failed", "interrupted"):
            metrics[f"members_{status}"] = sum(m["status"] == status for m in record["members"])
        parent.log_metrics(metrics)
        parent.log_artifact(paths["sweep_json"])
        parent.log_artifact(paths["sweep_md"])
        if paths["plots"]:
            parent.log_artifact(self.plan.out / "plots", "plots")
