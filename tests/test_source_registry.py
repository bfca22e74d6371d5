"""Source kinds are registered in one place (`coffeeshop.sources`): a new kind (the toy one of
`toy_source.py`, a directory of change files) runs `sync` and `reconcile` as a user runs them,
and whole-history work in partitions refuses a kind without the `Partitioned` capability in
one line, before any cluster starts."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import toy_source
from helpers import assert_one_line_error, receipt, reference_tables
from toy_source import ToySource, write_changes

from coffeeshop.errors import ConfigError
from coffeeshop.pipeline.partitioned import gather_in_process
from coffeeshop.sources import (
    JSONL,
    MONGODB,
    SourceKind,
    is_uri,
    kind_of,
    open_source,
    portable_spec,
    register,
    unregister,
)
from coffeeshop.sources.base import Partitioned, partitioned
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store

TESTS = Path(__file__).parent
ZONE = "UTC"
FIRST = [receipt(i, store=i % 3, total=f"{i}.25", items=[("Mocha", 1 + i % 2)]) for i in range(40)]
FIRST += [receipt(999, total="-1")]  # invalid: quarantined
MORE = [
    receipt(3, store=2, total="99.00", items=[("Tea", 4)]),  # replaces receipt 3
    {"operationType": "delete", "documentKey": {"_id": 7}},
    receipt(100, store=1, total="5.50"),
]


def coffeeshop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`coffeeshop ARGS` in a process of its own, the toy kind registered as a plugin would."""
    return subprocess.run(
        [sys.executable, "-m", "toy_source", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(TESTS), "COFFEESHOP_TIMEZONE": ZONE},
        capture_output=True,
        text=True,
        timeout=300,
    )


def tables(url: str) -> Any:
    with Store(url, read_only=True) as store:
        return store.read_tables(dt.datetime.now(dt.UTC).date())


def test_a_registered_kind_runs_sync_and_reconcile(tmp_path: Path) -> None:
    changes = tmp_path / "changes"
    write_changes(changes, FIRST)
    source = f"toy://{changes}"
    url = f"sqlite:///{tmp_path / 'a.db'}"
    common = ("--source", source, "--db", url)

    synced = coffeeshop("sync", "--once", *common, cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr
    today = dt.datetime.now(dt.UTC).date()
    assert tables(url) == reference_tables(FIRST, today)
    checked = coffeeshop("reconcile", *common, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "reconcile: 0 difference(s); the source has 40 valid receipt(s)" in checked.stdout

    write_changes(changes, MORE)  # the source moves on: reconcile sees it, a sync applies it
    behind = coffeeshop("reconcile", *common, cwd=tmp_path)
    assert behind.returncode == 1 and "difference(s)" in behind.stdout
    synced = coffeeshop("sync", "--once", *common, cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr
    assert tables(url) == reference_tables(FIRST + MORE, today)
    checked = coffeeshop("reconcile", *common, cwd=tmp_path)
    assert checked.returncode == 0 and "0 difference(s)" in checked.stdout, checked.stdout


@pytest.mark.parametrize(
    "command", [("reconcile", "--workers", "2"), ("sync", "--once", "--backfill-workers", "2")]
)
def test_partitioned_work_refuses_a_kind_without_the_capability(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    changes = tmp_path / "changes"
    write_changes(changes, FIRST)
    url = f"sqlite:///{tmp_path / 'a.db'}"
    result = coffeeshop(*command, "--source", f"toy://{changes}", "--db", url, cwd=tmp_path)
    assert_one_line_error(result, "cannot be read in partitions")
    assert not (tmp_path / "a.db").exists()  # refused before anything was created
    with pytest.raises(ConfigError, match="cannot be read in partitions"):
        gather_in_process(ToySource(changes), 2)


def test_the_built_in_kinds_have_the_capability(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("")
    assert isinstance(open_source(str(path)), Partitioned)
    assert isinstance(open_source("mongodb://localhost:1/"), Partitioned)
    assert not isinstance(ToySource(tmp_path), Partitioned)
    source = JsonlSource(path)
    assert partitioned(source) is source
    source.check_partitionable(threading.Event())  # an opened file: nothing to refuse


def test_a_spec_is_mapped_to_its_kind_in_one_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert kind_of("mongodb://h/") is MONGODB and kind_of("mongodb+srv://h/") is MONGODB
    assert kind_of("receipts.jsonl") is JSONL and kind_of(f"toy://{tmp_path}") is toy_source.TOY
    assert is_uri("mongodb://h/") and not is_uri("receipts.jsonl")
    assert portable_spec("receipts.jsonl") == str(tmp_path / "receipts.jsonl")
    assert portable_spec("mongodb://u:p@h/") == "mongodb://u:p@h/"  # a URI as it is
    with pytest.raises(ConfigError, match="unknown source scheme 'kafka'") as caught:
        open_source("kafka://user:s3cret@broker/receipts")
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ValueError, match="already registered"):
        register(SourceKind("other", toy_source.open_toy, schemes=("toy",)))


def test_the_last_registered_path_kind_opens_plain_paths(tmp_path: Path) -> None:
    seen: list[str] = []

    def opened(spec: str, options: Any) -> Any:
        seen.append(spec)
        return ToySource(tmp_path)

    kind = register(SourceKind("directory", opened))
    try:
        assert isinstance(open_source("some/where"), ToySource) and seen == ["some/where"]
    finally:
        unregister(kind)
    assert kind_of("some/where") is JSONL


def test_portable_spec_and_repair_args_of_the_built_in_kinds(tmp_path: Path) -> None:
    path = tmp_path / "my receipts.jsonl"
    path.write_text("")
    source = open_source(str(path))
    assert source.spec == str(path) and source.repair_args == f"--source '{path}'"
    mongo = open_source("mongodb://u:s3cret@h/")
    assert mongo.spec == "mongodb://u:s3cret@h/" and "s3cret" not in mongo.repair_args
