"""Reconcile sees every table the API reads: a hand edit of the engine's own state (`cs_daily`,
`cs_store_month`, `cs_store_hour`, `cs_totals`) or an invented `receipts_summary` row is a
difference, for the single-process reconcile and the partitioned one (the code the Dask tasks
run, here in one process), and `--repair` makes what the API serves exact again. On SQLite,
MariaDB and PostgreSQL; the command itself (exit 1, then a repair) on SQLite and MariaDB."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import execute_sql, receipt, reference_tables, run_coffeeshop, write_lines
from test_api_support import exact, running

from coffeeshop.pipeline.engine import Syncer
from coffeeshop.pipeline.partitioned import finish, gather_in_process
from coffeeshop.pipeline.reconcile import ReconcileReport, reconcile
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store

TODAY = dt.date(2026, 11, 25)  # a Wednesday

LINES: list[Any] = [
    receipt(1, store=1, date="2026-11-24", time="08:10", total="10.00", items=[("Latte", 2)]),
    receipt(2, store=1, date="2026-11-24", time="08:40", total="5.50", items=[("Tea", 1)]),
    receipt(3, store=2, date="2026-11-23", time="09:05", total="7.25", items=[("Latte", 1)]),
    receipt(4, store=2, date="2026-11-17", time="12:00", total="3.00", items=[("Scone", 3)]),
    receipt(5, store=1, date="2026-10-30", time="08:00", total="2.00", items=[("Tea", 2)]),
    receipt(6, total="oops"),
]
MORE: list[Any] = [
    receipt(7, store=1, date="2026-11-24", time="08:20", total="1.25", items=[("Tea", 1)]),
]

# Each edit: the table it damages, and the SQL (written to run alike on all three servers).
EDITS: dict[str, str] = {
    "cs_daily": "UPDATE cs_daily SET cents = cents + 100 WHERE day = '2026-11-24'",
    "cs_store_month": (
        "UPDATE cs_store_month SET cents = cents + 100, receipts = receipts + 1 "
        "WHERE month = '2026-11' AND store_id = 1"
    ),
    "cs_store_hour": (
        "UPDATE cs_store_hour SET receipts = receipts + 5 WHERE store_id = 2 AND hour = 9"
    ),
    "cs_totals": "UPDATE cs_totals SET cents = cents + 100, units = units + 1",
    "receipts_summary": (
        "INSERT INTO receipts_summary VALUES ('2026-11-28', '1.00', '1.00', '1.00', '1.00'), "
        "('2020-01-06', '9.99', '9.99', '9.99', '9.99')"
    ),
}
# What each edit shows as differences (table name -> how many).
FOUND: dict[str, dict[str, int]] = {
    "cs_daily": {"cs_daily": 1},
    "cs_store_month": {"cs_store_month": 1},
    "cs_store_hour": {"cs_store_hour": 1},
    "cs_totals": {"cs_totals": 1},
    "receipts_summary": {"receipts_summary": 2},
}


def sync(url: str, path: Path) -> None:
    with Store(url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY, read_ahead=False).run()


def single(url: str, path: Path, *, repair: bool, today: dt.date = TODAY) -> ReconcileReport:
    with Store(url) as store:
        return reconcile(store, JsonlSource(path), today=today, repair=repair)


def partitioned(url: str, path: Path, *, repair: bool, today: dt.date = TODAY) -> ReconcileReport:
    with Store(url, bulk_load=repair) as store:
        gathered = gather_in_process(str(path), 3)
        return finish(store, JsonlSource(path), gathered, today=today, repair=repair)


RECONCILES: dict[str, Callable[..., ReconcileReport]] = {
    "single": single,
    "partitioned": partitioned,
}


def served(url: str, path: str) -> Any:
    """What a fresh API over `url` answers for `path` (no cache from an earlier request)."""

    async def get() -> Any:
        async with running(url) as client:
            response = await client.get(path)
        assert response.status_code == 200, response.text
        return exact(response)

    return asyncio.run(get())


def served_figures(url: str) -> dict[str, Any]:
    return {
        path: served(url, path)
        for path in ("/daily_sales", "/store_hours", "/store_monthly", "/receipts_summary")
    }


@pytest.mark.parametrize("how", sorted(RECONCILES))
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edit_of_what_the_api_reads_is_found_and_repaired(
    db_url: str, tmp_path: Path, edit: str, how: str
) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, LINES)
    sync(db_url, path)
    clean = served_figures(db_url)
    with Store(db_url) as store:
        execute_sql(store, EDITS[edit])
    report = RECONCILES[how](db_url, path, repair=False)
    assert report.counts == FOUND[edit], [str(d) for d in report.differences]
    repaired = RECONCILES[how](db_url, path, repair=True)
    assert repaired.repaired and repaired.counts == FOUND[edit]
    assert RECONCILES[how](db_url, path, repair=False).total_differences == 0
    assert served_figures(db_url) == clean
    # The repaired state is what the next batches build on: they stay exact.
    write_lines(path, MORE)
    sync(db_url, path)
    with Store(db_url) as store:
        assert store.read_tables(TODAY) == reference_tables(LINES + MORE, TODAY)
    daily = {row["day"]: row["sales"] for row in served(db_url, "/daily_sales")}
    assert str(daily["2026-11-24"]) == "16.75"


def test_the_difference_is_named_with_the_expected_and_the_stored_row(
    db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "r.jsonl"
    write_lines(path, LINES)
    sync(db_url, path)
    with Store(db_url) as store:
        execute_sql(store, EDITS["cs_daily"])
        execute_sql(store, EDITS["receipts_summary"])
    lines = {str(d) for d in single(db_url, path, repair=False).differences}
    assert (
        "cs_daily 2026-11-24: expected receipts=2 cents=1550, found receipts=2 cents=1650" in lines
    )
    assert any(line.startswith("receipts_summary 2026-11-28: expected no row") for line in lines), (
        lines
    )


run = run_coffeeshop


@pytest.mark.parametrize("kind", ["sqlite", "mariadb"])
def test_the_command_exits_1_on_edited_state_and_repair_fixes_it(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db = (
        f"sqlite:///{tmp_path / 'a.db'}"
        if kind == "sqlite"
        else request.getfixturevalue("mysql_url")
    )
    source = tmp_path / "r.jsonl"
    write_lines(source, LINES)
    assert run("sync", "--source", str(source), "--db", db, cwd=tmp_path).returncode == 0
    tomorrow = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    with Store(db) as store:
        for table in ("cs_daily", "cs_store_month", "cs_store_hour", "cs_totals"):
            execute_sql(store, EDITS[table])
        execute_sql(
            store,
            f"INSERT INTO receipts_summary VALUES ('{tomorrow}', '1.00', '1.00', '1.00', '1.00')",
        )
    found = run("reconcile", "--source", str(source), "--db", db, cwd=tmp_path)
    assert found.returncode == 1, found.stdout + found.stderr
    for table in ("cs_daily", "cs_store_month", "cs_store_hour", "cs_totals", "receipts_summary"):
        assert f"{table}: 1 difference(s)" in found.stdout, found.stdout
    repaired = run("reconcile", "--source", str(source), "--db", db, "--repair", cwd=tmp_path)
    assert repaired.returncode == 0 and "repaired" in repaired.stdout, repaired.stderr
    again = run("reconcile", "--source", str(source), "--db", db, cwd=tmp_path)
    assert again.returncode == 0 and "reconcile: 0 difference(s)" in again.stdout


@pytest.mark.parametrize("how", sorted(RECONCILES))
def test_past_summary_rows_written_since_the_last_commit_are_checked(
    db_url: str, tmp_path: Path, how: str
) -> None:
    """Rows dated two days or more after the last commit were written from the state the
    tables still hold: an edited one is found and rewritten. A row within a day of the last
    commit is not checked (README: what reconcile verifies of `receipts_summary`)."""
    now = dt.datetime.now(dt.UTC).date()  # `committed_at` is the commit's UTC time
    path = tmp_path / "r.jsonl"
    write_lines(path, LINES)
    with Store(db_url) as store:
        Syncer(store, JsonlSource(path), today=lambda: now, read_ahead=False).run()
        for offset in (1, 2, 3, 4):  # the daily refresh, on the days after the last commit
            store.refresh_summary(now + dt.timedelta(days=offset))
        for offset in (1, 2):
            day = (now + dt.timedelta(days=offset)).isoformat()
            execute_sql(
                store, f"UPDATE receipts_summary SET spend_per_rcpt = 1 WHERE as_of = '{day}'"
            )
    today = now + dt.timedelta(days=4)
    check = RECONCILES[how]
    report = check(db_url, path, repair=False, today=today)
    assert report.counts == {"receipts_summary": 1}, [str(d) for d in report.differences]
    (difference,) = report.differences
    assert difference.key == str(now + dt.timedelta(days=2))
    assert difference.actual.startswith("spend_per_rcpt=1.00 ")
    assert check(db_url, path, repair=True, today=today).repaired
    assert check(db_url, path, repair=False, today=today).total_differences == 0
    rows = {row["as_of"]: row for row in served(db_url, "/receipts_summary")}
    assert rows[str(now + dt.timedelta(days=2))] == rows[str(now + dt.timedelta(days=3))] | {
        "as_of": str(now + dt.timedelta(days=2))
    }


def test_the_cli_lists_the_public_tables_the_descriptors_declare() -> None:
    """`tables --table NAME` names are a plain enum (the CLI starts without SQLAlchemy): it
    must stay the descriptors' list of public tables."""
    from coffeeshop.cli.inspect import TableName
    from coffeeshop.store.tables import ROWS

    assert {str(name) for name in TableName} == {rows.name for rows in ROWS if rows.public}
