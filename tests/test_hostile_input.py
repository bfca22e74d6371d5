"""Hostile and odd input through the real pipeline: file bytes -> JsonlSource -> Syncer -> Store.

Each kind of bad or odd line (see `hostile_corpus.CASES`) is written, byte for byte, between
valid receipts; `Syncer(Store(url), JsonlSource(path)).run()` must then finish promptly without
an exception, accept the line per the README's validation rules (counted right) or quarantine it
with a reason naming the field or problem at "line N (byte B)", and leave the valid receipts
around it untouched: the stored receipts and the four tables equal what is stated by hand.

Every kind runs on SQLite; the Unicode-name, money and big-input kinds also on MariaDB. A few
kinds also arrive while `--follow` tails the file, split across writes. Inputs that stall the
reader run in a subprocess with a deadline, so a stall fails the test instead of hanging it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import current_receipts, receipt, reference_tables
from hostile_corpus import BEFORE, CASES, NEIGHBOURS, Case, R, doc, neighbour_lines

from coffeeshop.core.receipts import Receipt
from coffeeshop.core.recompute import recompute
from coffeeshop.pipeline.engine import Syncer, SyncReport
from coffeeshop.sources.base import BatchLimits
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store
from coffeeshop.store.dialects import dialect_named

TODAY = dt.date(2026, 11, 25)
# Seconds one sync of a case may take (creating the schema included) before it counts as a
# stall: a quadratic parse or a reader that never returns. On a quiet machine a case takes a
# fraction of a second (docs/reliability.md); the bound leaves room for a loaded one (a 3 s
# budget failed at load 13), so it says "stalled", not "slow".
BUDGET = 60.0
SLOW_BUDGET = 120.0


# -- writing the file -----------------------------------------------------------------------------


def file_lines(case: Case) -> tuple[list[bytes], int]:
    """Every line of the case's file, and the index of its first hostile line."""
    around = neighbour_lines()
    if case.placement == "first":
        return [*case.lines, *around], 0
    return [*around[:BEFORE], *case.lines, *around[BEFORE:]], BEFORE


def write_file(path: Path, lines: list[bytes], eol: bytes) -> list[tuple[int, int]]:
    """Write the lines in binary; return each line's (line number, byte offset)."""
    where: list[tuple[int, int]] = []
    offset = 0
    with open(path, "wb") as f:
        for number, line in enumerate(lines, start=1):
            where.append((number, offset))
            f.write(line + eol)
            offset += len(line) + len(eol)
    return where


# -- what the store must hold afterwards ----------------------------------------------------------


def expected_receipts(case: Case) -> set[Receipt]:
    """The neighbours (folded independently by `helpers.current_receipts`), minus what the case
    deletes or replaces, plus the hostile receipts the case states by hand."""
    kept = {r for r in current_receipts(NEIGHBOURS) if r.key not in set(case.removes)}
    return kept | set(case.receipts)


def stored_receipts(url: str) -> set[Receipt]:
    with Store(url) as store:
        return set(store.iter_receipts())


def tables(url: str) -> Any:
    with Store(url) as store:
        return store.read_tables(TODAY)


def quarantine(url: str) -> list[dict[str, Any]]:
    with Store(url) as store:
        rows = store.quarantine_rows(limit=100_000)
    return sorted(rows, key=lambda row: int(row["position"].split()[1]))


def sync(url: str, path: Path, **limits: Any) -> tuple[SyncReport, float]:
    started = time.monotonic()
    with Store(url) as store:
        report = Syncer(
            store, JsonlSource(path), limits=BatchLimits(**limits), today=lambda: TODAY
        ).run()
    return report, time.monotonic() - started


