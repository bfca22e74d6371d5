"""Sources that are not regular files, sources that fail to read, and database URLs with bad
driver options: each is one line on stderr and exit status 2, never a hang or a traceback."""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

import pytest
from helpers import assert_one_line_error, free_port, receipt, run_coffeeshop, write_lines

from coffeeshop.errors import ConfigError
from coffeeshop.sources.jsonl import JsonlSource

run = functools.partial(run_coffeeshop, log_level="DEBUG")


# -- a FIFO (or any non-regular file) as the source ----------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["sync"], ["sync", "--follow"], ["reconcile"], ["reconcile", "--repair"]],
    ids=["sync", "follow", "reconcile", "repair"],
)
def test_a_fifo_source_is_refused_at_once(tmp_path: Path, command: list[str]) -> None:
    fifo = tmp_path / "receipts.jsonl"
    os.mkfifo(fifo)
    db = tmp_path / "a.db"
    result = run(*command, "--source", str(fifo), "--db", f"sqlite:///{db}", cwd=tmp_path)
    assert_one_line_error(result, "is a FIFO (named pipe), not a regular file")
    assert not db.exists()  # refused before the database was touched


def test_a_device_source_is_refused(tmp_path: Path) -> None:
    result = run("sync", "--source", "/dev/zero", "--db", "sqlite:///a.db", cwd=tmp_path)
    assert_one_line_error(result, "is a device, not a regular file")


def test_opening_a_fifo_never_waits_for_a_writer(tmp_path: Path) -> None:
    """The source itself refuses it too (a file replaced by a FIFO after the command checked
    it, or a library caller): its open() must not block until someone writes."""
    fifo = tmp_path / "receipts.jsonl"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def open_it() -> None:
        try:
            JsonlSource(fifo).open(None)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    opener = threading.Thread(target=open_it, daemon=True)
    opener.start()
    opener.join(timeout=30)
    if opener.is_alive():  # unblock the thread before failing
        with open(fifo, "wb"):
            pass
        opener.join(timeout=30)
        pytest.fail("JsonlSource.open() blocked on a FIFO")
    assert isinstance(outcome[0], ConfigError)
    assert "not a regular file" in str(outcome[0])


# -- an I/O error while reading the source -------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["sync"], ["sync", "--follow"], ["reconcile"]], ids=["sync", "follow", "reconcile"]
)
def test_an_io_error_reading_the_source_is_one_line(tmp_path: Path, command: list[str]) -> None:
    """/proc/self/mem is a regular file whose first bytes (address 0, never mapped) fail to
    read with EIO: a real I/O error from the kernel, in the reading process."""
    db = f"sqlite:///{tmp_path / 'a.db'}"
    assert run("db", "upgrade", "--db", db, cwd=tmp_path).returncode == 0
    result = run(*command, "--source", "/proc/self/mem", "--db", db, cwd=tmp_path)
    assert_one_line_error(result, "Input/output error")
    assert "cannot read the source jsonl:/proc/" in result.stderr


def test_an_io_error_reading_the_source_leaves_the_checkpoint(tmp_path: Path) -> None:
    source = tmp_path / "r.jsonl"
    write_lines(source, [receipt(1)])
    db = f"sqlite:///{tmp_path / 'a.db'}"
    assert run("sync", "--source", str(source), "--db", db, cwd=tmp_path).returncode == 0
    failed = run("reconcile", "--repair", "--source", "/proc/self/mem", "--db", db, cwd=tmp_path)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    clean = run("reconcile", "--source", str(source), "--db", db, cwd=tmp_path)
    assert clean.returncode == 0 and "0 difference(s)" in clean.stdout


# -- database URLs with options the driver refuses -----------------------------------------------

SQLITE_OPTIONS = [
    ("?timeout=abc", "could not convert string to float"),
    ("?unknownarg=1", "unknownarg"),
]
MYSQL_OPTIONS = [
    ("?charset=bogus", "unknown character set 'bogus'"),
    ("?connect_timeout=abc", "invalid literal for int()"),
    ("?unknownarg=1", "unknown option 'unknownarg'"),
]
COMMANDS = [
    ["sync", "--source", "{source}"],
    ["tables"],
    ["quarantine"],
    ["reconcile", "--source", "{source}"],
    ["db", "upgrade"],
    ["serve", "--port", "{port}"],
]


def check_options(tmp_path: Path, base: str, options: list[tuple[str, str]]) -> None:
    source = tmp_path / "r.jsonl"
    write_lines(source, [receipt(1)])
    for option, fragment in options:
        for command in COMMANDS:
            args = [a.format(source=source, port=free_port()) for a in command]
            result = run(*args, "--db", base + option, cwd=tmp_path)
            assert_one_line_error(result, fragment)
            assert "option" in result.stderr or "character set" in result.stderr


def test_bad_sqlite_url_options_are_one_line(tmp_path: Path) -> None:
    check_options(tmp_path, f"sqlite:///{tmp_path / 'a.db'}", SQLITE_OPTIONS)
    assert not (tmp_path / "a.db").exists()


@pytest.mark.mariadb
def test_bad_mariadb_url_options_are_one_line(tmp_path: Path, mysql_url: str) -> None:
    check_options(tmp_path, mysql_url, MYSQL_OPTIONS)
