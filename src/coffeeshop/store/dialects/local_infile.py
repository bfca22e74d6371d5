"""PyMySQL connections that send the server a file only when the client expects it.

With `local_infile`, stock PyMySQL answers a server's file request (the 0xFB packet) with
whatever file the server names, in answer to any statement: a rogue or impostor server could
read any file the process can (a secret, `my.cnf`, `/proc/self/environ`). A store that
bulk-loads connects with `GuardedConnection` instead: the capability is negotiated, but a
request is honoured only inside `upload(path)`, only for exactly that file name, and once.
Any other request (another name, another statement, a second request) is answered with an
empty file (not one byte of anything is sent), the server's reply is read so the protocol
stays in step, and `FileRequestRefused` fails the statement.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pymysql.connections import Connection, MySQLResult
from pymysql.err import MySQLError
from pymysql.protocol import LoadLocalPacketWrapper, MysqlPacket

from coffeeshop.errors import FileRequestRefused

SHOWN = 200  # characters of a requested file name repeated in the error


class GuardedConnection(Connection):
    """A PyMySQL connection whose LOCAL INFILE requests are checked (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        defer = kwargs.pop("defer_connect", False)
        kwargs["local_infile"] = True  # the capability, offered in the handshake
        super().__init__(*args, defer_connect=True, **kwargs)
        # PyMySQL's own switch stays off: its result reader refuses every request, and ours
        # turns it on only to send the expected file.
        self._local_infile = False
        self.expected_upload: bytes | None = None
        if not defer:
            self.connect()

    @contextlib.contextmanager
    def upload(self, path: Path) -> Iterator[None]:
        """Inside: the server may ask for `path` (named exactly so, once), and gets it."""
        self.expected_upload = str(path).encode(self.encoding)
        try:
            yield
        finally:
            self.expected_upload = None

    def _read_query_result(self, unbuffered: bool = False) -> int | None:
        # PyMySQL's own, reading the result with `_CheckedResult`.
        self._result = None
        result = _CheckedResult(self)
        if unbuffered:
            result.init_unbuffered_query()
        else:
            result.read()
        self._result = result
        if result.server_status is not None:
            self.server_status = result.server_status
        return result.affected_rows


class _CheckedResult(MySQLResult):
    def _read_load_local_packet(self, first_packet: MysqlPacket) -> None:
        conn: GuardedConnection = self.connection
        requested = bytes(LoadLocalPacketWrapper(first_packet).filename)
        expected, conn.expected_upload = conn.expected_upload, None  # one request per upload
        if expected is not None and requested == expected:
            conn._local_infile = True
            try:
                super()._read_load_local_packet(first_packet)
            finally:
                conn._local_infile = False
            return
        conn.write_packet(b"")  # an empty file ends the request: nothing of any file is sent
        with contextlib.suppress(MySQLError):  # the server's answer to it, whatever it says
            conn._read_packet()
        raise FileRequestRefused(_refusal(requested, expected, conn.host, conn.port))


def _refusal(requested: bytes, expected: bytes | None, host: str, port: int) -> str:
    name = ascii(requested.decode("utf-8", "replace")[:SHOWN])
    if expected is None:
        why = "in answer to a statement that loads no file"
    else:
        why = f"instead of the load file {expected.decode('utf-8', 'replace')!a}"
    return (
        f"the database server at {host}:{port} asked for the file {name} {why}: refused, "
        "nothing was sent and the statement failed (is it the real server? connect the bulk "
        "path over TLS: see docs/deployment.md)"
    )
