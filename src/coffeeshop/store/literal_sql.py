"""Multi-row statements with values written as literals, for MySQL/MariaDB's hot path.

PyMySQL escapes every parameter in Python, which costs more than everything else a
batch does. Values here are ints (written as digits) and bytes/text (written as hex
literals, `X'…'`, which need no escaping and which the server stores into a utf8mb4
column byte for byte). Nothing a user wrote is ever spliced into SQL as text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy.engine import Connection

# The most a multi-row statement holds: well under the default max_allowed_packet (16 MiB
# on MariaDB 10.11); `statement_limit` lowers it for a server with a smaller packet.
MAX_STATEMENT = 4 << 20
# The smallest max_allowed_packet this package works with (MySQL 5.7's default). A receipt's
# row is at most ~2.1 MiB as literals (`aggregates.MAX_STORED_ITEMS`, hex-encoded), quarantine
# raw text at most 256 KiB: each fits one statement with room to spare.
MIN_PACKET = 4 << 20


def statement_limit(max_allowed_packet: int) -> int:
    """Bytes of row literals per statement for a server with this max_allowed_packet: half
    of it at most, so a single row over the limit (sent alone) still fits."""
    return min(MAX_STATEMENT, max_allowed_packet // 2)


_INSERT = re.compile(
    r"(?s)\A\s*(INSERT\b.+?\bVALUES\s*)(\(.*?\))(\s*(?:AS\s+\w+\s+)?ON\s+DUPLICATE\b.*)\Z", re.I
)


def literal(value: Any) -> str:
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is bytes:
        return f"X'{value.hex()}'"
    if kind is str:
        return f"X'{value.encode('utf-8').hex()}'"
    if value is None:
        return "NULL"
    raise TypeError(f"no literal form for {kind.__name__}")


class BulkInsert:
    """`INSERT … VALUES (…), (…) ON DUPLICATE KEY UPDATE …` from SQLAlchemy's compiled upsert.

    SQLAlchemy renders the dialect's own upsert clause (MariaDB's `VALUES(col)`, MySQL
    8's `AS new`); only the VALUES list is replaced.
    """

    def __init__(self, compiled_sql: str, columns: Sequence[str]) -> None:
        match = _INSERT.match(compiled_sql)
        if match is None:
            raise ValueError(f"not an INSERT … ON DUPLICATE KEY statement: {compiled_sql[:80]}")
        self.prefix, _, self.suffix = match.groups()
        self.columns = tuple(columns)

    def execute(
        self, conn: Connection, rows: Iterable[dict[str, Any]], *, limit: int = MAX_STATEMENT
    ) -> None:
        columns = self.columns
        self.execute_rows(
            conn,
            ("(" + ",".join(literal(row[c]) for c in columns) + ")" for row in rows),
            limit=limit,
        )

    def execute_rows(
        self, conn: Connection, rows: Iterable[str], *, limit: int = MAX_STATEMENT
    ) -> None:
        """Execute with row literals already written, `(v1,v2,…)` in `self.columns` order,
        as few statements as `limit` (bytes of literals per statement) allows."""
        for chunk in _sized(rows, limit):
            conn.exec_driver_sql(self.prefix + ",".join(chunk) + self.suffix)


def in_list(values: Iterable[bytes], *, limit: int = MAX_STATEMENT) -> Iterator[str]:
    """`X'…',X'…'` lists for `IN (…)`, each within the statement size limit."""
    for chunk in _sized([f"X'{v.hex()}'" for v in values], limit):
        yield ",".join(chunk)


def _sized(literals: Iterable[str], limit: int) -> Iterator[list[str]]:
    if isinstance(literals, list) and sum(map(len, literals)) + len(literals) <= limit:
        if literals:  # rows already in a list, all in one statement: no loop per row
            yield literals
        return
    chunk: list[str] = []
    size = 0
    for text in literals:
        if chunk and size + len(text) > limit:
            yield chunk
            chunk, size = [], 0
        chunk.append(text)
        size += len(text) + 1
    if chunk:
        yield chunk
