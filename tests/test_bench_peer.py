"""The peer benchmark's own parts (`bench/bench_peer.py`, `bench/peer_tables.py`,
`bench/peer_pathway.py`) on a tiny feed. Pathway is never installed or imported here: the
benchmark installs it in a virtualenv of its own when it runs; these tests hold the feed, the
yardstick and the pipeline's parser to what they claim."""

from __future__ import annotations

import datetime as dt
import importlib
import sqlite3
import sys
from pathlib import Path

import pytest

from coffeeshop.core.events import Delete
from coffeeshop.core.plan import Parsed, parse_events, week_bounds
from coffeeshop.sources.jsonl import decode_line

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
bench_peer = importlib.import_module("bench_peer")
peer_tables = importlib.import_module("peer_tables")
peer_pathway = importlib.import_module("peer_pathway")

TODAY = dt.datetime.now(dt.UTC).date()  # the feed's year ends today, as the benchmark's does


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("peer") / "feed.jsonl"
    bench_peer.generate_feed(path, 3000, seed=5, today=TODAY)
    return path


def utc_today() -> dt.date:
    """The day `coffeeshop sync` writes its summary row for (the benchmark runs it in UTC)."""
    return dt.datetime.now(dt.UTC).date()


def _kinds(path: Path) -> dict[str, int]:
    kinds = {"insert": 0, "replace": 0, "delete": 0, "invalid": 0}
    for n, line in enumerate(path.read_bytes().splitlines(), 1):
        decoded = decode_line(line, where=f"line {n}")
        assert decoded is not None, f"line {n} is blank"
        for event in parse_events([decoded]):
            if isinstance(event, Delete):
                kinds["delete"] += 1
            elif isinstance(event, Parsed) and event.receipt is None:
                kinds["invalid"] += 1
            else:
                kinds["replace" if b'"operationType"' in line else "insert"] += 1
    return kinds


def test_the_feed_mixes_replacements_deletes_and_invalid_receipts_in_the_year_to_today(
    feed: Path,
) -> None:
    kinds = _kinds(feed)
    assert kinds["insert"] == 3000
    lines = sum(kinds.values())
    # Shares of all lines: 5 % replace, 2 % delete, 1 % invalid (drawn: generous bounds).
    assert 0.03 < kinds["replace"] / lines < 0.07
    assert 0.01 < kinds["delete"] / lines < 0.03
    assert 0.003 < kinds["invalid"] / lines < 0.02
    days = {r.day for r in peer_tables.current_receipts(feed).values()}
    assert min(days) >= TODAY - dt.timedelta(days=364)
    assert TODAY - dt.timedelta(days=2) <= max(days) <= TODAY  # up to now (UTC), not beyond


def test_the_feed_is_written_once_and_reused(feed: Path) -> None:
    before = feed.read_bytes()
    bench_peer.generate_feed(feed, 10, seed=99, today=TODAY)  # other arguments: still reused
    assert feed.read_bytes() == before
    assert not feed.with_suffix(".partial").exists()


def test_the_pathway_pipelines_parser_reads_every_line_as_ours_does(feed: Path) -> None:
    """What the Pathway pipeline keeps of each line (key, validity, store, day, hour, cents,
    units) is what our reader and parser make of it: the two engines compute over the same
    receipts."""
    checked = {"valid": 0, "gone": 0}
    for n, line in enumerate(feed.read_bytes().splitlines(), 1):
        decoded = decode_line(line, where=f"line {n}")
        assert decoded is not None, f"line {n} is blank"
        (ours,) = parse_events([decoded])

        peer = peer_pathway.parse_line(line.decode())
        assert peer is not None and isinstance(ours, Parsed | Delete)
        key, row = peer
        assert key == ours.key, line
        receipt = ours.receipt if isinstance(ours, Parsed) else None
        if receipt is None:
            assert row is None, line
            checked["gone"] += 1
            continue
        assert row is not None, line
        ours_row = (receipt.store_id, receipt.day.isoformat(), receipt.hour, receipt.cents)
        assert (row["store_id"], row["day"], row["hour"], row["cents"]) == ours_row
        assert row["month"] == receipt.month and row["units"] == receipt.units
        merged: dict[str, int] = {}  # ours adds up repeated names; the pipeline sums later
        for name, quantity in row["items"]:
            merged[name] = merged.get(name, 0) + quantity
        assert merged == dict(receipt.items), line
        checked["valid"] += 1
    assert checked["valid"] > 3000 and checked["gone"] > 50


def test_the_pathway_pipelines_weeks_are_ours() -> None:
    for offset in range(14):
        day = TODAY + dt.timedelta(days=offset)
        assert peer_pathway.week_bounds(day) == tuple(d.isoformat() for d in week_bounds(day))


