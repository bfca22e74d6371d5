"""The receipt generator: valid, exact, reproducible receipts with realistic rhythms, and the
change events and invalid receipts it mixes in on request."""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import json
import re
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from coffeeshop.core.receipts import InvalidReceipt, parse_receipt, receipt_key
from coffeeshop.demo import writer as writer_module
from coffeeshop.demo.catalog import MENU, format_money
from coffeeshop.demo.changes import INVALID_KINDS
from coffeeshop.demo.generator import ReceiptGenerator
from coffeeshop.demo.writer import write_jsonl

START = dt.date(2026, 3, 2)  # a Monday
OID_RE = re.compile(r"[0-9a-f]{24}")
MONEY_RE = re.compile(r"-?\d+\.\d{1,2}")
NUMBER_FIELD_RE = re.compile(r'"(total_price|product_price)":([^,}\]]*)')


def make(**options: Any) -> ReceiptGenerator:
    options.setdefault("start", START)
    options.setdefault("days", 28)
    return ReceiptGenerator(**options)


def load(line: str) -> Any:
    return json.loads(line, parse_float=Decimal)


def independent_cents(doc: dict[str, Any]) -> int:
    """Sum of quantity * price in cents, straight from the decoded line."""
    total = sum(
        (
            Decimal(item["product_quantity"]) * Decimal(item["product_price"])
            for item in doc["items"]
        ),
        Decimal(0),
    )

    cents = total * 100
    assert cents == cents.to_integral_value()
    return int(cents)


