"""One source per database: no sync, repair or rebuild from another source drops (or mixes
in) receipts; replacing the source takes `--replace-source`, which says what it removes."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from helpers import (
    assert_one_line_error,
    execute_sql,
    receipt,
    reference_tables,
    run_coffeeshop,
    write_lines,
)
from sqlalchemy import text

from coffeeshop.errors import SourceHistoryLost, SourceMismatch
from coffeeshop.pipeline.engine import Syncer
from coffeeshop.pipeline.reconcile import reconcile
from coffeeshop.sources.base import BatchLimits, Source, SourceBatch
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store, schema

TODAY = dt.date(2026, 11, 25)
FIRST = [receipt(i, store=i % 4, total=f"{i}.10", items=[("Latte", 1 + i % 3)]) for i in range(200)]
FIRST += [receipt(999, total=-1)]  # one quarantined
OTHER = [receipt(10_000 + i, store=9, total="2.00", items=[("Tea", 1)]) for i in range(5)]


def sync(url: str, path: Path) -> None:
    with Store(url) as store:
        Syncer(store, JsonlSource(path), today=lambda: TODAY, read_ahead=False).run()


def counts(url: str) -> tuple[int, int, list[str]]:
    with Store(url) as store:
        sources = [c.source for c in store.list_checkpoints()]
        return store.count(schema.receipts), store.count(schema.quarantine), sources


@pytest.fixture
def synced(db_url: str, tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """A database synced from `first.jsonl` (200 receipts, 1 quarantined), and another file."""
    first, other = tmp_path / "first.jsonl", tmp_path / "other.jsonl"
    write_lines(first, FIRST)
    write_lines(other, OTHER)
    sync(db_url, first)
    yield db_url, first, other


def test_a_repair_from_another_source_is_refused_and_deletes_nothing(
    synced: tuple[str, Path, Path],
) -> None:
    url, first, other = synced
    before = counts(url)
    assert before == (200, 1, [f"jsonl:{first}"])
    with Store(url) as store, pytest.raises(SourceMismatch, match="holds the receipts of"):
        reconcile(store, JsonlSource(other), today=TODAY, repair=True)
    assert counts(url) == before
    # the first source's checkpoint still matches its receipts: a repair from it finds nothing
    with Store(url) as store:
        assert reconcile(store, JsonlSource(first), today=TODAY).total_differences == 0


def test_a_sync_of_another_source_is_refused_before_anything_is_written(
    synced: tuple[str, Path, Path],
) -> None:
    url, _first, other = synced
    before = counts(url)
    with pytest.raises(SourceMismatch, match="not syncing"):
        sync(url, other)
    assert counts(url) == before


def test_the_writing_transaction_checks_too(synced: tuple[str, Path, Path]) -> None:
    """A writer that got past the up-front check (two processes starting two sources at the
    same moment) is stopped by the check inside its first batch's transaction."""
    url, _first, other = synced
    before = counts(url)
    source = JsonlSource(other)
    source.open(None)
    batch = next(source.batches(BatchLimits(), follow=False, stop=threading.Event()))
    source.close()
    from coffeeshop.core.plan import parse_events

    with Store(url) as store, pytest.raises(SourceMismatch):
        store.apply_batch(
            source.name,
            parse_events(batch.events),
            position=batch.position,
            expected_version=0,
            today=TODAY,
        )
    with Store(url) as store, pytest.raises(SourceMismatch):
        store.rebuild(source.name, iter([]), iter([]), position=batch.position, today=TODAY)
    assert counts(url) == before


def test_replace_source_removes_the_old_source_and_sync_continues_from_the_new(
    synced: tuple[str, Path, Path],
) -> None:
    url, first, other = synced
    with Store(url) as store:
        report = reconcile(store, JsonlSource(other), today=TODAY, repair=True, replace_source=True)
    assert report.repaired and report.recorded_sources == (f"jsonl:{first}",)
    assert counts(url) == (5, 0, [f"jsonl:{other}"])
    more = [receipt(20_000, store=9, total="1.00", items=[("Tea", 2)])]
    write_lines(other, more)
    sync(url, other)
    with Store(url) as store:
        assert store.read_tables(TODAY) == reference_tables(OTHER + more, TODAY)
    with pytest.raises(SourceMismatch):  # and now the first one is the other source
        sync(url, first)


