"""The bulk path never hands the server a file it names (issue 18.2): a store that
bulk-loads (LOAD DATA LOCAL INFILE) sends exactly the file of the statement in flight, from
its own temporary directory, and nothing else, on no other statement. Tested against a rogue
endpoint in front of the real MariaDB (`rogue_mysql`) that rewrites the file name of the
server's request, or asks for a file in answer to an ordinary query."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import receipt, write_lines
from rogue_mysql import RogueMySQL
from sqlalchemy.engine import make_url
from test_bulk import contents, sync_once

from coffeeshop.errors import FileRequestRefused
from coffeeshop.pipeline.engine import Syncer
from coffeeshop.pipeline.partitioned import finish, gather_in_process
from coffeeshop.sources.jsonl import JsonlSource
from coffeeshop.store import Store

pytestmark = pytest.mark.mariadb

TODAY = dt.date(2026, 11, 25)
SECRET = b"COFFEESHOP_MONGO_URI=mongodb://app:hunter2@db/\n"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret.env"
    path.write_bytes(SECRET)
    path.chmod(0o600)
    return path


@pytest.fixture
def source(tmp_path: Path, mysql_url: str) -> Path:
    """A source already synced into the database (directly), then grown: a repair has work."""
    path = tmp_path / "r.jsonl"
    write_lines(path, [receipt(i, store=i % 3, total=f"{i}.5") for i in range(30)])
    sync_once(mysql_url, path)
    write_lines(path, [receipt(i, total=2) for i in range(30, 60)])
    return path


def through(proxy: RogueMySQL, url: str) -> str:
    parsed = make_url(url)
    return parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


@pytest.fixture
def rogue(mysql_url: str) -> Iterator[list[RogueMySQL]]:
    proxies: list[RogueMySQL] = []
    yield proxies
    for proxy in proxies:
        proxy.close()


def repair_through(proxy: RogueMySQL, url: str, path: Path) -> None:
    with Store(through(proxy, url), bulk_load=True) as store:
        gathered = gather_in_process(str(path), 2)
        finish(store, JsonlSource(path), gathered, today=TODAY, repair=True)


def start(rogue: list[RogueMySQL], url: str, **mode: object) -> RogueMySQL:
    parsed = make_url(url)
    proxy = RogueMySQL((parsed.host or "127.0.0.1", parsed.port or 3306), **mode)  # type: ignore[arg-type]
    rogue.append(proxy)
    return proxy


def test_a_server_that_renames_the_load_file_gets_nothing_and_the_repair_fails_loudly(
    mysql_url: str, source: Path, secret: Path, rogue: list[RogueMySQL]
) -> None:
    before = contents(mysql_url)
    proxy = start(rogue, mysql_url, rewrite_to=secret)
    with pytest.raises(Exception) as raised:
        repair_through(proxy, mysql_url, source)
    assert proxy.requests == [str(secret).encode()]  # the server did ask
    assert proxy.uploads == [b""]  # and got an empty answer: not one byte of the file
    assert SECRET not in proxy.sent
    assert isinstance(raised.value, FileRequestRefused), raised.value
    message = str(raised.value)
    assert "\n" not in message and "secret.env" in message and "nothing was sent" in message
    assert contents(mysql_url) == before  # the rebuild rolled back


def test_a_server_that_asks_for_a_file_before_any_load_gets_nothing(
    mysql_url: str, source: Path, secret: Path, rogue: list[RogueMySQL]
) -> None:
    before = contents(mysql_url)
    proxy = start(rogue, mysql_url, ask_first=(b"cs_checkpoint", secret))
    with pytest.raises(Exception) as raised:
        repair_through(proxy, mysql_url, source)
    assert proxy.requests == [str(secret).encode()]
    assert proxy.uploads == [b""]
    assert SECRET not in proxy.sent
    assert isinstance(raised.value, FileRequestRefused), raised.value
    assert contents(mysql_url) == before


def test_a_store_that_does_not_bulk_load_never_sends_a_file(
    mysql_url: str, source: Path, secret: Path, rogue: list[RogueMySQL]
) -> None:
    """(A guard: a plain store never offers LOCAL INFILE at all.)"""
    proxy = start(rogue, mysql_url, ask_first=(b"cs_checkpoint", secret))
    store = Store(through(proxy, mysql_url))
    with pytest.raises(Exception), store:  # noqa: B017 (the driver's own refusal, any form)
        Syncer(store, JsonlSource(source), today=lambda: TODAY, read_ahead=False).run()
    assert proxy.requests == [str(secret).encode()]
    assert SECRET not in proxy.sent  # PyMySQL refuses: the connection never offered it


def test_an_honest_server_gets_the_load_files_through_the_same_endpoint(
    mysql_url: str, source: Path, rogue: list[RogueMySQL], tmp_path: Path
) -> None:
    proxy = start(rogue, mysql_url)
    repair_through(proxy, mysql_url, source)
    assert len(proxy.requests) == 2  # the empty probe, the receipts (no quarantine entry)
    assert all(b"coffeeshop-load-" in name for name in proxy.requests)
    assert proxy.uploads[0] == b"" and proxy.uploads[1].count(b"\n") == 60
    direct = f"sqlite:///{tmp_path / 'direct.db'}"
    sync_once(direct, source)
    assert contents(mysql_url)[0] == contents(direct)[0]
