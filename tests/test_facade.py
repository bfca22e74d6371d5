"""The library facade: `coffeeshop.sync(...)`, `coffeeshop.reconcile(...)`,
`coffeeshop.open_store(...)`, loaded lazily; and the one Syncer assembly the commands share."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import execute_sql, receipt, reference_tables

import coffeeshop
from coffeeshop.config import load_settings
from coffeeshop.errors import ConfigError
from coffeeshop.store import Store

LINES: list[Any] = [
    receipt("a", store=1, total=12.5, items=[("Latte", 2)]),
    receipt("b", store=2, date="2026-10-03", time="17:01:00", total="3.10", items=[("Tea", 1)]),
    receipt("c", store=2, time="09:30:00", total="7.25", items=[("Latte", 1), ("Scone", 3)]),
    '{"_id": "bad", "Store_ID": "x"}',
    {"operationType": "delete", "documentKey": {"_id": "a"}},
]


def test_sync_then_reconcile_agree_with_a_recomputation(
    db_url: str, jsonl: Callable[[list[Any]], Path]
) -> None:
    source = str(jsonl(LINES))
    report = coffeeshop.sync(source=source, db=db_url, batch_size=2)
    assert (report.applied, report.quarantined) == (4, 1)
    assert report.batches >= 3  # the batch size given reached the engine

    checked = coffeeshop.reconcile(source=source, db=db_url)
    assert (checked.total_differences, checked.receipts, checked.quarantined) == (0, 2, 1)
    today = dt.date.today()
    with coffeeshop.open_store(db_url, read_only=True) as store:
        tables = store.read_tables()
    expected = reference_tables(LINES, today)
    assert tables.store_monthly == expected.store_monthly
    assert tables.item_performance == expected.item_performance
    assert tables.store_peak_hours == expected.store_peak_hours

    with Store(db_url) as store:
        execute_sql(store, "UPDATE item_performance SET total_sold = 0")
    assert coffeeshop.reconcile(source=source, db=db_url).total_differences > 0
    assert coffeeshop.reconcile(source=source, db=db_url, repair=True).repaired
    assert coffeeshop.reconcile(source=source, db=db_url).total_differences == 0


def test_a_bad_option_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batch"):
        coffeeshop.sync(source="x.jsonl", db=f"sqlite:///{tmp_path / 'a.db'}", batch_size=0)
    with pytest.raises(ConfigError, match="does not exist"):
        coffeeshop.sync(source=str(tmp_path / "missing.jsonl"), db=f"sqlite:///{tmp_path}/a.db")


def test_only_the_facade_is_exported() -> None:
    assert sorted(coffeeshop.__all__) == ["build_syncer", "open_store", "reconcile", "sync"]
    with pytest.raises(AttributeError, match="no attribute 'Syncer'"):
        coffeeshop.Syncer  # noqa: B018


def test_importing_the_package_loads_nothing_heavy_until_a_function_is_used() -> None:
    script = (
        "import sys, coffeeshop\n"
        "heavy = ('sqlalchemy', 'pydantic', 'pymongo', 'prefect', 'fastapi')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "coffeeshop.sync\n"
        "print('sqlalchemy' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split("\n")[:2] == ["[]", "True"]


def test_the_syncer_takes_every_engine_setting_from_the_settings(tmp_path: Path) -> None:
    settings = load_settings(
        db=f"sqlite:///{tmp_path / 'a.db'}",
        source=str(tmp_path / "r.jsonl"),
        batch_size=7,
        batch_wait=0.5,
        on_history_lost="stop",
    )
    (tmp_path / "r.jsonl").write_text("")
    with Store(settings.db) as store:
        syncer = coffeeshop.build_syncer(store, settings)
    assert (syncer.limits.max_events, syncer.limits.max_wait) == (7, 0.5)
    assert syncer.rebuild_on_history_lost is False
    assert syncer.today == settings.today
    assert syncer.source.name == f"jsonl:{(tmp_path / 'r.jsonl').resolve()}"


def test_sample_uses_the_batch_settings_like_sync(tmp_path: Path) -> None:
    """`coffeeshop sample` used to build its engine with the default batch size, whatever
    COFFEESHOP_BATCH_SIZE said; now every command assembles it the same way."""
    result = subprocess.run(
        [sys.executable, "-m", "coffeeshop", "sample", "--db", f"sqlite:///{tmp_path}/s.db"],
        env={**os.environ, "COFFEESHOP_LOG_LEVEL": "DEBUG", "COFFEESHOP_BATCH_SIZE": "5"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    batches = [line for line in result.stderr.splitlines() if " applied, " in line]
    assert len(batches) >= 4, result.stderr  # 18 sample lines, 5 to a batch
