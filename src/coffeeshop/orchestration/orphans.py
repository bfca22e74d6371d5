"""Flow runs whose coordinator was killed: marked CRASHED by the next run on the same machine.

A coordinator killed mid-run (SIGKILL, the OOM killer, a lost node) cannot report its end, so
its flow run stays RUNNING in the Prefect database for ever. That applies to the temporary API
server too: a run without `PREFECT_API_URL` starts one per run, but its database is the
SQLite file in `PREFECT_HOME`, which the next run's server opens again.

Each partitioned run therefore tags its flow run with its owner: the host name, the kernel's
boot id, the PID namespace, the pid and the start time of the process (Linux `/proc`). Before
a run starts, it marks CRASHED, with a message saying why, every RUNNING or PENDING flow run
of the same flow with such a tag whose owner was on this machine (same host, boot and PID
namespace) and is certainly gone: no process with that pid, or one started at another time.
A run of another machine or container is left alone (it cannot be told from here), and
without `/proc` nothing is tagged or marked.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import StateType
from prefect.states import Crashed

__all__ = ["OWNER", "TAG", "mark_crashed", "owner_tags"]

log = logging.getLogger("coffeeshop.orchestration.orphans")

TAG = "coffeeshop-coordinator"
OWNER = "coffeeshop-owner:"  # + host|boot id|pid namespace|pid|start time
_PROC = Path("/proc")


def owner_tags(pid: int | None = None) -> list[str]:
    """The tags naming this process (or `pid`) as a flow run's owner; none without /proc."""
    pid = os.getpid() if pid is None else pid
    machine = _machine()
    started = _started(pid)
    if machine is None or started is None:
        return []
    return [TAG, f"{OWNER}{machine}|{pid}|{started}"]


def mark_crashed(flow_name: str) -> list[str]:
    """Mark CRASHED the unfinished runs of `flow_name` whose owner is certainly gone; their
    names."""
    machine = _machine()
    if machine is None:
        return []
    marked = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
            flow_run_filter=FlowRunFilter(
                tags=FlowRunFilterTags(all_=[TAG]),
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])
                ),
            ),
        )
        for run in runs:
            gone = _gone_owner(run.tags, machine)
            if gone is None:
                continue
            message = (
                f"its coordinator (pid {gone} on {socket.gethostname()}) ended without "
                "reporting: killed mid-run; marked by the next run on the same machine"
            )
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)
            log.warning("flow run %s was left %s: %s", run.name, run.state_name, message)
            marked.append(run.name)
    return marked


def _gone_owner(tags: list[str], machine: str) -> int | None:
    """The pid of the run's owner when it was on this machine and is gone; else None."""
    for tag in tags:
        if not tag.startswith(OWNER):
            continue
        fields = tag[len(OWNER) :].split("|")
        if len(fields) != 5 or "|".join(fields[:3]) != machine or not fields[3].isdigit():
            return None
        pid = int(fields[3])
        return pid if _started(pid) != fields[4] else None
    return None


def _machine() -> str | None:
    """This host, boot and PID namespace: where a pid means one process."""
    try:
        boot = (_PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink(_PROC / "self/ns/pid")
    except OSError:
        return None
    return f"{socket.gethostname()}|{boot}|{namespace}"


def _started(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks after boot); None when there is none."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None
