"""The Ray backend: the same member commands as Ray tasks, on a local Ray or a cluster.

Each member is one task, ``ray.remote(num_cpus=T)`` over
:func:`~counterfeit.recipes.sweep.member.run_member`: it runs ``counterfeit run`` on the
worker that Ray picks and returns the member's outcome; Ray does the scheduling.

On a cluster, every node needs counterfeit installed (the same version), the sweep's
``--out`` on a filesystem every node sees at the same path (members write there, and
``--resume`` reads it back), and MLflow at a server (``MLFLOW_TRACKING_URI=http://...``).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from counterfeit.gan.errors import ConfigError
from counterfeit.recipes.sweep.local import OnEnd, OnStart
from counterfeit.recipes.sweep.member import INTERRUPT_GRACE_SECONDS, read_member, run_member
from counterfeit.recipes.sweep.plan import Member


def import_ray() -> Any:
    """The ``ray`` module, or a ConfigError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--backend ray needs Ray: pip install 'counterfeit[ray]' (or 'ray>=2.9')."
        ) from None
    return ray


def connect_ray(address: str | None) -> tuple[Any, bool]:
    """Join the Ray cluster at ``address`` unless Ray is initialised already.

    Args:
        address: ``HOST:PORT`` of a cluster's head (from a node of the cluster),
            ``ray://HOST:10001`` (Ray Client, from anywhere), ``auto``, or None to start a
            local Ray on this machine.

    Returns:
        The ``ray`` module and whether this call initialised it (the caller shuts it down).

    Raises:
        ConfigError: Ray is not installed, or the cluster cannot be reached.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    try:
        ray.init(address=address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(
            f"cannot connect to Ray at '{address}': {str(exc).splitlines()[0][:300]}. Start "
            "the cluster (ray start --head) or check --address."
        ) from None
    return ray, True


def run_ray(
    ray: Any,
    members: Sequence[Member],
    workers: int | None,
    threads: int,
    env: Mapping[str, str],
    on_start: OnStart,
    on_end: OnEnd,
) -> None:
    """Run ``members`` as Ray tasks of ``threads`` CPUs each.

    Args:
        ray: the connected ``ray`` module (:func:`connect_ray`).
        members: the members to run.
        workers: at most this many tasks in flight (None: all; Ray queues what does not fit).
        threads: CPUs Ray reserves per member (and the member's thread count).
        env: variables added to each member's environment on its worker.
        on_start: called when a member is submitted.
        on_end: called with each member's outcome.

    A KeyboardInterrupt cancels the running tasks (each forwards SIGINT to its member) and is
    raised again once they have ended.
    """
    task = ray.remote(num_cpus=threads, max_retries=0)(_run_on_ray)
    queue = deque(members)
    in_flight: dict[Any, Member] = {}
    limit = workers or len(members)
    cwd = os.getcwd()
    try:
        while queue or in_flight:
            while queue and len(in_flight) < limit:
                member = queue.popleft()
                out = str(member.out.resolve())
                in_flight[task.remote(list(member.args), out, dict(env), cwd)] = member
                on_start(member, (member.out / "checkpoints").is_dir())
            done, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
            for ref in done:
                member = in_flight.pop(ref)
                on_end(member, _outcome(ray, ref, member))
    except KeyboardInterrupt:
        for ref in in_flight:
            ray.cancel(ref)
        if in_flight:
            ray.wait(list(in_flight), num_returns=len(in_flight), timeout=INTERRUPT_GRACE_SECONDS)
        for ref, member in in_flight.items():
            on_end(member, _outcome(ray, ref, member, stopping=True))
        raise


def _run_on_ray(args: list[str], out: str, env: dict[str, str], cwd: str) -> dict[str, Any]:
    """The Ray task: run one member on this worker, and say which node ran it."""
    import ray

    outcome = run_member(args, out, env, cwd)
    outcome["worker"] = f"ray node {ray.get_runtime_context().get_node_id()} ({outcome['worker']})"
    return outcome


def _outcome(ray: Any, ref: Any, member: Member, stopping: bool = False) -> dict[str, Any]:
    """A task's returned outcome; a task that raised is failed (interrupted when cancelled)."""
    try:
        return ray.get(ref, timeout=0)
    except (ray.exceptions.RayError, TimeoutError) as exc:
        cancelled = stopping or isinstance(exc, ray.exceptions.TaskCancelledError)
        return {
            "status": "interrupted" if cancelled else "failed",
            "exit_code": None,
            "error": f"{type(exc).__name__}: {str(exc)[-2000:]}",
            "metrics": {},
            "ran": True,
            "resumed": False,
            "mlflow_run_id": read_member(member.out)["mlflow_run_id"],
        }
