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

# A statement stays well under the default max_allowed_packet (16 MiB on MariaDB 10.11).
MAX_STATEMENT = 4 << 20

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

    def execute(self, conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
        columns = self.columns
        self.execute_rows(
            conn, ("(" + ",".join(literal(row[c]) for c in columns) + ")" for row in rows)
        )

    def execute_rows(self, conn: Connection, rows: Iterable[str]) -> None:
        """Execute with row literals already written, `(v1,v2,…)` in `self.columns` order."""
        for chunk in _sized(rows):
            conn.exec_driver_sql(self.prefix + ",".join(chunk) + self.suffix)


def in_list(values: Iterable[bytes]) -> Iterator[str]:
    """`X'…',X'…'` lists for `IN (…)`, each within the statement size limit."""
    for chunk in _sized(literal(v) for v in values):
        yield ",".join(chunk)


def _sized(literals: Iterable[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for text in literals:
        if chunk and size + len(text) > MAX_STATEMENT:
            yield chunk
            chunk, size = [], 0
        chunk.append(text)
        size += len(text) + 1
    if chunk:
        yield chunk