def test_a_sync_of_the_feed_is_exact_and_a_cent_off_is_named(
    feed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync writes today's summary row (its clock's, not the feed's last day): the
    yardstick computes its own for the same day, and runs again if midnight passed meanwhile."""
    monkeypatch.setattr(bench_peer, "DATA", tmp_path)
    servers = bench_peer.Servers(mysql="", postgres="")
    for _ in range(2):
        today = utc_today()
        expected = peer_tables.expected_public(peer_tables.reference_tables(feed, today), today)
        run = bench_peer.run_ours(feed, "sqlite", servers, expected, today)
        if utc_today() == today:
            break
    assert expected["receipts_summary"][today.isoformat()][3] > 0  # last week's sales
    assert run.problems == [] and run.measure.cpu > 0 and run.measure.wall > 0

    with bench_peer.fresh_database("sqlite", servers) as url:
        bench_peer.measured(
            [str(bench_peer.COFFEESHOP), "sync", "--once", "--source", str(feed), "--db", url]
        )
        (month, store), sales = next(iter(expected["store_monthly"].items()))
        item, sold = next(iter(expected["item_performance"].items()))
        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            conn.execute(
                "UPDATE store_monthly SET sales = ? WHERE month = ? AND store_id = ?",
                (str(sales + peer_tables.Decimal("0.01")), month, store),
            )
            conn.execute("DELETE FROM item_performance WHERE item_name = ?", (item,))
        actual = peer_tables.read_public(url, today=today, cents=False)
    problems = peer_tables.differences(expected, actual)
    off = sales + peer_tables.Decimal("0.01")
    assert problems == [
        f"store_monthly[{(month, store)}]: expected {sales}, got {off}",
        f"item_performance[{item}]: expected {sold}, got None",
    ]


def test_tables_in_integer_cents_read_back_as_the_decimals_they_stand_for(tmp_path: Path) -> None:
    """How Pathway's sinks hold the pipeline's money: integer cents, scaled back to the cent."""
    path = tmp_path / "cents.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE receipts_summary (as_of TEXT, spend_per_rcpt INTEGER, "
            "items_per_rcpt INTEGER, this_week_sales INTEGER, last_week_sales INTEGER)"
        )
        conn.execute(
            "INSERT INTO receipts_summary VALUES (?, 1234, 250, 100005, 0)", ("2026-12-09",)
        )
        conn.execute("INSERT INTO receipts_summary VALUES ('2026-12-08', 1, 1, 1, 1)")
        conn.execute("CREATE TABLE store_monthly (month TEXT, store_id INTEGER, sales INTEGER)")
        conn.execute("INSERT INTO store_monthly VALUES ('2026-12', 7, 1999)")
        conn.execute("CREATE TABLE item_performance (item_name TEXT, total_sold INTEGER)")
        conn.execute("INSERT INTO item_performance VALUES ('Mocha', 12)")
        conn.execute(
            "CREATE TABLE store_peak_hours (store_id INTEGER, peak_hour INTEGER, tx_count INTEGER)"
        )
        conn.execute("INSERT INTO store_peak_hours VALUES (7, 8, 40)")
    D = peer_tables.Decimal
    assert peer_tables.read_public(f"sqlite:///{path}", today=dt.date(2026, 12, 9), cents=True) == {
        "receipts_summary": {"2026-12-09": (D("12.34"), D("2.50"), D("1000.05"), D("0.00"))},
        "store_monthly": {("2026-12", 7): D("19.99")},
        "item_performance": {"Mocha": 12},
        "store_peak_hours": {7: (8, 40)},
    }


def test_a_failing_run_says_so_with_its_error(tmp_path: Path) -> None:
    script = "import sys; sys.exit('the sink refused: ' + 'x' * 3)"
    with pytest.raises(SystemExit, match="the sink refused: xxx"):
        bench_peer.measured([sys.executable, "-c", script])


def test_the_tables_markdown_gives_ranges_per_engine_and_exactness() -> None:
    def run(engine: str, target: str, cpu: float, problems: list[str]) -> object:
        return bench_peer.Run(engine, target, bench_peer.Measure(cpu, cpu * 2, 100.0), problems)

    runs = [
        run("coffeeshop", "sqlite", 10.0, []),
        run("coffeeshop", "sqlite", 12.5, []),
        run("Pathway", "sqlite", 15.0, ["store_monthly[x]: expected 1, got 2"]),
    ]
    lines = bench_peer.table(runs, ["sqlite"]).splitlines()
    assert lines[2] == (
        "| sqlite (Pathway: sqlite sink) | 10.0–12.5 | 15.0 | 20.0–25.0 | 30.0 | 100 | 100 "
        "| yes / NO |"
    )
    assert lines[0].count("|") == 9
