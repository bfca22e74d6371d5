"""A repair never moves the tables or the checkpoint backwards (issue 18.4).

A slow repair planned at an older end of the source used to commit after a faster one that
had already committed a newer end: the tables and the checkpoint went back (47,225 ->
45,425 receipts) until sync re-applied the gap. A rebuild now reads the source on from its
own snapshot's end to where the source ends at its commit, in the same transaction, so it
commits at least as far as anything committed before it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from helpers import receipt, reference_tables, write_lines
from test_bulk import url_for

from coffeeshop.pipeline.partitioned import finish, gather_in_process
from coffeeshop.pipeline.reconcile import reconcile
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store, schema

TODAY = dt.date(2026, 11, 25)
BACKENDS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]


def lines(start: int, count: int) -> list[dict[str, Any]]:
    return [receipt(f"r{i}", store=i % 4, total=f"{i}.25") for i in range(start, start + count)]


def later_changes() -> list[Any]:
    """New receipts, a replaced one and a deleted one: what the older snapshot misses."""
    gone = {"operationType": "delete", "documentKey": {"_id": "r3"}}
    return [*lines(100, 60), receipt("r5", store=2, total="99.99"), gone]


def state(url: str, path: Path) -> tuple[int, str | None]:
    with Store(url) as store:
        checkpoint = store.load_checkpoint(JsonlSource(path).name)
        return store.count(schema.receipts), checkpoint.position if checkpoint else None


def check_exact(url: str, written: list[Any]) -> None:
    with Store(url) as store:
        assert store.read_tables(TODAY) == reference_tables(written, TODAY)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bulk_load", [False, True])
def test_a_slow_partitioned_repair_never_commits_its_older_snapshot_over_a_newer_one(
    backend: str, bulk_load: bool, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = url_for(backend, tmp_path, request, "analysis")
    path = tmp_path / "r.jsonl"
    written: list[Any] = lines(0, 100)
    write_lines(path, written)
    source = JsonlSource(path)
    slow = gather_in_process(str(path), 3)  # planned first, at 100 receipts
    write_lines(path, later_changes())
    written += later_changes()
    with Store(url, bulk_load=bulk_load) as store:
        fast = gather_in_process(str(path), 3)  # planned later, committed first
        assert finish(store, source, fast, today=TODAY, repair=True).repaired
        newer = state(url, path)
        assert newer[0] == 159
        finish(store, source, slow, today=TODAY, repair=True)
    assert state(url, path) == newer  # not back to the 100 receipts of the older snapshot
    check_exact(url, written)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_slow_single_process_repair_never_moves_the_checkpoint_backwards(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The faster repair commits while the slower one has read the source to its older end
    and is about to compare and rebuild."""
    url = url_for(backend, tmp_path, request, "analysis")
    path = tmp_path / "r.jsonl"
    written: list[Any] = lines(0, 100)
    write_lines(path, written)
    committed: list[tuple[int, str | None]] = []

    class Overtaken(JsonlSource):
        """Its first read ends at 100 receipts; then a faster repair commits 159."""

        def close(self) -> None:
            super().close()
            if not committed:
                write_lines(path, later_changes())
                written.extend(later_changes())
                with Store(url) as other:
                    reconcile(other, JsonlSource(path), today=TODAY, repair=True)
                committed.append(state(url, path))

    with Store(url) as store:
        report = reconcile(store, Overtaken(path), today=TODAY, repair=True)
    assert report.repaired and committed[0][0] == 159
    assert state(url, path) == committed[0]
    check_exact(url, written)


@pytest.mark.mariadb
def test_a_repair_the_database_deadlocks_is_run_again_whole(mysql_url: str, tmp_path: Path) -> None:
    """InnoDB may pick the repair as a deadlock's victim beside a running sync (1213). The
    rebuild is one transaction over a snapshot on disk: it runs again whole, and the tables
    end exact (it ended in a traceback, exit 1)."""
    import pymysql
    from sqlalchemy.exc import OperationalError

    path = tmp_path / "r.jsonl"
    written: list[Any] = lines(0, 100)
    write_lines(path, written)
    with Store(mysql_url) as store:
        reconcile(store, JsonlSource(path), today=TODAY, repair=True)
    write_lines(path, later_changes())  # the catch-up of the next repair applies these
    written.extend(later_changes())
    victims: list[str] = []

    def deadlock_once(stage: str) -> None:
        if not victims:
            victims.append(stage)
            deadlock = pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")
            raise OperationalError("SELECT … FOR UPDATE", {}, deadlock)

    with Store(mysql_url, fault=deadlock_once) as store:
        report = reconcile(store, JsonlSource(path), today=TODAY, repair=True)
    assert victims and report.repaired
    check_exact(mysql_url, written)