def check_outcome(
    url: str,
    case: Case,
    report: SyncReport,
    lines: list[bytes],
    first: int,
    where: list[tuple[int, int]],
) -> None:
    applied, quarantined, skipped = case.expected_counts()
    assert (report.applied, report.quarantined, report.skipped) == (
        len(NEIGHBOURS) + applied,
        quarantined,
        skipped,
    ), f"{case.id}: counts (applied, quarantined, skipped)"

    expected = expected_receipts(case)
    assert stored_receipts(url) == expected, f"{case.id}: stored receipts"
    assert tables(url) == recompute(expected, TODAY), f"{case.id}: tables"
    if not case.receipts and not case.removes:  # the hostile lines count for nothing
        assert tables(url) == reference_tables(NEIGHBOURS, TODAY)

    rows = quarantine(url)
    assert len(rows) == quarantined, [(r["position"], r["reason"]) for r in rows]
    bad = [first + i for i in case.quarantined_lines()]
    assert len(bad) == len(rows)
    patterns = case.reasons or [case.reason or ""] * len(rows)
    for row, index, pattern in zip(rows, bad, patterns, strict=True):
        number, offset = where[index]
        assert row["position"] == f"line {number} (byte {offset})"
        # Compared by length and digest: a failing diff of megabytes helps nobody.
        assert _summary(row["raw"]) == _summary(_raw_kept(lines[index], case.eol)), "raw input"
        reason = row["reason"]
        line = _line_bytes(lines[index], case.eol)
        if _raw_is_cut(lines[index], case.eol):
            note = (
                f" [raw input cut to its first 65,536 characters: the input is {len(line):,} "
                f"bytes, sha256 {hashlib.sha256(line).hexdigest()}]"
            )
            assert reason.endswith(note), reason[-200:]
            reason = reason.removesuffix(note)
        else:
            assert "[raw input cut" not in reason
        assert len(reason) < 2300, "a reason is at most ~2,000 characters and a cut mark"
        assert re.search(pattern, reason), (pattern, reason[:300])
        if case.receipt_id is not None:
            assert row["receipt_id"] == case.receipt_id


def _line_bytes(line: bytes, eol: bytes) -> bytes:
    data = line + eol[:-1]  # the CR of a CRLF is part of the line until decode_line drops it
    return data[:-1] if data.endswith(b"\r") else data


def _raw_text(line: bytes, eol: bytes) -> str:
    return _line_bytes(line, eol).decode("utf-8", "backslashreplace")


# Quarantine keeps the first 65,536 characters of raw text (README, "Input"), with the
# input's full length and SHA-256 in the reason.
RAW_KEPT = 65_536


def _raw_kept(line: bytes, eol: bytes) -> str:
    """The first RAW_KEPT characters of the raw text. A character takes at most 4 bytes, so
    decoding 4 × RAW_KEPT bytes is enough (decoding megabytes of invalid UTF-8 with
    backslashreplace takes seconds)."""
    return _line_bytes(line, eol)[: 4 * RAW_KEPT].decode("utf-8", "backslashreplace")[:RAW_KEPT]


def _raw_is_cut(line: bytes, eol: bytes) -> bool:
    data = _line_bytes(line, eol)
    return len(data) > 4 * RAW_KEPT or len(_raw_text(line, eol)) > RAW_KEPT


def _summary(text: str) -> tuple[int, str, str]:
    data = text.encode("utf-8", "surrogatepass")
    return len(text), hashlib.sha256(data).hexdigest(), text[:60]


# -- every kind, once, on SQLite (and a subset on MariaDB) ----------------------------------------


def _params() -> Iterator[Any]:
    # `db_url` is parametrized by dialect (tests/conftest.py): SQLite's and MariaDB's here.
    for backend, dialect in (("sqlite", "sqlite"), ("mariadb", "mysql")):
        for case in CASES:
            if backend == "mariadb" and not case.mariadb:
                continue
            marks: list[Any] = [pytest.mark.mariadb] if backend == "mariadb" else []
            bug = case.xfail or (case.xfail_mariadb if backend == "mariadb" else None)
            if bug:
                marks.append(pytest.mark.xfail(strict=True, reason=bug))
            param = dialect_named(dialect)
            yield pytest.param(case, param, id=f"{backend}-{case.id}", marks=marks)


