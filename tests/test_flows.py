"""The Prefect flows over the engine, against a temporary Prefect API (prefect_test_harness, one
per session: it takes seconds to start), on real SQLite files and MariaDB databases; and the
`coffeeshop flows` commands as a user runs them, in subprocesses."""

from __future__ import annotations

# ruff: noqa: E402 (Prefect is configured before it is first imported)
from coffeeshop.orchestration.settings import configure

configure()  # Prefect reads its settings, and starts its analytics, when first imported

import contextlib
import contextvars
import datetime as dt
import functools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pymysql
import pytest
from helpers import (
    assert_one_line_error,
    current_receipts,
    execute_sql,
    receipt,
    reference_tables,
    write_lines,
)
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.schedules import CronSchedule
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.testing.utilities import prefect_test_harness
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from coffeeshop.config import load_settings
from coffeeshop.errors import (
    CheckpointMoved,
    ConfigError,
    DatabaseMissing,
    SourceChanged,
    StoreError,
    WriterBusy,
)
from coffeeshop.orchestration import deployments, flows
from coffeeshop.pipeline import engine
from coffeeshop.pipeline.engine import Syncer
from coffeeshop.retry import RetryPolicy
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store


@pytest.fixture(scope="module")
def prefect_api() -> Iterator[str]:
    """A temporary Prefect API for this module; its URL, for subprocesses. Its teardown
    drains Prefect's event and log worker threads, which would otherwise stay alive and touch
    the global `random` under the hypothesis tests that run later (a deprecation warning)."""
    with prefect_test_harness(server_startup_timeout=180):  # a loaded machine needs it
        url = PREFECT_API_URL.value()
        assert url
        yield url


def lines() -> list[Any]:
    """Inserts over four stores and a month, a replace, deletes, and two rejects."""
    out: list[Any] = [
        receipt(
            i,
            store=i % 4,
            date=f"2026-11-{10 + i % 15:02d}",
            time=f"{7 + i % 12:02d}:15",
            total=f"{i}.35",
            items=[("Latte", 1 + i % 3), ("Crème Brûlée", 1)],
        )
        for i in range(60)
    ]
    out.append(receipt(3, store=9, total="7.10", items=[("Tea", 2)]))
    out += [{"operationType": "delete", "documentKey": {"_id": i}} for i in range(0, 60, 7)]
    out += [receipt(500, total=-1), "not json"]
    return out


DEAD_API = "http://127.0.0.1:1/api"  # nothing listens on port 1
RECEIPTS = len(current_receipts(lines()))  # valid receipts left after all the lines


def today() -> dt.date:
    return load_settings().today()


def assert_exact(url: str, written: list[Any], *, day: dt.date | None = None) -> None:
    day = day or today()
    with Store(url) as store:
        assert store.read_tables(day) == reference_tables(written, day)


def sync_directly(url: str, path: Path, *, day: dt.date | None = None) -> None:
    with Store(url) as store:
        Syncer(store, JsonlSource(path), today=lambda: day or today()).run()


