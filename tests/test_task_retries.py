"""Prefect retries only what may pass: the flows' tasks and the Dask tasks are run here, and
their attempts counted. A missing database, a too-new schema and bad configuration fail at
once; a lost connection is retried (the decision is `store.errors`', see test_error_mapping)."""

from __future__ import annotations

# ruff: noqa: E402 (Prefect is configured before it is first imported)
from coffeeshop.orchestration.settings import configure

configure()

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql
import pytest
from conftest import MYSQL_URL, require_mysql
from helpers import execute_sql, write_lines
from prefect import flow
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from test_flows import lines, prefect_api  # noqa: F401 (the module's Prefect API fixture)

from coffeeshop.errors import ConfigError, DatabaseMissing, SourceUnavailable, StoreError
from coffeeshop.orchestration import flows, scaleout
from coffeeshop.sources import partitions
from coffeeshop.sources.partitions import plan_file
from coffeeshop.store import Store
from coffeeshop.store.migrations import SCHEMA_VERSION


def counted(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, fail: Callable[[int], None]
) -> list[int]:
    """Replace `owner.name` by a wrapper that calls `fail(attempt)` first, then the original;
    returns the list its attempts are appended to."""
    attempts: list[int] = []
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        attempts.append(len(attempts) + 1)
        fail(len(attempts))
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return attempts


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The summary task with its retry condition and count, without the backoff waits."""
    monkeypatch.setattr(
        flows, "write_summary_row", flows.write_summary_row.with_options(retry_delay_seconds=0)
    )


def never(_attempt: int) -> None:
    return None


def test_a_missing_database_is_not_retried(
    prefect_api: str,  # noqa: F811
    quick_retries: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_mysql()
    missing = make_url(MYSQL_URL).set(database=f"cs_missing_{uuid.uuid4().hex[:8]}")
    attempts = counted(monkeypatch, Store, "upgrade", never)
    with pytest.raises(DatabaseMissing, match="1049"):
        flows.refresh_summary_flow(db=missing.render_as_string(hide_password=False))
    assert attempts == [1]


def test_a_too_new_schema_is_not_retried(
    tmp_path: Path,
    prefect_api: str,  # noqa: F811
    quick_retries: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with Store(url) as store:
        store.upgrade()
        execute_sql(
            store,
            f"UPDATE cs_meta SET value = '{SCHEMA_VERSION + 1}' WHERE name = 'schema_version'",
        )
    attempts = counted(monkeypatch, Store, "upgrade", never)
    with pytest.raises(StoreError, match="newer than this coffeeshop"):
        flows.refresh_summary_flow(db=url)
    assert attempts == [1]


def test_a_lost_connection_is_retried(
    mysql_url: str,
    prefect_api: str,  # noqa: F811
    quick_retries: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def drop_once(attempt: int) -> None:
        if attempt == 1:  # the driver's own error for a connection lost mid-query
            lost = pymysql.err.OperationalError(2013, "Lost connection to server during query")
            raise OperationalError("SELECT 1", {}, lost)

    attempts = counted(monkeypatch, Store, "refresh_summary", drop_once)
    row = flows.refresh_summary_flow(db=mysql_url)
    assert attempts == [1, 2] and row["as_of"]


# -- the Dask tasks (run here on Prefect's default runner: the retry decision is the task's) ----


def read_range_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> tuple[list[int], BaseException | None]:
    """Run the `read-range` task once in a flow, its reading failing with `error` each time."""
    path = tmp_path / "r.jsonl"
    write_lines(path, lines())

    def fail(_attempt: int) -> None:
        raise error

    attempts = counted(monkeypatch, partitions, "read_range", fail)
    task = scaleout.read_partition.with_options(retry_delay_seconds=0)

    @flow(name="read-one-range")
    def read_one() -> Any:
        return task(plan_file(str(path), 1)[0], 1)

    try:
        read_one()
    except Exception as exc:
        return attempts, exc
    return attempts, None


def test_a_dask_task_does_not_retry_bad_configuration(
    tmp_path: Path,
    prefect_api: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts, raised = read_range_attempts(tmp_path, monkeypatch, ConfigError("bad: injected"))
    assert isinstance(raised, ConfigError) and attempts == [1]


def test_a_dask_task_retries_an_unreachable_source(
    tmp_path: Path,
    prefect_api: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts, raised = read_range_attempts(tmp_path, monkeypatch, SourceUnavailable("down"))
    assert isinstance(raised, SourceUnavailable)
    assert attempts == list(range(1, scaleout.RETRIES + 2))  # the first and every retry
