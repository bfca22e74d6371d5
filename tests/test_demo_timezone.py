"""The demo's receipts are stamped in the configured zone and never in the future (issue 21.3
and 21.5): with `COFFEESHOP_TIMEZONE=Asia/Tokyo` every KPI card read ▼ −99.9 % (the generator
stamped the machine's local time while the API's "today" is Tokyo's), and `generate` spread
`--count` over the whole of today, so `/receipts_summary` counted sales that
`/sales_comparison` (up to now) did not."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_api_support import exact, running

from coffeeshop.demo.generator import ReceiptGenerator
from coffeeshop.pipeline.engine import Syncer
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store

TOKYO = ZoneInfo("Asia/Tokyo")


def generate(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "coffeeshop", "generate", *args],
        cwd=cwd,
        env={**os.environ, "COFFEESHOP_TIMEZONE": "Asia/Tokyo"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


def stamps(path: Path) -> list[dt.datetime]:
    return [
        dt.datetime.fromisoformat(f"{doc['transactionDate']}T{doc['transactionTime']}")
        for doc in map(json.loads, path.read_text(encoding="utf-8").splitlines())
    ]


def test_a_history_ending_today_ends_now() -> None:
    for zone in (None, TOKYO, ZoneInfo("America/Los_Angeles")):
        generator = ReceiptGenerator(seed=3, stores=12, days=2, zone=zone)
        when = [
            dt.datetime.fromisoformat(f"{doc['transactionDate']}T{doc['transactionTime']}")
            for doc in generator.iter_documents(20_000)
        ]
        now = dt.datetime.now(zone).replace(tzinfo=None)
        assert max(when) <= now, (zone, max(when), now)
        assert min(when).date() == now.date() - dt.timedelta(days=1)


@pytest.mark.anyio
async def test_generate_in_tokyo_time_gives_today_receipts_the_api_compares_sanely(
    tmp_path: Path,
) -> None:
    source = tmp_path / "receipts.jsonl"
    generate(
        "--count", "40000", "--days", "15", "--stores", "12", "--out", str(source), cwd=tmp_path
    )
    history = stamps(source)
    assert max(history) <= dt.datetime.now(TOKYO).replace(tzinfo=None)  # nothing from the future
    # A few live receipts (stamped now, in Tokyo), as the demo appends them.
    generate("--count", "20", "--rate", "1000", "--out", str(source), "--append", cwd=tmp_path)
    now = dt.datetime.now(TOKYO).replace(tzinfo=None)
    every = stamps(source)
    assert all(when <= now for when in every)
    today = [when for when in every if when.date() == now.date()]
    assert len(today) >= 20

    url = f"sqlite:///{tmp_path / 'analysis.db'}"
    with Store(url) as store:
        Syncer(store, JsonlSource(source), read_ahead=False).run()
    async with running(url, timezone="Asia/Tokyo") as client:
        response = await client.get("/sales_comparison")
        assert response.status_code == 200
        rows = {row["period"]: row for row in exact(response)}
    assert rows["today"]["last_day"] == now.date().isoformat()
    at = rows["today"]["until_hour"]
    assert rows["today"]["receipts"] == sum(1 for w in today if w.hour <= at) >= 20
    last_week = rows["same_day_last_week"]["sales"]
    change = rows["today"]["sales"] / last_week - 1 if last_week else Decimal(1)
    assert change > Decimal("-0.9"), rows  # not the ▼ −99.9 % of the machine's zone