def wait_for(condition: Callable[[], bool], *, seconds: float = 180.0) -> None:
    """Until `condition()` holds; the deadline only bounds a failure, so it is generous enough
    for a loaded machine (a passing run returns as soon as the condition holds)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def receipts_in(url: str) -> int:
    with Store(url) as store:
        store.upgrade()
        return sum(1 for _ in store.iter_receipts())


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, api: str | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    environment |= {
        "PREFECT_HOME": str(cwd / ".prefect"),
        "COFFEESHOP_STATE_DIR": str(cwd / "state"),
    }
    environment |= env or {}
    if api:
        environment["PREFECT_API_URL"] = api
    return subprocess.run(
        [sys.executable, "-m", "coffeeshop", "flows", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,  # a temporary Prefect server on a loaded machine: bounds a failure only
    )


# -- the flows, in this process ---------------------------------------------------------------


def test_sync_flow_applies_a_file_exactly(db_url: str, tmp_path: Path, prefect_api: str) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, lines())
    result = flows.sync_flow(source=str(path), db=db_url, follow=False)
    assert result["passes"] == 1
    assert result["applied"] == 61 + 9 and result["quarantined"] == 2
    assert_exact(db_url, lines())


def test_one_pass_applies_what_is_there_exits_and_the_next_resumes(
    tmp_path: Path, prefect_api: str
) -> None:
    path, url = tmp_path / "r.jsonl", f"sqlite:///{tmp_path / 'a.db'}"
    first, more = lines(), [receipt(900, total="1.50"), receipt(3, total="2.00")]
    write_lines(path, first)
    assert flows.sync_flow(source=str(path), db=url, follow=False)["events"] == len(first)
    write_lines(path, more)
    assert flows.sync_flow(source=str(path), db=url, follow=False)["events"] == len(more)
    assert_exact(url, first + more)


def test_reconcile_flow_reports_differences_and_repairs_them(
    db_url: str, tmp_path: Path, prefect_api: str
) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, lines())
    sync_directly(db_url, path)
    with Store(db_url) as store:
        execute_sql(store, "UPDATE store_peak_hours SET tx_count = tx_count + 1")
        execute_sql(store, "DELETE FROM item_performance")
    with pytest.raises(flows.ReconcileDifferences) as raised:
        flows.reconcile_flow(source=str(path), db=db_url)
    assert raised.value.exit_code == 1
    assert "item_performance: 3" in str(raised.value) and "store_peak_hours: 5" in str(raised.value)
    repaired = flows.reconcile_flow(source=str(path), db=db_url, repair=True)
    assert repaired["repaired"] and repaired["differences"] == 8
    assert flows.reconcile_flow(source=str(path), db=db_url)["differences"] == 0
    assert_exact(db_url, lines())


def test_refresh_summary_writes_todays_row_without_a_new_receipt(
    tmp_path: Path, prefect_api: str
) -> None:
    path, url = tmp_path / "r.jsonl", f"sqlite:///{tmp_path / 'a.db'}"
    write_lines(path, lines())
    yesterday = today() - dt.timedelta(days=1)
    sync_directly(url, path, day=yesterday)  # the last sync ran yesterday; nothing came since
    row = flows.refresh_summary_flow(db=url)
    assert row["as_of"] == str(today())
    with Store(url) as store:
        rows = {r.as_of: r for r in store.summary_rows()}
    assert set(rows) == {yesterday, today()}  # yesterday's row stays the snapshot it was
    assert rows[today()] == reference_tables(lines(), today()).summary


def test_a_transient_store_error_is_retried_and_the_tables_stay_exact(
    tmp_path: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, url = tmp_path / "r.jsonl", f"sqlite:///{tmp_path / 'a.db'}"
    write_lines(path, lines())
    monkeypatch.setenv("COFFEESHOP_BATCH_SIZE", "10")
    calls = {"apply": 0, "run": 0}
    apply_batch, run = Store.apply_batch, Syncer.run

    def flaky_apply(self: Store, *args: Any, **kwargs: Any) -> Any:
        calls["apply"] += 1
        if calls["apply"] == 3:  # two batches are committed; the third fails once
            raise StoreError("cannot use database: (2013) Lost connection", transient=True)
        return apply_batch(self, *args, **kwargs)

    def counted_run(self: Syncer, **kwargs: Any) -> Any:
        calls["run"] += 1
        return run(self, **kwargs)

    monkeypatch.setattr(Store, "apply_batch", flaky_apply)
    monkeypatch.setattr(Syncer, "run", counted_run)
    engine_gives_up_at_once(monkeypatch)  # so that the task's own retry is what is seen
    monkeypatch.setattr(flows, "sync_pass", flows.sync_pass.with_options(retry_delay_seconds=0))
    state = flows.sync_flow(source=str(path), db=url, follow=False, return_state=True)
    assert state.is_completed()
    assert calls["run"] == 2
    assert state.result()["events"] == len(lines()) - 20  # the retry resumed after 2 batches
    assert_exact(url, lines())
    run_counts = task_run_counts(state.state_details.flow_run_id)
    assert run_counts == [2]  # one task run, recorded by Prefect with its retry


def engine_gives_up_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's own per-batch retries end after one attempt: a transient failure then
    reaches the Prefect task (or the stream's restart loop) at once."""
    monkeypatch.setattr(engine, "RetryPolicy", functools.partial(RetryPolicy, attempts=1))


def task_run_counts(flow_run_id: Any) -> list[int]:
    """Run counts of the flow run's task runs (the API records them a moment later)."""
    counts: list[int] = []

    def recorded() -> bool:
        nonlocal counts
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
        counts = [r.run_count for r in runs if r.state and r.state.is_final()]
        return bool(counts) and len(counts) == len(runs)

    wait_for(recorded)
    return counts


