"""`coffeeshop.inotify`: real inotify watches on temporary files (Linux)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from coffeeshop.inotify import FileWatch

DEADLINE = 60.0  # seconds: generous, for a busy machine

if not sys.platform.startswith("linux"):  # pragma: no cover
    pytest.fail("these tests are for Linux, where inotify is the follower's wake-up")


def woken(watch: FileWatch) -> bool:
    """Whether an event arrives before the deadline."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if watch.wait(1.0):
            return True
    return False


@pytest.fixture
def file(tmp_path: Path) -> Path:
    path = tmp_path / "receipts.jsonl"
    path.write_bytes(b"{}\n")
    return path


def test_an_append_wakes_the_watch_and_is_read_once(file: Path) -> None:
    with FileWatch.open(file) as watch:  # type: ignore[union-attr]
        assert watch.wait(0) is False  # nothing yet
        with file.open("ab") as out:
            out.write(b"{}\n")
        assert woken(watch)
        assert watch.wait(0) is False  # the events were drained


@pytest.mark.parametrize("change", ["truncate", "rename", "unlink"])
def test_truncation_rename_and_unlink_wake_the_watch(
    file: Path, tmp_path: Path, change: str
) -> None:
    with FileWatch.open(file) as watch:  # type: ignore[union-attr]
        if change == "truncate":
            file.write_bytes(b"")
        elif change == "rename":
            os.replace(file, tmp_path / "moved.jsonl")
        else:
            file.unlink()
        assert woken(watch)


def test_a_missing_file_has_no_watch_and_the_caller_polls(tmp_path: Path) -> None:
    assert FileWatch.open(tmp_path / "missing.jsonl") is None


def test_close_is_idempotent_and_frees_the_descriptor(file: Path) -> None:
    watch = FileWatch.open(file)
    assert watch is not None
    fd = watch.fd
    watch.close()
    watch.close()
    with pytest.raises(OSError):
        os.fstat(fd)
