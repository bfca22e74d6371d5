"""The deployments `coffeeshop flows serve` registers and serves, on their schedules.

Served deployments take no connection settings from a run. The local Prefect API has no
authentication, so whoever reaches it can start a run with any parameters (even past the
parameter schema: a run may ask the API not to enforce it). A run of a deployment served by
`coffeeshop flows serve` therefore takes its source, its database and (for the reconcile) its
`repair` from the serving process only: the deployments' parameter schemas leave `source` and
`db` out and freeze `repair`, and a run that passes them anyway fails before it opens anything
(`flows.refuse_run_parameters`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar, cast
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ObjectNotFound
from prefect.runner import Runner
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType
from prefect.utilities.annotations import freeze
from prefect.utilities.callables import ParameterSchema
from pydantic import ConfigDict

from coffeeshop.config import Settings
from coffeeshop.errors import ConfigError
from coffeeshop.orchestration.flows import (
    SERVED,
    reconcile_flow,
    refresh_summary_flow,
    sync_flow,
)
from coffeeshop.orchestration.home import home_of
from coffeeshop.orchestration.server import DEFAULT_PORT, first_line, prefect_api

__all__ = [
    "RECONCILE_CRON",
    "SUMMARY_CRON",
    "build_deployments",
    "schedule_timezone",
    "serve_flows",
    "serving_message",
    "start_stream",
    "trigger",
]

log = logging.getLogger("coffeeshop.orchestration.deployments")

T = TypeVar("T")

RECONCILE_CRON = "0 3 * * *"  # nightly, local time
SUMMARY_CRON = "1 0 * * *"  # just after local midnight: the new day's receipts_summary row
STREAM, NIGHTLY, DAILY = "stream", "nightly", "daily"  # deployment names
TAGS = ["coffeeshop"]
# At most one run of each deployment at a time (a run asked for while one is in flight waits
# for it: Prefect's ENQUEUE strategy), so at most this many flow-run processes at once.
RUNS_PER_DEPLOYMENT = 1


def schedule_timezone(settings: Settings) -> str:
    """The IANA zone of "today": COFFEESHOP_TIMEZONE, else the machine's (UTC if unknown)."""
    if settings.timezone:
        return settings.timezone
    try:
        from tzlocal import get_localzone_name

        name = get_localzone_name()
    except Exception:  # no tzlocal, or a zone it cannot name
        name = None
    if not name:
        log.warning("cannot name this machine's time zone; scheduling in UTC")
    return name or "UTC"


def build_deployments(
    settings: Settings,
    *,
    repair: bool = False,
    reconcile_cron: str = RECONCILE_CRON,
    summary_cron: str = SUMMARY_CRON,
) -> list[RunnerDeployment]:
    """The three deployments: `sync/stream` (no schedule: started by `serve_flows`),
    `reconcile/nightly` and `refresh-summary/daily` on cron schedules in local time."""
    zone = schedule_timezone(settings)
    try:
        reconcile_schedule = Cron(reconcile_cron, timezone=zone)
        summary_schedule = Cron(summary_cron, timezone=zone)
    except ValueError as exc:
        raise ConfigError(f"bad schedule: {first_line(exc)}") from None
    common: dict[str, Any] = {
        "tags": TAGS,
        "entrypoint_type": EntrypointType.MODULE_PATH,
        "concurrency_limit": RUNS_PER_DEPLOYMENT,
    }
    deployments = [
        _sync(
            sync_flow.to_deployment(
                STREAM, description="Follows the source; started once by `flows serve`.", **common
            )
        ),
        _sync(
            reconcile_flow.to_deployment(
                NIGHTLY,
                schedule=reconcile_schedule,
                parameters={"repair": freeze(repair)},
                description=f"Recompute and compare{' and repair' if repair else ''}, nightly.",
                **common,
            )
        ),
        _sync(
            refresh_summary_flow.to_deployment(
                DAILY,
                schedule=summary_schedule,
                description="Writes the new day's receipts_summary row after local midnight.",
                **common,
            )
        ),
    ]
    for deployment in deployments:
        _without_connection_parameters(deployment)
    return deployments


def _sync(value: T | Coroutine[Any, Any, T]) -> T:
    """The result of a Prefect method that runs synchronously outside an event loop (as here)
    and asynchronously inside one (`async_dispatch`), and is typed as returning either."""
    return cast(T, value)