class LosesHistory:
    """A source whose stream cannot resume from the checkpoint (as MongoDB's error 286):
    the engine then rebuilds from a fresh read of the whole source."""

    def __init__(self, path: Path) -> None:
        self.inner = JsonlSource(path)
        self.resuming = False
        self.lost = False  # once: the rebuild's fresh read and what follows it work

    @property
    def name(self) -> str:
        return self.inner.name

    def open(self, position: str | None) -> None:
        self.resuming = position is not None
        self.inner.open(None)

    def batches(
        self, limits: BatchLimits, *, follow: bool, stop: threading.Event
    ) -> Iterator[SourceBatch]:
        if self.resuming and not self.lost:
            self.lost = True
            raise SourceHistoryLost("the change stream cannot resume from the checkpoint")
        yield from self.inner.batches(limits, follow=follow, stop=stop)

    def close(self) -> None:
        self.inner.close()


def test_the_engines_rebuild_never_drops_another_recorded_sources_receipts(
    synced: tuple[str, Path, Path],
) -> None:
    """A database from before the rule holds two sources' checkpoints: a lost history of
    one of them must not rebuild the state from that one alone."""
    url, first, other = synced
    with Store(url) as store:
        execute_sql(
            store,
            "INSERT INTO cs_checkpoint (source, position, version, applied, quarantined, "
            f"batches, committed_at) SELECT 'jsonl:{other}', position, 1, 5, 0, 1, committed_at "
            "FROM cs_checkpoint",
        )
    before = counts(url)
    with Store(url) as store, pytest.raises(SourceMismatch, match="would delete them"):
        Syncer(
            store, cast(Source, LosesHistory(first)), today=lambda: TODAY, read_ahead=False
        ).run()
    assert counts(url) == before
    # its own source alone, the rebuild goes ahead
    with Store(url) as store:
        with store.writer.begin() as conn:
            conn.execute(text(f"DELETE FROM cs_checkpoint WHERE source = 'jsonl:{other}'"))
        report = Syncer(
            store, cast(Source, LosesHistory(first)), today=lambda: TODAY, read_ahead=False
        ).run()
    assert report.rebuilds == 1
    assert counts(url)[:2] == (200, 1)


# -- the command, as a user runs it --------------------------------------------------------------


run = run_coffeeshop


def test_the_commands_refuse_another_source_and_replace_it_only_on_request(
    synced: tuple[str, Path, Path], tmp_path: Path
) -> None:
    url, first, other = synced
    before = counts(url)
    repair = run("reconcile", "--repair", "--source", str(other), "--db", url, cwd=tmp_path)
    assert_one_line_error(repair, "a repair from this source would delete them")
    assert f"jsonl:{first}" in repair.stderr
    synced_other = run("sync", "--source", str(other), "--db", url, cwd=tmp_path)
    assert_one_line_error(synced_other, "one source per database")
    alone = run("reconcile", "--replace-source", "--source", str(other), "--db", url, cwd=tmp_path)
    assert_one_line_error(alone, "it needs --repair")
    assert counts(url) == before
    # a plain reconcile only compares (and says the database came from elsewhere)
    compared = run("reconcile", "--source", str(other), "--db", url, cwd=tmp_path)
    assert compared.returncode == 1 and f"synced from jsonl:{first}" in compared.stderr
    assert counts(url) == before

    replaced = run(
        "reconcile", "--repair", "--replace-source", "--source", str(other), "--db", url,
        cwd=tmp_path,
    )  # fmt: skip
    assert replaced.returncode == 0, replaced.stderr
    lines = replaced.stderr.splitlines()
    announced = [n for n, line in enumerate(lines) if line.startswith("--replace-source:")]
    assert len(announced) == 1, replaced.stderr
    assert (
        f"the 200 receipt(s) and 1 quarantine entry of jsonl:{first}, then rebuilding from "
        f"jsonl:{other}" in lines[announced[0]]
    )
    removed = [n for n, line in enumerate(lines) if "removed the receipts" in line]
    assert removed and announced[0] < removed[0]  # said before it was done
    assert counts(url) == (5, 0, [f"jsonl:{other}"])
