"""A rogue MySQL endpoint for tests: a TCP proxy in front of the real MariaDB that reads the
protocol's packets both ways and plays an impostor server asking the client for a file
(`LOAD DATA LOCAL INFILE`'s request, the 0xFB packet), either

- `rewrite_to`: every file request the real server sends (the answer to a `LOAD DATA LOCAL`
  statement) has its file name replaced with this path; or
- `ask_first`: the first query whose text holds `marker` is not forwarded: the proxy answers
  it with a request for this path, as a server may answer any statement, and then with an OK.

Everything the client sends in answer to a file request is recorded in `uploads` (one
`bytes` per request: the packets' payloads, the empty end packet excluded) and all it sent
in `sent`. (No MySQL test double can be installed here, so the suite has its own.)"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

COM_QUERY = 0x03
LOCAL_INFILE = 0xFB
OK_PACKET = b"\x00\x00\x00\x02\x00\x00\x00"  # OK, 0 rows, no insert id, autocommit, 0 warnings


def packet(seq: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload


def read_packet(sock: socket.socket, buffer: bytearray) -> tuple[int, bytes] | None:
    """The next whole packet from `sock` (sequence id, payload); None at end of stream."""
    while True:
        if len(buffer) >= 4:
            length = int.from_bytes(buffer[:3], "little")
            if len(buffer) >= 4 + length:
                seq, payload = buffer[3], bytes(buffer[4 : 4 + length])
                del buffer[: 4 + length]
                return seq, payload
        data = sock.recv(65536)
        if not data:
            return None
        buffer.extend(data)


@dataclass
class _Session:
    """One client connection's protocol state, shared by its two pumps."""

    client: socket.socket
    server: socket.socket
    lock: threading.Lock = field(default_factory=threading.Lock)
    awaiting_first: bool = False  # a query was sent: the server's next packet starts its answer
    uploading: bool = False  # the client is answering a file request
    faked: bool = False  # the request came from the proxy: answer the end packet with an OK


class RogueMySQL:
    def __init__(
        self,
        target: tuple[str, int],
        *,
        rewrite_to: Path | None = None,
        ask_first: tuple[bytes, Path] | None = None,
    ) -> None:
        self.target = target
        self.rewrite_to = rewrite_to
        self.ask_first = ask_first
        self.requests: list[bytes] = []  # file names asked of the client
        self.uploads: list[bytes] = []  # what the client sent for each request
        self.sent = bytearray()  # every byte the client sent
        self._asked = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target, timeout=10)
            server.settimeout(None)
            self._sockets += [client, server]
            session = _Session(client, server)
            threading.Thread(target=self._from_client, args=(session,), daemon=True).start()
            threading.Thread(target=self._from_server, args=(session,), daemon=True).start()

    def _from_client(self, s: _Session) -> None:
        buffer = bytearray()
        with contextlib.suppress(OSError):
            while (item := read_packet(s.client, buffer)) is not None:
                seq, payload = item
                self.sent.extend(packet(seq, payload))
                with s.lock:
                    reply = self._client_packet(s, seq, payload)
                if reply is None:
                    s.server.sendall(packet(seq, payload))
                else:
                    s.client.sendall(reply)
        self._hang_up(s)

    def _client_packet(self, s: _Session, seq: int, payload: bytes) -> bytes | None:
        """Note a packet of the client; None to forward it, else what the proxy answers."""
        if s.uploading:
            if payload:
                self.uploads[-1] += payload
                return None
            s.uploading = False
            if s.faked:  # the real server never saw the request: the proxy ends it
                s.faked = False
                return packet(seq + 1, OK_PACKET)
        elif seq == 0 and payload[:1] == bytes([COM_QUERY]):
            if self._should_ask(payload):
                return self._ask(s)
            s.awaiting_first = True
        return None

    def _should_ask(self, query: bytes) -> bool:
        if self.ask_first is None or self._asked or self.ask_first[0] not in query:
            return False
        self._asked = True
        return True

    def _ask(self, s: _Session) -> bytes:
        assert self.ask_first is not None
        name = str(self.ask_first[1]).encode()
        self.requests.append(name)
        self.uploads.append(b"")
        s.uploading = s.faked = True
        return packet(1, bytes([LOCAL_INFILE]) + name)

    def _from_server(self, s: _Session) -> None:
        buffer = bytearray()
        with contextlib.suppress(OSError):
            while (item := read_packet(s.server, buffer)) is not None:
                seq, payload = item
                with s.lock:
                    if s.awaiting_first:
                        s.awaiting_first = False
                        if payload[:1] == bytes([LOCAL_INFILE]):
                            if self.rewrite_to is not None:
                                payload = bytes([LOCAL_INFILE]) + str(self.rewrite_to).encode()
                            self.requests.append(payload[1:])
                            self.uploads.append(b"")
                            s.uploading = True
                s.client.sendall(packet(seq, payload))
        self._hang_up(s)

    def _hang_up(self, s: _Session) -> None:
        for sock in (s.client, s.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
