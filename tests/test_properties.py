"""Property: any sequence of inserts, replaces, updates, deletes, duplicates and invalid
input, cut into random batches, with crashes between and inside batches, leaves the
tables equal to a from-scratch recomputation — on SQLite and on MariaDB."""

from __future__ import annotations

import datetime as dt
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import receipt, reference_tables, write_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffeeshop.pipeline.engine import Syncer
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store, schema

TODAY = dt.date(2026, 11, 25)
EXAMPLES = {"sqlite": 60, "mariadb": 25}
SCALE = int(os.environ.get("COFFEESHOP_PROPERTY_SCALE", "1"))  # more examples on demand
STAGES = ["begin", "receipts", "aggregates", "quarantine", "checkpoint"]

ids = st.sampled_from(
    [1, 2, 3, 3.0, "3", "a", {"$oid": "6650c7e2a1b2c3d4e5f60718"}, {"$numberLong": "2"}]
)
names = st.sampled_from(["Latte", "latte", "Latté", "☕ Mocha", "  Tea  ", "Tea"])
totals = st.one_of(
    st.decimals(min_value=0, max_value=100, places=3).map(str),
    st.integers(min_value=0, max_value=50),
    st.sampled_from([-1, "NaN", "1e400", "12,5", None]),  # invalid ones
)


@st.composite
def documents(draw: st.DrawFn, rid: Any = None) -> dict[str, Any]:
    return receipt(
        draw(ids) if rid is None else rid,
        store=draw(st.sampled_from([0, 1, 2, 2.0, "1", -1])),
        date=draw(
            st.sampled_from(
                ["2026-11-16", "2026-11-22", "2026-11-23", "2026-11-29", "2026-12-01", "2023-02-29"]
            )
        ),
        time=draw(st.sampled_from(["00:00", "08:15:42", "08:59", "23:59:59", "24:00"])),
        total=draw(totals),
        items=draw(st.lists(st.tuples(names, st.integers(min_value=0, max_value=3)), max_size=3)),
    )


@st.composite
def lines(draw: st.DrawFn) -> list[Any]:
    out: list[Any] = []
    for _ in range(draw(st.integers(min_value=1, max_value=30))):
        kind = draw(
            st.sampled_from(["doc", "doc", "doc", "change", "delete", "gone", "dup", "junk"])
        )
        if kind == "doc":
            out.append(draw(documents()))
        elif kind == "change":
            doc = draw(documents())
            op = draw(st.sampled_from(["insert", "replace", "update"]))
            out.append(
                {"operationType": op, "documentKey": {"_id": doc["_id"]}, "fullDocument": doc}
            )
        elif kind == "delete":
            out.append({"operationType": "delete", "documentKey": {"_id": draw(ids)}})
        elif kind == "gone":
            out.append(
                {"operationType": "update", "documentKey": {"_id": draw(ids)}, "fullDocument": None}
            )
        elif kind == "dup" and out:
            out.append(out[draw(st.integers(min_value=0, max_value=len(out) - 1))])
        else:
            out.append(
                draw(st.sampled_from(["not json", "[]", "{}", '{"_id": {"$oid": "zz"}}', ""]))
            )
    return out


class Crash(Exception):
    pass


def run_until_done(url: str, path: Path, draw: Callable[..., Any]) -> int:
    """Sync with random batch sizes, killing the run at random points, until it completes."""
    crashes = 0
    while True:
        max_events = draw(st.integers(min_value=1, max_value=7))
        crash_at = draw(st.sampled_from([*STAGES, "between", None]))
        nth = draw(st.integers(min_value=1, max_value=3))
        calls = {"n": 0}
        stop = threading.Event()

        def fault(
            stage: str, crash_at: Any = crash_at, nth: int = nth, calls: dict[str, int] = calls
        ) -> None:
            if stage == crash_at:
                calls["n"] += 1
                if calls["n"] == nth:
                    raise Crash(stage)

        def on_batch(
            report: Any, crash_at: Any = crash_at, nth: int = nth, stop: threading.Event = stop
        ) -> None:
            if crash_at == "between" and report.batches == nth:
                stop.set()  # the process ends cleanly between two batches

        with Store(url, fault=fault if crashes < 6 else None) as store:
            syncer = Syncer(
                store,
                JsonlSource(path),
                limits=BatchLimits(max_events=max_events),
                today=lambda: TODAY,
                on_batch=on_batch if crashes < 6 else None,
            )
            try:
                syncer.run(stop=stop)
            except Crash:
                crashes += 1
                continue
        if stop.is_set() and crashes < 6:
            crashes += 1
            continue
        return crashes


def check_property(url: str, tmp_path: Path, data: st.DataObject) -> None:
    everything = data.draw(lines())
    path = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    path.touch()
    cut = data.draw(st.integers(min_value=0, max_value=len(everything)))
    # The file grows while syncs happen: a first part, a sync with crashes, then the rest.
    for part in (everything[:cut], everything[cut:]):
        write_lines(path, part)
        run_until_done(url, path, data.draw)
    with Store(url) as store:
        got = store.read_tables(TODAY)
        expected = reference_tables(everything, TODAY)
        assert got == expected
        # the engine's own state agrees too: one stored row per current valid receipt
        assert store.count(schema.receipts) == len({r.key for r in _valid(everything)})


def _valid(everything: list[Any]) -> list[Any]:
    from helpers import current_receipts

    return current_receipts(everything)


def reset_mysql(url: str) -> None:
    with Store(url) as store:
        schema.metadata.drop_all(store.engine)


@settings(
    max_examples=EXAMPLES["sqlite"] * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_history_with_crashes_matches_a_recomputation_on_sqlite(
    tmp_path: Path, data: st.DataObject
) -> None:
    url = f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"
    check_property(url, tmp_path, data)


@pytest.mark.mariadb
@settings(
    max_examples=EXAMPLES["mariadb"] * SCALE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_history_with_crashes_matches_a_recomputation_on_mariadb(
    mysql_url: str, tmp_path: Path, data: st.DataObject
) -> None:
    reset_mysql(mysql_url)
    check_property(mysql_url, tmp_path, data)