def split(lines: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Lines by kind: inserts (valid new receipts), invalid, replace, delete."""
    kinds: dict[str, list[dict[str, Any]]] = {
        "insert": [],
        "invalid": [],
        "replace": [],
        "delete": [],
    }
    for line in lines:
        obj = load(line)
        if "operationType" in obj:
            kinds[obj["operationType"]].append(obj)
            continue
        try:
            parse_receipt(obj)
        except InvalidReceipt:
            kinds["invalid"].append(obj)
        else:
            kinds["insert"].append(obj)
    return kinds


# -- valid, exact receipts -----------------------------------------------------------------------


def test_every_insert_parses_and_its_total_is_the_exact_sum_of_its_lines() -> None:
    gen = make(seed=11, stores=7)
    lines = list(gen.iter_lines(3000))
    assert len(lines) == 3000
    end = START + dt.timedelta(days=27)
    for line in lines:
        assert "\n" not in line
        doc = load(line)
        receipt = parse_receipt(doc)
        assert receipt.cents == independent_cents(doc)
        assert list(doc) == [
            "_id",
            "Store_ID",
            "transactionDate",
            "transactionTime",
            "total_price",
            "items",
        ]
        assert OID_RE.fullmatch(doc["_id"]["$oid"])
        assert 1 <= doc["Store_ID"] <= 7
        assert START <= dt.date.fromisoformat(doc["transactionDate"]) <= end
        assert re.fullmatch(r"\d\d:\d\d:\d\d", doc["transactionTime"])
        assert 1 <= len(doc["items"]) <= 6
        for item in doc["items"]:
            assert list(item) == ["product_name", "product_quantity", "product_price"]
            assert 1 <= item["product_quantity"] <= 3


def test_prices_are_written_exactly_with_at_most_two_decimals() -> None:
    menu_prices = {product.name: Decimal(product.cents).scaleb(-2) for product in MENU}
    for line in make(seed=5).iter_lines(2000):
        for field, text in NUMBER_FIELD_RE.findall(line):
            assert MONEY_RE.fullmatch(text), (field, text)
        for item in load(line)["items"]:
            assert item["product_price"] == menu_prices[item["product_name"]]


def test_format_money_matches_the_float_a_pos_would_store() -> None:
    for cents in range(0, 300_000):
        assert format_money(cents) == repr(cents / 100)
    assert format_money(-1250) == "-12.5"
    assert format_money(5) == "0.05"


def test_menu_has_about_thirty_products_with_non_ascii_names_written_as_utf8() -> None:
    names = [product.name for product in MENU]
    assert 25 <= len(names) <= 40
    assert len(set(names)) == len(names)
    assert "Café Latte" in names and "Crème Brûlée" in names
    assert all(product.cents > 0 for product in MENU)
    text = "\n".join(make(seed=2).iter_lines(3000))
    assert "Café Latte" in text
    assert "\\u00e9" not in text


def test_ids_are_unique_increasing_and_carry_the_receipt_timestamp() -> None:
    gen = make(seed=9)
    docs = [load(line) for line in gen.iter_lines(5000)]
    oids = [doc["_id"]["$oid"] for doc in docs]
    assert len(set(oids)) == len(oids)
    assert all(a < b for a, b in itertools.pairwise(oids))
    for doc, oid in zip(docs, oids, strict=True):
        when = dt.datetime.fromisoformat(f"{doc['transactionDate']}T{doc['transactionTime']}")
        assert int(oid[:8], 16) == calendar.timegm(when.timetuple())


def test_successive_calls_continue_the_id_counter() -> None:
    gen = make(seed=4)
    first = {load(line)["_id"]["$oid"] for line in gen.iter_lines(500)}
    second = {load(line)["_id"]["$oid"] for line in gen.iter_lines(500)}
    third = {str(doc["_id"]) for doc in gen.iter_documents(500)}
    assert len(first | second | third) == 1500


# -- reproducibility ------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_output() -> None:
    options = {"seed": 42, "update_share": 0.1, "delete_share": 0.05, "invalid_share": 0.05}
    first = "\n".join(make(**options).iter_lines(3000)).encode()
    second = "\n".join(make(**options).iter_lines(3000)).encode()
    assert first == second


def test_different_seeds_differ() -> None:
    first = list(make(seed=1).iter_lines(200))
    second = list(make(seed=2).iter_lines(200))
    assert first != second
    assert not {load(line)["_id"]["$oid"] for line in first} & {
        load(line)["_id"]["$oid"] for line in second
    }


def test_same_seed_files_are_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_jsonl(a, 2000, generator=make(seed=8, invalid_share=0.1), append=False)
    write_jsonl(b, 2000, generator=make(seed=8, invalid_share=0.1), append=False)
    assert a.read_bytes() == b.read_bytes()


def test_inserts_do_not_depend_on_the_shares() -> None:
    plain = list(make(seed=6).iter_lines(1000))
    mixed = split(list(make(seed=6, update_share=0.2, invalid_share=0.1).iter_lines(1000)))
    assert mixed["insert"] == [load(line) for line in plain]


# -- native documents -----------------------------------------------------------------------------


def test_iter_documents_gives_native_documents_equal_to_the_lines() -> None:
    docs = list(make(seed=3).iter_documents(1000))
    lines = list(make(seed=3).iter_lines(1000))
    assert len(docs) == 1000
    for doc, line in zip(docs, lines, strict=True):
        assert isinstance(doc["_id"], ObjectId)
        assert isinstance(doc["total_price"], float)
        assert all(isinstance(item["product_price"], float) for item in doc["items"])
        receipt = parse_receipt(doc)
        assert receipt == parse_receipt(load(line))
        assert receipt.key == receipt_key(doc["_id"])
        assert doc["_id"].generation_time.replace(tzinfo=None) == dt.datetime.fromisoformat(
            f"{doc['transactionDate']}T{doc['transactionTime']}"
        )


def test_iter_documents_ignores_the_shares() -> None:
    gen = make(seed=3, update_share=0.3, delete_share=0.2, invalid_share=0.2)
    docs = list(gen.iter_documents(500))
    assert len(docs) == 500
    for doc in docs:
        parse_receipt(doc)


# -- updates, deletes, invalid receipts ----------------------------------------------------------


def test_shares_give_the_requested_proportions_and_consistent_targets() -> None:
    shares = {"update_share": 0.1, "delete_share": 0.06, "invalid_share": 0.04}
    lines = list(make(seed=21, **shares).iter_lines(10_000))
    total = len(lines)
    kinds = split(lines)
    assert len(kinds["insert"]) == 10_000
    assert len(kinds["replace"]) / total == pytest.approx(0.1, abs=0.012)
    assert len(kinds["delete"]) / total == pytest.approx(0.06, abs=0.01)
    assert len(kinds["invalid"]) / total == pytest.approx(0.04, abs=0.008)

    alive: dict[str, Any] = {}
    deleted: set[str] = set()
    for line in lines:
        obj = load(line)
        if obj.get("operationType") == "delete":
            oid = obj["documentKey"]["_id"]["$oid"]
            assert oid in alive, "delete of an unknown or already deleted receipt"
            del alive[oid]
            deleted.add(oid)
        elif obj.get("operationType") == "replace":
            oid = obj["documentKey"]["_id"]["$oid"]
            assert oid in alive, "update of an unknown or deleted receipt"
            new = obj["fullDocument"]
            assert new["_id"] == {"$oid": oid}
            receipt = parse_receipt(new)
            assert receipt.cents == independent_cents(new)
            old = alive[oid]
            assert new["items"] != old["items"]
            for field in ("Store_ID", "transactionDate", "transactionTime"):
                assert new[field] == old[field]
            alive[oid] = new
        else:
            oid = obj["_id"]["$oid"]
            assert oid not in alive and oid not in deleted
            try:
                parse_receipt(obj)
            except InvalidReceipt:
                continue
            alive[oid] = obj


def test_invalid_receipts_are_rejected_and_cycle_through_the_kinds() -> None:
    lines = list(make(seed=13, invalid_share=0.3).iter_lines(400))
    invalid = split(lines)["invalid"]
    assert len(invalid) >= 2 * len(INVALID_KINDS)
    fields: Counter[str] = Counter()
    for doc in invalid:
        with pytest.raises(InvalidReceipt) as caught:
            parse_receipt(doc)
        fields[re.sub(r"\[\d+\]", "[]", caught.value.field)] += 1
    assert set(fields) == {
        "total_price",
        "Store_ID",
        "transactionDate",
        "transactionTime",
        "items[].product_name",
        "items[].product_quantity",
        "items",
    }
    # Kinds come in turn (two of them break Store_ID).
    others = [n for field, n in fields.items() if field != "Store_ID"]
    assert max(others) - min(others) <= 1


def test_invalid_receipts_have_ids_of_their_own() -> None:
    kinds = split(list(make(seed=14, invalid_share=0.2).iter_lines(2000)))
    valid = {doc["_id"]["$oid"] for doc in kinds["insert"]}
    broken = [doc["_id"]["$oid"] for doc in kinds["invalid"]]
    assert len(set(broken)) == len(broken)
    assert not valid & set(broken)


@pytest.mark.parametrize(
    "options",
    [
        {"update_share": -0.1},
        {"delete_share": 1.5},
        {"update_share": 0.5, "delete_share": 0.3, "invalid_share": 0.2},
        {"stores": 0},
        {"days": 0},
        {"start": dt.date(1969, 12, 31)},
    ],
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make(**options)


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        list(make().iter_lines(-1))
    assert list(make().iter_lines(0)) == []


# -- rhythms --------------------------------------------------------------------------------------


def test_daily_rhythm_has_a_morning_rush_a_lunch_bump_and_quiet_nights() -> None:
    docs = list(make(seed=17, days=56).iter_documents(40_000))
    hours = Counter(int(doc["transactionTime"][:2]) for doc in docs)
    assert hours[8] > 10 * hours[3]
    assert hours[8] > hours[10] and hours[7] > hours[5]
    assert hours[12] > hours[11] and hours[12] > hours[15]
    assert sum(hours[h] for h in range(4)) < 0.02 * len(docs)  # 00:00-04:00: the airports only


def test_weekends_are_busier_and_start_later() -> None:
    docs = list(make(seed=18, days=56).iter_documents(40_000))
    weekday: Counter[int] = Counter()
    weekend: Counter[int] = Counter()
    per_day: Counter[str] = Counter()
    for doc in docs:
        day = dt.date.fromisoformat(doc["transactionDate"])
        (weekend if day.weekday() >= 5 else weekday)[int(doc["transactionTime"][:2])] += 1
        per_day[doc["transactionDate"]] += 1
    # Per day: 40 weekdays, 16 weekend days.
    assert weekend[10] / 16 > 1.5 * weekday[10] / 40
    assert weekend[7] / 16 < weekday[7] / 40
    saturdays = [n for day, n in per_day.items() if dt.date.fromisoformat(day).weekday() == 5]
    mondays = [n for day, n in per_day.items() if dt.date.fromisoformat(day).weekday() == 0]
    assert sum(saturdays) > 1.1 * sum(mondays)
    assert len(per_day) == 56


def test_timestamps_advance_through_the_range_and_stores_differ_in_size() -> None:
    docs = list(make(seed=19, stores=10, days=90).iter_documents(20_000))
    stamps = [(doc["transactionDate"], doc["transactionTime"]) for doc in docs]
    assert stamps == sorted(stamps)
    assert stamps[0][0] == START.isoformat()
    assert stamps[-1][0] == (START + dt.timedelta(days=89)).isoformat()
    per_store = Counter(doc["Store_ID"] for doc in docs)
    assert set(per_store) == set(range(1, 11))
    assert max(per_store.values()) > 1.5 * min(per_store.values())


def test_quantities_are_mostly_one_and_line_counts_vary() -> None:
    docs = list(make(seed=20).iter_documents(5000))
    quantities = Counter(item["product_quantity"] for doc in docs for item in doc["items"])
    assert quantities[1] > 0.75 * sum(quantities.values())
    assert quantities[2] > 0 and quantities[3] > 0
    assert set(Counter(len(doc["items"]) for doc in docs)) == {1, 2, 3, 4, 5, 6}


def test_default_range_ends_today() -> None:
    gen = ReceiptGenerator(days=10)
    assert gen.end == dt.date.today()
    assert gen.start == dt.date.today() - dt.timedelta(days=9)
    for line in gen.iter_lines(100):
        assert gen.start <= dt.date.fromisoformat(load(line)["transactionDate"]) <= gen.end


def test_live_mode_stamps_receipts_with_the_local_wall_clock() -> None:
    before = time.time()
    lines = list(ReceiptGenerator(seed=1, live=True, update_share=0.1).iter_lines(300))
    after = time.time()
    inserts = split(lines)["insert"]
    assert len(inserts) == 300
    for doc in inserts:
        when = dt.datetime.fromisoformat(f"{doc['transactionDate']}T{doc['transactionTime']}")
        assert int(before) - 1 <= when.timestamp() <= after + 1
        assert int(before) <= int(doc["_id"]["$oid"][:8], 16) <= after + 1
    oids = [doc["_id"]["$oid"] for doc in inserts]
    assert oids == sorted(set(oids))


# -- files ----------------------------------------------------------------------------------------


def read_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data.decode("utf-8").split("\n")[:-1]


def test_write_jsonl_appends_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "receipts.jsonl"
    gen = make(seed=30, delete_share=0.1)
    first = write_jsonl(path, 300, generator=gen)
    second = write_jsonl(path, 200, generator=gen)
    lines = read_lines(path)
    assert len(lines) == first + second
    assert first >= 300 and second >= 200
    oids = [load(x)["_id"]["$oid"] for x in lines if "operationType" not in x]
    assert len(oids) == len(set(oids)) == 500


def test_write_jsonl_can_truncate(tmp_path: Path) -> None:
    path = tmp_path / "receipts.jsonl"
    path.write_text("stale line\n")
    assert write_jsonl(path, 50, generator=make(seed=31), append=False) == 50
    assert len(read_lines(path)) == 50
    assert "stale line" not in path.read_text(encoding="utf-8")


def test_write_jsonl_ends_an_unfinished_last_line_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "receipts.jsonl"
    path.write_bytes(b'{"_id": 1, "Store_ID": ')
    assert write_jsonl(path, 20, generator=make(seed=32)) == 20
    lines = read_lines(path)
    assert lines[0] == '{"_id": 1, "Store_ID": '
    assert all(parse_receipt(load(line)) for line in lines[1:])


def test_write_jsonl_at_a_rate_writes_whole_lines_in_bursts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[bytes] = []
    real_write_all = writer_module._write_all

    def recording(fd: int, data: bytes) -> None:
        writes.append(data)
        real_write_all(fd, data)

    monkeypatch.setattr(writer_module, "_write_all", recording)
    path = tmp_path / "receipts.jsonl"
    started = time.monotonic()
    written = write_jsonl(path, 200, generator=make(seed=33), rate=2000.0)
    elapsed = time.monotonic() - started
    assert written == 200
    assert elapsed < 1.5
    assert elapsed >= 0.04  # 200 lines at 2000/s: the last burst is due at about 0.05 s
    assert len(writes) >= 2
    assert all(data.endswith(b"\n") for data in writes)
    lines = read_lines(path)
    assert len(lines) == 200
    for line in lines:
        parse_receipt(load(line))


class StopAfter(threading.Event):
    """Set by the writer's own `checks`-th look at it: told to stop mid-way at a known point,
    however slow a loaded machine makes each burst (a timer would fire at an unknown one)."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.checks = checks

    def _checked(self) -> None:
        self.checks -= 1
        if self.checks <= 0:
            self.set()

    def is_set(self) -> bool:
        self._checked()
        return super().is_set()

    def wait(self, timeout: float | None = None) -> bool:
        self._checked()
        return super().wait(timeout)


def test_write_jsonl_stops_when_told(tmp_path: Path) -> None:
    path = tmp_path / "receipts.jsonl"
    stop = StopAfter(4)  # 100,000 lines at 1,000 a second would take 100 s
    written = write_jsonl(path, 100_000, generator=make(seed=34), rate=1000.0, stop=stop)
    assert 0 < written < 1000
    assert len(read_lines(path)) == written

    stop.set()
    assert write_jsonl(path, 100, generator=make(seed=35), stop=stop) == 0
    assert len(read_lines(path)) == written