def _without_connection_parameters(deployment: RunnerDeployment) -> None:
    """The API refuses a run of `deployment` that names `source` or `db` (or any parameter the
    flow does not take): they come from the serving process. (A run can ask the API not to
    enforce the schema; the flows refuse those parameters themselves too.)"""
    fields = deployment._parameter_openapi_schema.model_dump()
    for name in ("source", "db"):
        fields["properties"].pop(name, None)
    fields["required"] = [n for n in fields["required"] if n in fields["properties"]]
    deployment._parameter_openapi_schema = _ClosedSchema.model_validate(
        fields | {"additionalProperties": False}
    )


class _ClosedSchema(ParameterSchema):
    """Prefect's parameter schema with `additionalProperties` (the API validates with it)."""

    model_config = ConfigDict(extra="allow")


def start_stream(deployment: RunnerDeployment) -> UUID:
    """Register `deployment` and ask for one run of it, unless one is already waiting to start
    (left over from an earlier `serve`). Returns the id of that run."""
    deployment_id = _sync(deployment.apply())
    waiting = FlowRunFilter(
        state=FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING])
        )
    )
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=waiting,
            limit=1,
        )
        if runs:
            return runs[0].id
        return client.create_flow_run_from_deployment(deployment_id, tags=TAGS).id


def serve_flows(
    settings: Settings,
    *,
    repair: bool = False,
    reconcile_cron: str = RECONCILE_CRON,
    summary_cron: str = SUMMARY_CRON,
    stream: bool = True,
    port: int = DEFAULT_PORT,
) -> None:
    """Register the deployments, start the stream, and serve them in this process until
    SIGTERM or Ctrl-C (which cancel the runs in flight: the stream stops after its batch)."""
    deployments = build_deployments(
        settings, repair=repair, reconcile_cron=reconcile_cron, summary_cron=summary_cron
    )
    os.environ[SERVED] = "repair" if repair else "check"  # inherited by the flow runs
    with prefect_api(port=port, home=home_of(settings.db)) as api_url:
        log.info("Prefect API at %s", api_url)
        if stream:
            run_id = start_stream(deployments[0])
            log.info("stream: flow run %s of sync/%s", run_id, STREAM)
        print(serving_message(api_url, deployments), file=sys.stderr, flush=True)
        _serve(deployments, limit=RUNS_PER_DEPLOYMENT * len(deployments))


def _serve(deployments: list[RunnerDeployment], *, limit: int) -> None:
    """Prefect's `serve`, where Ctrl-C stops as SIGTERM does: the runner cancels its runs in
    flight (each ends Cancelled, or Completed when it finished first, never Crashed) and
    pauses the deployments, before the caller stops the Prefect server they report to.
    (Under `serve`, Ctrl-C interrupted the runner mid-way: runs left Running, or Crashed.)"""
    runner = Runner(pause_on_shutdown=True, limit=limit)
    for deployment in deployments:
        runner.add_deployment(deployment)
    previous = signal.signal(signal.SIGINT, runner.handle_sigterm)
    try:
        asyncio.run(runner.start())
    finally:
        signal.signal(signal.SIGINT, previous)


def serving_message(api_url: str, deployments: list[RunnerDeployment]) -> str:
    """What is served, the UI's link and commands that work as printed (in another shell,
    where the virtualenv may not be activated and PREFECT_API_URL may be unset or point
    elsewhere)."""
    ui = api_url.rstrip("/").removesuffix("/api")
    names = [f"{d.flow_name}/{d.name}" for d in deployments]
    lines = [f"serving {len(names)} deployment(s): {', '.join(names)}"]
    lines.append(f"Prefect UI: {ui}/deployments")
    lines += [
        f"run one now: {coffeeshop_command()} flows trigger {name} --api {api_url}"
        for name in names[1:]
    ]
    return "\n".join(lines)


def coffeeshop_command() -> str:
    """This installation's `coffeeshop`, runnable from any shell and directory."""
    script = Path(sys.executable).with_name("coffeeshop")  # the virtualenv's, not resolved
    if script.is_file():
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m coffeeshop"


def trigger(name: str, api_url: str) -> tuple[UUID, str]:
    """Ask the Prefect API at `api_url` for a run of the deployment `name` now (the serving
    process starts it): its id and its page in the UI."""
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(name)
        except ObjectNotFound:
            raise ConfigError(
                f"the Prefect API at {api_url} has no deployment {name!r}: is it the server "
                "of `coffeeshop flows serve`?"
            ) from None
        run = client.create_flow_run_from_deployment(deployment.id, tags=TAGS)
    ui = api_url.rstrip("/").removesuffix("/api")
    return run.id, f"{ui}/runs/flow-run/{run.id}"
