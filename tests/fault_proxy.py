"""A fault-injecting TCP proxy for tests: between the engine and MariaDB, it forwards
bytes, and on command drops every connection, delays every chunk, or refuses new
connections for a while. (No such tool can be installed here, so the suite has its own.)"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any


class FaultProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.delay = 0.0  # seconds added before forwarding each chunk
        self.refusing = False  # new connections are closed at once
        self.connections = 0  # accepted (and forwarded) so far
        self.dropped = 0
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    # -- faults ----------------------------------------------------------------------------

    def drop_all(self) -> int:
        """Cut every open connection, as a network failure would."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self.dropped += len(pairs)
        return len(pairs)

    @contextlib.contextmanager
    def refuse(self) -> Any:
        """Refuse new connections (and cut the open ones) while inside the block."""
        self.refusing = True
        self.drop_all()
        try:
            yield
        finally:
            self.refusing = False

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.drop_all()

    # -- forwarding ------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if self.delay:
                    time.sleep(self.delay)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
