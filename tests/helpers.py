"""Test helpers: receipt documents, JSONL files, and the from-scratch reference."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymysql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from coffeeshop.core.receipts import InvalidReceipt, Receipt, parse_receipt, receipt_key
from coffeeshop.core.recompute import Tables, recompute

if TYPE_CHECKING:
    from coffeeshop.store import Store


def receipt(
    rid: Any,
    *,
    store: Any = 1,  # a test may hand any JSON value
    date: str = "2026-11-20",
    time: str = "08:15:42",
    total: Any = 12.5,
    items: list[tuple[str, int]] | None = None,
) -> dict[str, Any]:
    """A receipt document in the original shape."""
    lines = items if items is not None else [("Latte", 2)]
    return {
        "_id": rid,
        "Store_ID": store,
        "transactionDate": date,
        "transactionTime": time,
        "total_price": total,
        "items": [
            {"product_name": name, "product_quantity": qty, "product_price": 1.0}
            for name, qty in lines
        ],
    }


def write_lines(path: Path, objects: list[Any], *, mode: str = "a") -> None:
    """Append JSON objects (or raw strings, written as they are) as lines."""
    with open(path, mode, encoding="utf-8") as f:
        for obj in objects:
            f.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")


def current_receipts(lines: Iterable[Any]) -> list[Receipt]:
    """The valid receipts after applying `lines` in order: an independent, naive fold.

    Each line is a document or a change event (dict), or a raw string (JSON text or not).
    """
    docs: dict[str, Any] = {}
    for line in lines:
        obj = line
        if isinstance(line, str):
            try:
                obj = json.loads(line, parse_float=Decimal, parse_constant=Decimal)
            except (ValueError, RecursionError):
                continue
        if not isinstance(obj, dict):
            continue
        try:
            if "operationType" in obj:
                op = obj["operationType"]
                if op == "delete":
                    docs.pop(receipt_key(obj["documentKey"]["_id"]), None)
                elif op in ("insert", "replace", "update") and isinstance(
                    obj.get("fullDocument"), dict
                ):
                    doc = obj["fullDocument"]
                    docs[receipt_key(doc["_id"])] = doc
            elif "_id" in obj:
                docs[receipt_key(obj["_id"])] = obj
        except InvalidReceipt:  # an unreadable _id touches no receipt
            continue
    valid = []
    for doc in docs.values():
        with contextlib.suppress(InvalidReceipt):
            valid.append(parse_receipt(doc))
    return valid


def reference_tables(lines: Iterable[Any], today: dt.date) -> Tables:
    return recompute(current_receipts(lines), today)


# -- processes the tests start -------------------------------------------------------------------


def mysql_connect(mysql_url: str, *, autocommit: bool = False) -> pymysql.connections.Connection:
    """A plain PyMySQL connection to the database of `mysql_url`: another client, to hold
    locks against the engine or to kill one of its connections."""
    url = make_url(mysql_url)
    return pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        database=url.database,
        autocommit=autocommit,
    )


def run_coffeeshop(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    log_level: str | None = "INFO",
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """`coffeeshop ARGS` as a user runs it, in a process of its own; `timeout` fails a hang
    (generous: a loaded machine is slow, and a passing run ends long before it)."""
    level = {} if log_level is None else {"COFFEESHOP_LOG_LEVEL": log_level}
    return subprocess.run(
        [sys.executable, "-m", "coffeeshop", *args],
        cwd=cwd,
        env={**os.environ, **level, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str) -> tuple[int, bytes]:
    """(status, body) of a GET on loopback; an HTTP error status is an answer, not a raise.
    The 60 s bound only ends a failure: a loaded machine can take seconds to answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for_health(
    process: subprocess.Popen[bytes], port: int, output: Callable[[], str], *, deadline: float
) -> None:
    """Until `/health` answers 200 (by `deadline`, a `time.monotonic()`); the process's
    `output()` in the failure when it exits first or never answers."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}: {output()}")
        try:
            if http_get(port, "/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"did not answer /health: {output()}")


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], fragment: str, code: int = 2
) -> None:
    """A failed command: exit `code`, no traceback, exactly one `error:` line holding `fragment`."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert fragment in errors[0]


def execute_sql(store: Store, sql: str) -> None:
    """Run one statement in a writing transaction through the store's engine: how a test
    damages a database (or sets one up the way an older version left it)."""
    with store.writer.begin() as conn:
        conn.execute(text(sql))
