"""The local backend: members as subprocesses on this machine, ``workers`` at a time."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from counterfeit.recipes.sweep.member import RunningMember, finish_member, interrupt, start_member
from counterfeit.recipes.sweep.plan import Member

OnStart = Callable[[Member, bool], None]
OnEnd = Callable[[Member, dict[str, Any]], None]


def run_local(
    members: Sequence[Member],
    workers: int,
    env: Mapping[str, str],
    on_start: OnStart,
    on_end: OnEnd,
    poll_seconds: float = 0.2,
) -> None:
    """Run ``members`` as ``counterfeit run`` processes, at most ``workers`` at once.

    A KeyboardInterrupt (Ctrl-C, or SIGTERM) is passed on to the running members as SIGTERM;
    they write a checkpoint and stop, are reported through ``on_end`` (status
    ``interrupted``), and the KeyboardInterrupt is raised again. Members not yet started
    stay pending.
    """
    queue = deque(members)
    running: list[tuple[Member, RunningMember]] = []
    try:
        while queue or running:
            while queue and len(running) < workers:
                member = queue.popleft()
                process = start_member(member.args, member.out, env)
                running.append((member, process))
                on_start(member, process.resumed)
            for entry in [e for e in running if e[1].process.poll() is not None]:
                running.remove(entry)
                on_end(entry[0], finish_member(entry[1]))
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        interrupt([process for _, process in running])
        for member, process in running:
            on_end(member, finish_member(process))
        raise
