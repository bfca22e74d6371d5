"""/quarantine with large entries, through a real `coffeeshop serve` on SQLite and MariaDB: the
list carries a bounded preview of each raw text, and one entry's whole text is streamed."""

from __future__ import annotations

import datetime as dt
import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_api_serve import Server
from test_api_support import BACKENDS, empty_database, fill

from coffeeshop.store import schema

ENTRIES = 12
SIZE = 2_000_000  # characters of each raw text: 24 MB in all


def big_raw(n: int) -> str:
    # Not JSON; multi-byte and escaped characters, so characters, bytes and JSON differ.
    return (f"entry {n}: ☕\t" * (SIZE // 10 + 1))[:SIZE]


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "mariadb":
        from conftest import require_mysql

        require_mysql()
    with empty_database(request.param, tmp_path) as url:
        fill(url, tmp_path)
        # Large entries as a database written before raw text was capped holds them.
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                for n in range(ENTRIES):
                    conn.execute(
                        schema.quarantine.insert().values(
                            receipt_id=None,
                            reason="not JSON",
                            source="big.jsonl",
                            position=f"line {n + 1}",
                            raw=big_raw(n),
                            received_at=dt.datetime(2026, 11, 30, 12, 0),
                        )
                    )
        finally:
            engine.dispose()
        yield url


def get(port: int, path: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path)
    return connection.getresponse()


def test_the_list_carries_a_preview_and_the_length_of_each_raw_text(
    database: str, tmp_path: Path
) -> None:
    server = Server(tmp_path, "--db", database)
    try:
        server.wait_until_up()
        response = get(server.port, "/quarantine?source=big.jsonl&limit=1000")
        body = response.read()
        assert response.status == 200
        assert len(body) < 100_000  # before: the whole 24 MB (and more, escaped)
        entries = json.loads(body)
        assert len(entries) == ENTRIES
        for n, entry in enumerate(entries):
            assert entry["raw"] == big_raw(n)[:1000]
            assert entry["raw_length"] == SIZE
            assert entry["raw_truncated"] is True
        small = json.loads(get(server.port, "/quarantine?source=elsewhere").read())
        assert small == []
        others = json.loads(get(server.port, "/quarantine?limit=2").read())
        assert others[1]["raw"] == "this line is not JSON"
        assert others[1]["raw_length"] == len("this line is not JSON")
        assert others[1]["raw_truncated"] is False

        # One entry's whole text, streamed (chunked, no Content-Length), exact.
        last = entries[-1]["id"]
        response = get(server.port, f"/quarantine/{last}/raw")
        assert response.status == 200
        assert response.getheader("content-type") == "text/plain; charset=utf-8"
        # Hostile input as text: a browser must not sniff it into HTML (issue 18.15).
        assert response.getheader("x-content-type-options") == "nosniff"
        assert response.getheader("transfer-encoding") == "chunked"
        assert response.getheader("x-raw-length") == str(SIZE)
        assert response.read().decode("utf-8") == big_raw(ENTRIES - 1)

        missing = get(server.port, "/quarantine/999999/raw")
        assert missing.status == 404 and b"no quarantine entry" in missing.read()
        assert get(server.port, "/quarantine/0/raw").status == 422
        assert get(server.port, "/quarantine?limit=1001").status == 422
    finally:
        assert server.stop()
    assert "Traceback" not in server.output()