@pytest.mark.parametrize(("case", "db_url"), list(_params()), indirect=["db_url"])
def test_hostile_line_between_valid_receipts(case: Case, db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "receipts.jsonl"
    lines, first = file_lines(case)
    where = write_file(path, lines, case.eol)

    report, seconds = sync(db_url, path)
    assert seconds < (SLOW_BUDGET if case.slow else BUDGET), f"{case.id} took {seconds:.2f} s"
    check_outcome(db_url, case, report, lines, first, where)

    # A second run finds nothing new and changes nothing: the checkpoint is past every line.
    again, _ = sync(db_url, path)
    assert again.events == 0
    assert stored_receipts(db_url) == expected_receipts(case)


def test_the_corpus_is_big_and_varied() -> None:
    assert len(CASES) >= 35
    outcomes = {case.outcome for case in CASES}
    assert {"accepted", "quarantined", "skipped", "ignored", "mixed"} <= outcomes
    assert sum(case.mariadb for case in CASES) >= 20


# -- the same kinds arriving while --follow tails the file ---------------------------------------

FOLLOW_IDS = [
    "invalid-utf8-latin1-byte",
    "bom-mid-file",
    "crlf-one-line",
    "nul-byte-inside-string",
    "blank-and-whitespace-lines",
    "nesting-10000-deep-array",
    "total-NaN",
    "total-12.345-half-up",
    "name-4-byte-emoji",
    "id-lone-surrogate-string",
    "delete-by-numberLong-of-int-id",
    "change-operationType-drop",
]
FOLLOW_CASES = [case for case in CASES if case.id in FOLLOW_IDS]


@pytest.mark.parametrize("case", FOLLOW_CASES, ids=[case.id for case in FOLLOW_CASES])
def test_hostile_line_appended_while_following(case: Case, tmp_path: Path) -> None:
    """The neighbours after the hostile line are written in pieces: each line is cut in two,
    and the reader sees the first half (a line without its newline) before the rest."""
    assert len(FOLLOW_CASES) == len(FOLLOW_IDS)
    url = f"sqlite:///{tmp_path / 'analysis.db'}"
    path = tmp_path / "receipts.jsonl"
    lines, first = file_lines(case)
    where = write_file(path, lines[:first], case.eol)
    applied, quarantined, skipped = case.expected_counts()
    want = len(NEIGHBOURS) + applied + quarantined + skipped

    reports: list[SyncReport] = []
    stop = threading.Event()
    failure: list[BaseException] = []
    with Store(url) as store:
        syncer = Syncer(
            store,
            JsonlSource(path),
            limits=BatchLimits(poll_interval=0.02, max_wait=0.05),
            today=lambda: TODAY,
            on_batch=reports.append,
        )

        def run() -> None:
            try:
                syncer.run(follow=True, stop=stop)
            except BaseException as exc:  # reported by the test thread
                failure.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            _wait(lambda: bool(reports) and reports[-1].events >= first, failure)
            offset = path.stat().st_size
            for index in range(first, len(lines)):
                where.append((index + 1, offset))
                data = lines[index] + case.eol
                half = len(data) // 2
                _append(path, data[:half])
                time.sleep(0.1)  # several polls see the half line: it must wait, not apply
                _append(path, data[half:])
                offset += len(data)
            _wait(lambda: reports[-1].events >= want, failure)
            time.sleep(0.1)  # nothing more arrives
        finally:
            stop.set()
            thread.join(timeout=60)
        assert not thread.is_alive()
    assert not failure, failure
    check_outcome(url, case, reports[-1], lines, first, where)


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def _wait(condition: Any, failure: list[BaseException], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert not failure, failure
        assert time.monotonic() < deadline, "the follower did not get there in time"
        time.sleep(0.01)


# -- a last line without its newline --------------------------------------------------------------


def _write(path: Path, data: bytes, mode: str = "ab") -> None:
    with open(path, mode) as f:
        f.write(data)


def test_incomplete_last_line_waits_with_once(tmp_path: Path) -> None:
    """--once: a last line that is not complete JSON is neither applied nor quarantined; when
    the rest arrives it is applied once, and later line numbers are right."""
    url = f"sqlite:///{tmp_path / 'analysis.db'}"
    path = tmp_path / "receipts.jsonl"
    line = doc()
    _write(path, b"".join(x + b"\n" for x in neighbour_lines()) + line[:25], "wb")
    report, _ = sync(url, path)
    assert (report.applied, report.quarantined) == (4, 0)
    assert stored_receipts(url) == expected_receipts(Case("x", [], "ignored"))

    _write(path, line[25:] + b"\n{oops\n")
    report, _ = sync(url, path)
    assert (report.applied, report.quarantined) == (1, 1)
    assert stored_receipts(url) == expected_receipts(Case("x", [], "accepted", receipts=[R()]))
    [row] = quarantine(url)
    assert row["position"] == f"line 6 (byte {path.stat().st_size - len(b'{oops') - 1})"


def test_complete_last_line_without_newline_counts_once_with_once(tmp_path: Path) -> None:
    """--once: a last line that is complete JSON is applied; the newline that comes later ends
    that same line (no double count, no blank-line confusion, numbering unchanged)."""
    url = f"sqlite:///{tmp_path / 'analysis.db'}"
    path = tmp_path / "receipts.jsonl"
    _write(path, b"".join(x + b"\n" for x in neighbour_lines()) + doc(), "wb")
    report, _ = sync(url, path)
    assert report.applied == 5
    size = path.stat().st_size
    _write(path, b"\n" + json.dumps(receipt(902, store=7)).encode() + b"\n[1]\n")
    report, _ = sync(url, path)
    assert (report.applied, report.quarantined) == (1, 1)
    expected = expected_receipts(
        Case("x", [], "accepted", receipts=[R(), R(key="int:902", hour=8, sold={"Latte": 2})])
    )
    assert stored_receipts(url) == expected
    assert tables(url) == recompute(expected, TODAY)
    [row] = quarantine(url)
    offset = size + 1 + len(json.dumps(receipt(902, store=7))) + 1
    assert row["position"] == f"line 7 (byte {offset})"


def test_follow_waits_for_the_newline_of_a_complete_last_line(tmp_path: Path) -> None:
    """--follow: even complete JSON is not applied until its newline arrives."""
    url = f"sqlite:///{tmp_path / 'analysis.db'}"
    path = tmp_path / "receipts.jsonl"
    _write(path, b"".join(x + b"\n" for x in neighbour_lines()) + doc(), "wb")
    reports: list[SyncReport] = []
    stop = threading.Event()
    failure: list[BaseException] = []
    with Store(url) as store:
        syncer = Syncer(
            store,
            JsonlSource(path),
            limits=BatchLimits(poll_interval=0.02, max_wait=0.05),
            today=lambda: TODAY,
            on_batch=reports.append,
        )

        def run() -> None:
            try:
                syncer.run(follow=True, stop=stop)
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            _wait(lambda: bool(reports) and reports[-1].applied >= 4, failure)
            time.sleep(0.3)  # 15 polls: the line stays pending
            assert reports[-1].applied == 4
            assert stored_receipts(url) == expected_receipts(Case("x", [], "ignored"))
            _write(path, b"\n")
            _wait(lambda: reports[-1].applied >= 5, failure)
        finally:
            stop.set()
            thread.join(timeout=60)
        assert not thread.is_alive()
    assert not failure, failure
    assert stored_receipts(url) == expected_receipts(Case("x", [], "accepted", receipts=[R()]))


# -- inputs that stall the reader: run in a subprocess with a deadline ---------------------------

_SYNC_SCRIPT = textwrap.dedent(
    """
    import datetime as dt, resource, sys
    limit = int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from coffeeshop.pipeline.engine import Syncer
    from coffeeshop.sources.jsonl import JsonlSource
    from coffeeshop.store import Store
    with Store(sys.argv[1]) as store:
        report = Syncer(store, JsonlSource(sys.argv[2]), today=lambda: dt.date(2026, 11, 25)).run()
    print(report.applied, report.quarantined, report.skipped)
    """
)
# The whole sync of a few lines takes about half a second on a quiet machine, imports
# included, and fits in a fraction of this address space (a line is at most a few bytes here).
# A stalled reader never finishes: the deadline leaves room for a loaded machine.
STALL_DEADLINE = 90.0
STALL_MEMORY = 512 << 20

STALLS = [
    pytest.param(
        doc(Store_ID=b"1e9999999"),
        r"^Store_ID: must be at most 2147483647",
        id="store-id-1e9999999",
    ),
    pytest.param(
        doc(items=b'[{"product_name": "Latte", "product_quantity": 1' + b"0" * 1_000_000 + b".0}]"),
        r"^items\[0\]\.product_quantity: must be at most 2147483647",
        id="quantity-1mb-of-digits",
    ),
    pytest.param(
        doc(_id=b"1e999999999"),
        None,
        id="id-1e999999999",
    ),
    pytest.param(
        doc(Store_ID=b"1e5000", total_price=b"1e-999999999"),
        r"^Store_ID: must be at most 2147483647",
        id="control-store-id-1e5000-and-tiny-total",
    ),
    pytest.param(doc(_id=b"1e5000"), None, id="control-id-1e5000"),
]


@pytest.mark.parametrize(("line", "reason"), STALLS)
def test_huge_exponents_do_not_stall_the_reader(
    line: bytes, reason: str | None, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'analysis.db'}"
    path = tmp_path / "receipts.jsonl"
    lines = [*neighbour_lines()[:BEFORE], line, *neighbour_lines()[BEFORE:]]
    write_file(path, lines, b"\n")
    proc = subprocess.Popen(
        [sys.executable, "-c", _SYNC_SCRIPT, url, str(path), str(STALL_MEMORY)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the read-ahead child dies with it
    )
    try:
        out, err = proc.communicate(timeout=STALL_DEADLINE)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the sync did not finish within {STALL_DEADLINE} s", pytrace=False)
    assert proc.returncode == 0, err.decode()
    counts = tuple(int(n) for n in out.split())
    if reason is None:  # accepted: keyed by value
        assert counts == (5, 0, 0)
        return
    assert counts == (4, 1, 0)
    [row] = quarantine(url)
    assert row["position"] == f"line {BEFORE + 1} (byte {sum(len(x) + 1 for x in lines[:2])})"
    assert re.search(reason, row["reason"])
    assert stored_receipts(url) == expected_receipts(Case("x", [], "ignored"))


# -- a line far over the 16 MiB limit: bounded memory (a real file, a real `sync` process) -------

# Peak memory a `sync` may reach whatever the line length (the figure): the sum of the
# peaks (VmHWM) of the process and its forked reader, an upper bound of their total. The old
# reader held the whole line (633 MiB for 200 MB).
PEAK_LIMIT_MB = 300
# Over the limit by itself: a reader that holds the line cannot pass.
HUGE_LINE = 320 << 20
SYNC = [sys.executable, "-m", "coffeeshop", "sync"]


def _peak_mb(pid: int, seen: dict[int, int]) -> None:
    """Record the peak RSS (kB) so far of `pid` and its descendants, by pid, in `seen`."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            seen[pid] = max(seen.get(pid, 0), int(line.split()[1]))
    for child in children:
        _peak_mb(int(child), seen)


def _write_huge_line(f: Any, size: int, *, piece: int = 1 << 20, pause: float = 0.0) -> str:
    """`{"_id": 901, "padding": "xxxx…"}` of exactly `size` bytes, no newline; its SHA-256."""
    head, tail = b'{"_id": 901, "padding": "', b'"}'
    digest = hashlib.sha256()
    body = size - len(head) - len(tail)
    block = b"x" * piece
    for part in (head, *[block] * (body // piece), b"x" * (body % piece), tail):
        f.write(part)
        f.flush()
        digest.update(part)
        if pause and len(part) == piece:
            time.sleep(pause)
    return digest.hexdigest()


def _huge_line_quarantined(db: Path, size: int, digest: str) -> bool:
    import sqlite3

    if not db.exists():
        return False
    with sqlite3.connect(db) as conn:
        try:
            rows = conn.execute("SELECT position, reason, raw FROM cs_quarantine").fetchall()
            stored = conn.execute("SELECT count(*) FROM cs_receipts").fetchone()[0]
        except sqlite3.OperationalError:  # no schema yet
            return False
    if not rows:
        return False
    [(position, reason, raw)] = rows
    first = sum(len(line) + 1 for line in neighbour_lines()[:BEFORE])
    assert position == f"line {BEFORE + 1} (byte {first})"
    assert reason.startswith(f"line is {size} bytes long, more than {16 << 20}"), reason[:200]
    assert reason.endswith(f"the input is {size:,} bytes, sha256 {digest}]"), reason[-200:]
    assert raw == ('{"_id": 901, "padding": "' + "x" * RAW_KEPT)[:RAW_KEPT]
    return bool(stored == len(NEIGHBOURS))


def test_a_320_mib_line_is_skipped_with_bounded_memory(tmp_path: Path) -> None:
    path, db = tmp_path / "receipts.jsonl", tmp_path / "analysis.db"
    lines = neighbour_lines()
    with open(path, "wb") as f:
        f.write(b"".join(line + b"\n" for line in lines[:BEFORE]))
        digest = _write_huge_line(f, HUGE_LINE)
        f.write(b"\n" + b"".join(line + b"\n" for line in lines[BEFORE:]))
    started = time.monotonic()
    proc = subprocess.Popen(
        [*SYNC, "--once", "--source", str(path), "--db", f"sqlite:///{db}"],
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    seen: dict[int, int] = {}
    while proc.poll() is None and time.monotonic() - started < 120:
        _peak_mb(proc.pid, seen)
        time.sleep(0.02)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"sync did not finish in 120 s (peaks so far, kB: {seen})")
    seconds = time.monotonic() - started
    peak = sum(seen.values()) / 1024  # parent + reader, each at its own peak
    assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
    print(f"320 MiB line, sync --once: {seconds:.1f} s, peak RSS {peak:.0f} MB ({seen})")
    assert peak < PEAK_LIMIT_MB, f"peak RSS {peak:.0f} MB"
    assert _huge_line_quarantined(db, HUGE_LINE, digest)


def test_a_huge_line_still_being_written_is_followed_with_bounded_memory(tmp_path: Path) -> None:
    """With --follow, the line grows 1 MiB at a time (no newline for seconds): the reader
    must neither hold it nor apply anything of it until its newline comes."""
    path, db = tmp_path / "receipts.jsonl", tmp_path / "analysis.db"
    lines = neighbour_lines()
    path.write_bytes(b"".join(line + b"\n" for line in lines[:BEFORE]))
    proc = subprocess.Popen(
        [*SYNC, "--follow", "--source", str(path), "--db", f"sqlite:///{db}"],
        stderr=subprocess.PIPE,
        env={**os.environ, "COFFEESHOP_POLL_INTERVAL": "0.02"},
        start_new_session=True,
    )
    seen: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            _peak_mb(proc.pid, seen)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with open(path, "ab") as f:
            digest = _write_huge_line(f, HUGE_LINE, pause=0.002)
        time.sleep(0.5)  # the reader is at the end of a line that has no newline yet
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert not _huge_line_quarantined(db, HUGE_LINE, digest)
        with open(path, "ab") as f:
            f.write(b"\n" + b"".join(line + b"\n" for line in lines[BEFORE:]))
        deadline = time.monotonic() + 60
        while not _huge_line_quarantined(db, HUGE_LINE, digest):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the line was not quarantined within 60 s"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        done.set()
        sampler.join()
    peak = sum(seen.values()) / 1024  # parent + reader, each at its own peak
    print(f"320 MiB line written while following: peak RSS {peak:.0f} MB ({seen})")
    assert peak < PEAK_LIMIT_MB, f"peak RSS {peak:.0f} MB"
    assert proc.returncode == 130, proc.returncode  # stopped by Ctrl-C, as shells expect