def test_a_config_error_is_not_retried(
    tmp_path: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, url = tmp_path / "r.jsonl", f"sqlite:///{tmp_path / 'a.db'}"
    write_lines(path, lines())
    calls = 0

    def misconfigured(self: Syncer, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        raise ConfigError("bad configuration COFFEESHOP_SOURCE: injected")

    monkeypatch.setattr(Syncer, "run", misconfigured)
    with pytest.raises(ConfigError, match="injected"):
        flows.sync_flow(source=str(path), db=url, follow=False)
    assert calls == 1  # no retry (so no backoff either: Prefect waits only between attempts)


def test_bad_configuration_fails_the_flow_before_any_task(tmp_path: Path, prefect_api: str) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        flows.sync_flow(source=str(tmp_path / "missing.jsonl"), db="sqlite://", follow=False)
    with pytest.raises(ConfigError, match="unsupported database"):
        flows.refresh_summary_flow(db="oracle://x@y/z")


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (StoreError("cannot use database x: (2006) gone away", transient=True), True),
        (StoreError("the database schema is version 9, newer than this coffeeshop"), False),
        (DatabaseMissing("cannot use database x: (1049) Unknown database"), False),
        (CheckpointMoved("checkpoint of x moved"), True),
        (ConnectionResetError(104, "reset by peer"), True),
        (TimeoutError("timed out"), True),
        (OperationalError("SELECT 1", {}, pymysql.err.OperationalError(2013, "Lost")), True),
        (OperationalError("SELECT 1", {}, pymysql.err.OperationalError(1045, "Denied")), False),
        (ConfigError("bad configuration"), False),
        (WriterBusy("another writer"), False),
        (SourceChanged("truncated"), False),
        (FileNotFoundError(2, "No such file"), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_transient_errors_are_retried(error: BaseException, retry: bool) -> None:
    assert flows.is_retryable(error) is retry


@contextlib.contextmanager
def streaming(monkeypatch: pytest.MonkeyPatch, **params: Any) -> Iterator[dict[str, Any]]:
    """`sync_flow(**params)` following in a thread until the block ends; yields the dict its
    result lands in."""
    stops: list[flows.Stop] = []

    class KeptStop(flows.Stop):
        def __init__(self) -> None:
            super().__init__()
            stops.append(self)

    monkeypatch.setattr(flows, "Stop", KeptStop)
    result: dict[str, Any] = {}
    context = contextvars.copy_context()  # the thread sees the harness's API settings
    thread = threading.Thread(
        target=lambda: result.update(context.run(lambda: flows.sync_flow(**params)))
    )
    thread.start()
    try:
        wait_for(lambda: bool(stops))
        yield result
    finally:
        stops[0].set()
        thread.join(timeout=60)


def test_a_repair_while_the_stream_runs_leaves_the_tables_exact(
    tmp_path: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, url = tmp_path / "r.jsonl", f"sqlite:///{tmp_path / 'a.db'}"
    write_lines(path, lines())
    sync_directly(url, path)
    with Store(url) as store:
        execute_sql(store, "DELETE FROM store_monthly")
    more = [receipt(901, store=2, total="3.30")]
    started = time.monotonic()
    with streaming(monkeypatch, source=str(path), db=url, segment_seconds=1.0) as result:
        repaired = flows.reconcile_flow(source=str(path), db=url, repair=True)
        assert repaired["repaired"] and repaired["by_table"] == {"store_monthly": 5}
        write_lines(path, more)
        wait_for(lambda: receipts_in(url) == RECEIPTS + 1)
        time.sleep(max(0.0, started + 2.5 - time.monotonic()))  # at least two segments
    assert result["passes"] >= 2 and result["events"] == 1
    assert_exact(url, lines() + more)


def test_a_stream_outlives_a_failure_that_outlasts_its_task_retries(
    tmp_path: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, url = tmp_path / "r.jsonl", f"sqlite:///{tmp_path / 'a.db'}"
    write_lines(path, lines())
    apply_batch, calls = Store.apply_batch, []

    def down_once(self: Store, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise StoreError("cannot use database: (2003) Can't connect", transient=True)
        return apply_batch(self, *args, **kwargs)

    monkeypatch.setattr(Store, "apply_batch", down_once)
    engine_gives_up_at_once(monkeypatch)
    monkeypatch.setattr(flows, "sync_pass", flows.sync_pass.with_options(retries=0))
    monkeypatch.setattr(flows, "RESTART_DELAY", 0.2)
    with streaming(monkeypatch, source=str(path), db=url) as result:
        wait_for(lambda: receipts_in(url) == RECEIPTS)
    assert (result["restarts"], result["passes"], result["events"]) == (1, 1, len(lines()))
    assert_exact(url, lines())


def test_a_signal_lets_the_work_in_hand_finish_then_is_handed_on() -> None:
    stop, finished = flows.Stop(), []
    with pytest.raises(KeyboardInterrupt), flows.stop_on_signals(stop, logging.getLogger("t")):
        signal.raise_signal(signal.SIGINT)
        assert stop.is_set()
        finished.append(True)  # the batch in hand completes before the signal goes on
    assert finished
    with pytest.raises(KeyboardInterrupt), flows.stop_on_signals(stop, logging.getLogger("t")):
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)  # asked twice: handed on at once
        finished.append(False)
    assert finished == [True]


def test_a_pass_event_is_set_by_its_timer_or_by_the_stop() -> None:
    stop = flows.Stop()
    with stop.watch(0.05) as timed, stop.watch() as untimed:
        assert timed.wait(5) and not untimed.is_set()
        stop.set()
        assert untimed.is_set()
    with stop.watch() as late:
        assert late.is_set()  # a pass that starts after the stop ends at once


def cron(deployment: Any) -> CronSchedule:
    """A deployment's first schedule, which must be a cron schedule."""
    assert deployment.schedules, deployment
    schedule = deployment.schedules[0].schedule
    assert isinstance(schedule, CronSchedule), schedule
    return schedule


def applied(deployment: Any) -> UUID:
    """`deployment.apply()` called from sync code: the new deployment's id."""
    deployment_id = deployment.apply()
    assert isinstance(deployment_id, UUID), deployment_id
    return deployment_id


def test_deployments_run_in_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COFFEESHOP_TIMEZONE", "America/New_York")
    stream, nightly, daily = deployments.build_deployments(load_settings(), repair=True)
    assert (stream.name, stream.schedules) == ("stream", [])
    assert cron(nightly).cron == "0 3 * * *"
    assert cron(daily).cron == "1 0 * * *"
    assert {cron(d).timezone for d in (nightly, daily)} == {"America/New_York"}
    assert nightly.parameters == {"repair": True}
    monkeypatch.delenv("COFFEESHOP_TIMEZONE")
    monkeypatch.setattr("tzlocal.get_localzone_name", lambda: "Asia/Tokyo")
    assert deployments.schedule_timezone(load_settings()) == "Asia/Tokyo"
    with pytest.raises(ConfigError, match="bad schedule"):
        deployments.build_deployments(load_settings(), reconcile_cron="at three")


def test_served_deployments_refuse_out_of_range_numbers_and_run_one_at_a_time(
    tmp_path: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 18.7: the API accepted `segment_seconds: -1` and `progress_every: 0` for a run of
    the stream, and started any number of runs of one deployment at once (4 nightly reconciles
    together: 4 processes, +560 MB)."""
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.exceptions import ParameterTypeError
    from prefect.states import Cancelled, Pending

    monkeypatch.setenv("COFFEESHOP_TIMEZONE", "UTC")
    built = {f"{d.flow_name}/{d.name}": d for d in deployments.build_deployments(load_settings())}
    ids = {name: applied(deployment) for name, deployment in built.items()}
    out_of_range = [
        {"segment_seconds": -1},
        {"segment_seconds": 0},
        {"segment_seconds": 10**12},
        {"progress_every": 0},
        {"progress_every": -3},
        {"wait_lock": -1},
        {"run_for": 0},
    ]
    with get_client(sync_client=True) as client:
        for bad in out_of_range:
            with pytest.raises(Exception, match=r"422|409|[Vv]alidation"):
                client.create_flow_run_from_deployment(ids["sync/stream"], parameters=bad)
    path, db = tmp_path / "r.jsonl", tmp_path / "a.db"
    write_lines(path, lines())
    for bad in out_of_range:  # a run that asked the API not to enforce the schema
        with pytest.raises(ParameterTypeError):
            flows.sync_flow(source=str(path), db=f"sqlite:///{db}", follow=False, **bad)
    assert not db.exists()

    with get_client(sync_client=True) as client:
        runs = [client.create_flow_run_from_deployment(ids["reconcile/nightly"]) for _ in range(2)]
        try:
            first: Any = client.set_flow_run_state(runs[0].id, Pending())
            second: Any = client.set_flow_run_state(runs[1].id, Pending())
            assert first.status == SetStateStatus.ACCEPT, first
            assert second.status != SetStateStatus.ACCEPT, second
            assert second.state is not None and second.state.type == StateType.SCHEDULED
            assert second.state.name == "AwaitingConcurrencySlot"
        finally:
            for run in runs:
                client.set_flow_run_state(run.id, Cancelled(), force=True)


# -- the commands, as a user runs them --------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "serve", "trigger"])
def test_flows_commands_have_help_with_an_example(command: str) -> None:
    from coffeeshop.cli import app

    result = CliRunner().invoke(app, ["flows", command, "--help"])
    assert result.exit_code == 0 and "Example: coffeeshop flows " in result.output


def test_flows_run_sync_is_one_pass_recorded_in_the_prefect_api(
    tmp_path: Path, prefect_api: str
) -> None:
    path, url = tmp_path / "r.jsonl", f"sqlite:///{tmp_path / 'a.db'}"
    write_lines(path, lines())
    result = run_cli(
        "run", "sync", "--source", "r.jsonl", "--db", url, cwd=tmp_path, api=prefect_api
    )
    assert result.returncode == 0, result.stderr
    assert f"synced {len(lines())} event(s)" in result.stderr
    assert_exact(url, lines())
    with get_client(sync_client=True) as client:
        latest = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["sync"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )[0]
    assert latest.state is not None and latest.state.is_completed()
    assert latest.parameters["db"] is None  # the URL went through the environment, not the API


def test_flows_run_reuses_a_running_local_prefect_server(tmp_path: Path, prefect_api: str) -> None:
    """Without PREFECT_API_URL, a Prefect server on 127.0.0.1:--port is used (no temporary
    API to start: seconds saved, and the run is recorded where the UI shows it)."""
    path, url = tmp_path / "r.jsonl", f"sqlite:///{tmp_path / 'reuse.db'}"
    write_lines(path, lines())
    port = prefect_api.rsplit(":", 1)[1].split("/")[0]
    result = run_cli(
        "run", "sync", "--source", "r.jsonl", "--db", url, "--port", port, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert f"using the Prefect server running at {prefect_api}" in result.stderr
    assert "Starting temporary server" not in result.stderr
    with get_client(sync_client=True) as client:
        latest = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["sync"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )[0]
    assert latest.state is not None and latest.state.is_completed()
    assert_exact(url, lines())


def test_flows_run_reconcile_differences_are_one_line_and_exit_1(
    tmp_path: Path, prefect_api: str
) -> None:
    path, url = tmp_path / "r.jsonl", f"sqlite:///{tmp_path / 'a.db'}"
    write_lines(path, lines())
    sync_directly(url, path)
    with Store(url) as store:
        execute_sql(store, "DELETE FROM store_peak_hours")
    result = run_cli(
        "run", "reconcile", "--source", str(path), "--db", url, cwd=tmp_path, api=prefect_api
    )
    assert_one_line_error(result, "5 difference(s)", code=1)


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["run", "sync", "--source", "r.jsonl", "--db", "oracle://x@y/z"], {}, "unsupported"),
        (
            ["run", "sync", "--source", "r.jsonl", "--db", "sqlite:////no/such/a.db"],
            {},
            "cannot use",
        ),
        (["run", "reconcile", "--source", "missing.jsonl"], {}, "does not exist"),
        (["run", "refresh-summary", "--repair"], {}, "--repair applies to"),
        (["serve", "--source", "r.jsonl"], {"COFFEESHOP_TIMEZONE": "Mars/Olympus"}, "time zone"),
        (["serve", "--source", "r.jsonl", "--reconcile-cron", "at three"], {}, "bad schedule"),
        (["run", "sync", "--source", "r.jsonl"], {"PREFECT_API_URL": DEAD_API}, "does not answer"),
        (["serve", "--source", "r.jsonl"], {"PREFECT_API_URL": DEAD_API}, "does not answer"),
        (["trigger", "reconcile/nightly", "--db", "sqlite:///a.db"], {}, "no `coffeeshop flows"),
        (["trigger", "reconcile/nightly", "--api", DEAD_API], {}, "does not answer"),
        (  # Prefect's temporary API cannot start in time (a loaded machine): what helps
            ["run", "sync", "--source", "r.jsonl", "--port", "1"],
            {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "1"},
            "raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
        ),
    ],
)
def test_bad_configuration_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], fragment: str
) -> None:
    write_lines(tmp_path / "r.jsonl", [receipt(1)])
    assert_one_line_error(run_cli(*args, cwd=tmp_path, env=env), fragment)


@pytest.mark.mariadb
def test_a_wrong_password_never_appears_in_the_output(tmp_path: Path, mysql_url: str) -> None:
    from sqlalchemy.engine import make_url

    secret = "S3cr3t-Pa55word-xyz"
    url = make_url(mysql_url).set(password=secret).render_as_string(hide_password=False)
    write_lines(tmp_path / "r.jsonl", [receipt(1)])
    result = run_cli("run", "sync", "--source", "r.jsonl", "--db", url, cwd=tmp_path)
    assert_one_line_error(result, "Access denied")
    assert secret not in result.stdout + result.stderr


def test_serve_schedules_the_flows_streams_and_stops_cleanly(
    tmp_path: Path, prefect_api: str
) -> None:
    path, url = tmp_path / "r.jsonl", f"sqlite:///{tmp_path / 'a.db'}"
    write_lines(path, lines())
    environment = {**os.environ, "PREFECT_HOME": str(tmp_path / ".prefect")}
    environment |= {"PREFECT_API_URL": prefect_api, "COFFEESHOP_TIMEZONE": "Europe/Berlin"}
    command = [sys.executable, "-m", "coffeeshop", "flows", "serve", "--source", str(path)]
    log = open(tmp_path / "serve.log", "w+")  # noqa: SIM115 - read back after the process ends
    served = subprocess.Popen(
        [*command, "--db", url], cwd=tmp_path, env=environment, stdout=log, stderr=log
    )
    try:
        wait_for(lambda: receipts_in(url) == RECEIPTS, seconds=240)  # a busy machine
        more = [receipt(902, total="4.40")]
        write_lines(path, more)
        wait_for(lambda: receipts_in(url) == RECEIPTS + 1)
        with get_client(sync_client=True) as client:
            nightly = client.read_deployment_by_name("reconcile/nightly")
            daily = client.read_deployment_by_name("refresh-summary/daily")
        assert (cron(nightly).cron, cron(daily).cron) == ("0 3 * * *", "1 0 * * *")
        assert cron(nightly).timezone == "Europe/Berlin"
        served.send_signal(signal.SIGTERM)
        assert served.wait(timeout=60) == 0
        with get_client(sync_client=True) as client:
            stream = client.read_deployment_by_name("sync/stream")
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[stream.id]))
            )
        assert [r.state.type.value for r in runs if r.state] == ["CANCELLED"]
    finally:
        if served.poll() is None:
            served.kill()
        log.seek(0)
        output = log.read()
        log.close()
    assert "received SIGTERM: stopped after the last committed batch" in output, output
    assert_exact(url, lines() + more, day=dt.datetime.now(ZoneInfo("Europe/Berlin")).date())
    sync_directly(url, path)  # the lock is free, and nothing was left unapplied
    assert receipts_in(url) == RECEIPTS + 1


# -- served deployments: parameters, the UI, printed hints, stopping --------------------------


def start_serving(
    tmp_path: Path, *args: str, api: str | None
) -> tuple[subprocess.Popen[str], Path]:
    """`coffeeshop flows serve …` in a session of its own (as systemd runs it); its log file."""
    environment = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    environment |= {"PREFECT_HOME": str(tmp_path / ".prefect"), "COFFEESHOP_TIMEZONE": "UTC"}
    environment["COFFEESHOP_STATE_DIR"] = str(tmp_path / "state")
    if api:
        environment["PREFECT_API_URL"] = api
    log_path = tmp_path / "serve.log"
    served = subprocess.Popen(
        [sys.executable, "-m", "coffeeshop", "flows", "serve", *args],
        cwd=tmp_path,
        env=environment,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    return served, log_path


def wait_for_deployment(name: str, log_path: Path, *, seconds: float = 300) -> Any:
    """The deployment `name` once the serving process has registered it."""
    found: list[Any] = []

    def registered() -> bool:
        assert "Traceback" not in log_path.read_text(), log_path.read_text()
        with get_client(sync_client=True) as client:
            try:
                found.append(client.read_deployment_by_name(name))
            except (ObjectNotFound, httpx.HTTPError):  # not yet registered, or not yet up
                return False
        return True

    wait_for(registered, seconds=seconds)
    return found[0]


def stop_serving(served: subprocess.Popen[str]) -> None:
    if served.poll() is None:
        os.killpg(served.pid, signal.SIGKILL)
        served.wait()


def test_a_served_deployment_takes_no_source_or_database_from_a_run(
    tmp_path: Path, prefect_api: str
) -> None:
    """issue 10.3: `prefect deployment run 'reconcile/nightly' --param source=/etc/passwd
    --param db=sqlite:///x.db --param repair=true` must neither read that file nor touch that
    database, even when the run asks the API not to enforce the parameter schema."""

    path, url = tmp_path / "r.jsonl", f"sqlite:///{tmp_path / 'a.db'}"
    write_lines(path, lines())
    sync_directly(url, path)
    hostile = {"source": "/etc/passwd", "db": f"sqlite:///{tmp_path / 'x.db'}", "repair": True}
    served, log_path = start_serving(
        tmp_path, "--source", str(path), "--db", url, "--no-stream", api=prefect_api
    )
    try:
        nightly = wait_for_deployment("reconcile/nightly", log_path)
        with (
            get_client(sync_client=True) as client,
            pytest.raises(Exception, match=r"422|409|[Vv]alidation|not allowed"),
        ):
            client.create_flow_run_from_deployment(nightly.id, parameters=hostile)
        # The API has no authentication: a caller can ask it not to enforce the schema.
        response = httpx.post(
            f"{prefect_api}/deployments/{nightly.id}/create_flow_run",
            json={"parameters": hostile, "enforce_parameter_schema": False},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        run_id = response.json()["id"]

        def finished() -> bool:
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(run_id).state
            return state is not None and state.is_final()

        wait_for(finished)
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(run_id).state
        assert state is not None and state.is_failed(), state
        assert "refused" in str(state.message) + log_path.read_text()
    finally:
        stop_serving(served)
    assert not (tmp_path / "x.db").exists()
    with Store(url) as store:
        assert not any("root:" in str(row["raw"]) for row in store.quarantine_rows(limit=1000))
    assert_exact(url, lines())


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopping_serve_leaves_every_run_final_without_an_error_line(
    tmp_path: Path, prefect_api: str, stop: signal.Signals
) -> None:
    """issue 20.2: Ctrl-C, or SIGTERM to the process group of `flows serve` (a terminal, a
    deploy), exited 0 but left the stream's run Running for ever, or Crashed after a
    KeyboardInterrupt traceback, or logged `ERROR … Crash detected!` before Cancelled."""
    path, url = tmp_path / "r.jsonl", f"sqlite:///{tmp_path / 'a.db'}"
    write_lines(path, lines())
    earlier = {run.id for run in stream_runs()}  # of other tests (the API is the module's)
    served, log_path = start_serving(tmp_path, "--source", str(path), "--db", url, api=prefect_api)
    try:
        wait_for_deployment("sync/stream", log_path, seconds=240)
        wait_for(lambda: receipts_in(url) == RECEIPTS, seconds=240)
        wait_for(lambda: "Prefect UI:" in log_path.read_text())
        os.killpg(served.pid, stop)
        code = served.wait(timeout=120)
    finally:
        stop_serving(served)
    output = log_path.read_text()
    assert code == 0, output
    for sign in ("Traceback", "ERROR", "Crash detected", "KeyboardInterrupt"):
        assert sign not in output, output
    states = [run.state for run in stream_runs() if run.id not in earlier]
    described = [(s.type.value, s.name, s.message) if s else None for s in states]
    assert states, output
    assert all(s is not None and (s.is_cancelled() or s.is_completed()) for s in states), (
        described,
        output,
    )
    assert_exact(url, lines(), day=dt.datetime.now(dt.UTC).date())


def stream_runs() -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["sync"])))


def test_a_run_with_connection_parameters_is_refused_in_a_served_process(
    tmp_path: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flows as the runner calls them, in a process `flows serve` started."""
    monkeypatch.setenv(flows.SERVED, "check")
    for call in (
        lambda: flows.reconcile_flow(source="/etc/passwd", db=f"sqlite:///{tmp_path / 'x.db'}"),
        lambda: flows.reconcile_flow(repair=True),
        lambda: flows.sync_flow(db=f"sqlite:///{tmp_path / 'x.db'}", follow=False),
        lambda: flows.refresh_summary_flow(db=f"sqlite:///{tmp_path / 'x.db'}"),
    ):
        with pytest.raises(ConfigError, match="refused"):
            call()
    assert not (tmp_path / "x.db").exists()


CHROMIUM = Path("/usr/bin/chromium")
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def test_serve_on_any_port_ui_works_offline_hints_work_and_a_group_sigterm_stops_it(
    tmp_path: Path,
) -> None:
    """issue 11.1–3: `flows serve --port P` with its own Prefect server. The printed UI link
    lists the three deployments in Chromium with no request leaving the machine; SIGTERM to
    the whole process group (systemd, `timeout`) stops it, exit 0, no traceback.
    issue 20.4: the printed `run one now` commands work as printed from a shell without the
    virtualenv on PATH (`prefect: command not found` before). issue 20.5: the server has a
    Prefect home of its own, per database, and `flows run` finds it on its port (it started
    a temporary API before, 23–33 s, then failed on the stream's lock)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing (run: bash scripts/ensure-chromium.sh)")
    from helpers import free_port
    from playwright.sync_api import sync_playwright

    path, url = tmp_path / "r.jsonl", f"sqlite:///{tmp_path / 'a.db'}"
    write_lines(path, lines())
    port = free_port()
    served, log_path = start_serving(
        tmp_path, "--source", str(path), "--db", url, "--port", str(port), api=None
    )
    try:
        wait_for_registered(port, log_path)
        wait_for(lambda: receipts_in(url) == RECEIPTS)
        output = log_path.read_text()
        ui = next(line.split(": ", 1)[1] for line in output.splitlines() if "Prefect UI:" in line)
        assert ui == f"http://127.0.0.1:{port}/deployments"
        outside: list[str] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"]
            )
            page = browser.new_page()

            def only_local(route: Any) -> None:
                host = route.request.url.split("/")[2].split(":")[0]
                if host in LOCAL_HOSTS or route.request.url.startswith(("data:", "blob:")):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_local)
            page.goto(ui)
            for name in ("stream", "nightly", "daily"):
                page.get_by_text(name, exact=True).first.wait_for(timeout=60_000)
            assert page.get_by_text("Unable to connect").count() == 0
            browser.close()
        assert outside == []
        hint = next(
            line.split(": ", 1)[1]
            for line in output.splitlines()
            if "run one now" in line and "refresh-summary/daily" in line
        )
        venv = str(Path(sys.executable).parent)
        shell_env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        shell_env["PATH"] = ":".join(p for p in shell_env["PATH"].split(":") if p != venv)
        shell_env["PREFECT_HOME"] = str(tmp_path / "elsewhere")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        printed = subprocess.run(
            hint,
            shell=True,
            env=shell_env,
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert printed.returncode == 0, printed.stdout + printed.stderr
        assert "flow run " in printed.stdout, printed.stdout
        with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
            wait_for(lambda: daily_runs_completed() >= 1)
        # issue 20.5: the served server's own home, and `flows run` finds it by the database
        homes = list((tmp_path / "state" / "flows").glob("a-*/prefect/prefect.db"))
        assert len(homes) == 1, list((tmp_path / "state").rglob("*"))
        assert not (tmp_path / ".prefect" / "prefect.db").exists()
        found = run_cli("run", "sync", "--source", str(path), "--db", url, cwd=tmp_path)
        assert (
            f"using the Prefect server of `coffeeshop flows serve` running at http://127.0.0.1:{port}/api"
            in found.stderr
        ), found.stderr
        assert "temporary server" not in found.stderr, found.stderr
        assert_one_line_error(found, "lock", code=3)
        assert_local_origin_only(port)
        os.killpg(served.pid, signal.SIGTERM)
        code = served.wait(timeout=60)  # a generous bound, not a timing assertion
    finally:
        stop_serving(served)
    output = log_path.read_text()
    assert code == 0, output
    assert "Traceback" not in output and "ConnectError" not in output, output
    assert_exact(url, lines(), day=dt.datetime.now(dt.UTC).date())


def test_a_served_servers_record_counts_only_while_its_flows_serve_runs(
    tmp_path: Path, prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a SIGKILL of `flows serve` its `server.json` stays; another server may answer
    on that port since: `flows run`/`trigger` must not take it for this database's."""
    from coffeeshop.orchestration import home, server

    monkeypatch.setenv(home.STATE_DIR, str(tmp_path / "state"))
    mine = home.home_of(f"sqlite:///{tmp_path / 'a.db'}")
    assert mine.path == home.home_of(f"sqlite:///{tmp_path}/./a.db").path  # one home
    assert mine.path != home.home_of(f"sqlite:///{tmp_path / 'b.db'}").path
    mine.create()
    with mine.recording(prefect_api):
        assert server.served_api(mine) == prefect_api
    assert server.served_api(mine) is None  # removed on the way out
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = int(gone.stdout)
    mine.record_file.write_text(f'{{"api_url": "{prefect_api}", "pid": {dead}}}')
    assert server.served_api(mine) is None


def daily_runs_completed() -> int:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["refresh-summary"]))
        )
    return sum(1 for run in runs if run.state is not None and run.state.is_completed())


def assert_local_origin_only(port: int) -> None:
    """issue 18.7: a page elsewhere in the operator's browser listed the deployments and
    started a run (`Access-Control-Allow-Origin: *`, no CSRF protection, no Host check)."""
    base = f"http://127.0.0.1:{port}/api"
    own, evil = f"http://127.0.0.1:{port}", "http://evil.example"
    answer = httpx.get(f"{base}/health", headers={"Origin": evil}, timeout=30)
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers
    answer = httpx.get(f"{base}/health", headers={"Origin": own}, timeout=30)
    assert answer.headers.get("access-control-allow-origin") == own
    preflight = httpx.options(
        f"{base}/deployments/filter",
        headers={"Origin": evil, "Access-Control-Request-Method": "POST"},
        timeout=30,
    )
    assert preflight.headers.get("access-control-allow-origin") not in ("*", evil)
    for path in ("/deployments/filter", "/flow_runs/filter"):  # a form post, no CSRF token
        answer = httpx.post(f"{base}{path}", json={}, headers={"Origin": evil}, timeout=30)
        assert answer.status_code == 403, (path, answer.status_code, answer.text)
    rebound = httpx.get(f"{base}/health", headers={"Host": f"evil.example:{port}"}, timeout=30)
    assert rebound.status_code == 400, rebound.status_code


def wait_for_registered(port: int, log_path: Path) -> None:
    with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
        for name in ("sync/stream", "reconcile/nightly", "refresh-summary/daily"):
            wait_for_deployment(name, log_path, seconds=240)
