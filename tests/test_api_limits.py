"""Clients that stall the API: idle or slow connections, huge heads, too many connections.

A real `coffeeshop serve` process, real sockets.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import assert_one_line_error, free_port, http_get, wait_for_health
from test_api_support import fill, sync


class LimitedServer:
    def __init__(self, tmp_path: Path, *, env: dict[str, str], open_files: int | None) -> None:
        self.port = free_port()
        self.log = tmp_path / f"serve-{self.port}.log"
        url = f"sqlite:///{tmp_path / 'analysis.db'}"
        args = ["serve", "--db", url, "--port", str(self.port)]
        full_env = {**os.environ, "COFFEESHOP_LOG_LEVEL": "INFO", **env}
        full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)

        def limit_files() -> None:
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "coffeeshop", *args],
                cwd=tmp_path,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=limit_files,
            )
        wait_for_health(self.process, self.port, self.output, deadline=time.monotonic() + 120)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


Start = Callable[..., LimitedServer]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    fill(f"sqlite:///{tmp_path / 'analysis.db'}", tmp_path)
    servers: list[LimitedServer] = []

    def run(*, open_files: int | None = None, **env: str) -> LimitedServer:
        server = LimitedServer(tmp_path, env=env, open_files=open_files)
        servers.append(server)
        return server

    yield run
    for server in servers:
        server.stop()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=60)  # bounds a failure only


def read_until_closed(sock: socket.socket, *, within: float) -> bytes:
    """Everything the server sends until it closes; AssertionError if still open `within`
    seconds from now."""
    sock.settimeout(within)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        raise AssertionError(f"still open after {within} s (received {received[:80]!r})") from None
    except ConnectionResetError:
        pass
    return received


def read_response(sock: socket.socket) -> bytes:
    """One whole response (head and Content-Length body) from a keep-alive connection."""
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, data
        body += chunk
    return head + b"\r\n\r\n" + body


def test_a_connection_that_sends_nothing_is_closed(start: Start) -> None:
    server = start(COFFEESHOP_API_REQUEST_TIMEOUT="1")
    with connect(server.port) as idle:
        began = time.monotonic()
        assert read_until_closed(idle, within=8) == b""
        assert time.monotonic() - began >= 0.9  # closed by the timeout, not at once
    assert http_get(server.port, "/health")[0] == 200


def test_half_a_request_head_is_answered_408_and_closed(start: Start) -> None:
    server = start(COFFEESHOP_API_REQUEST_TIMEOUT="1")
    with connect(server.port) as slow:
        slow.sendall(b"GET /store_monthly HTTP/1.1\r\nHost: x\r\nX-Slow: 1")
        reply = read_until_closed(slow, within=8)
    assert reply.startswith(b"HTTP/1.1 408 "), reply


def test_a_trickling_client_is_closed_even_though_bytes_keep_coming(start: Start) -> None:
    server = start(COFFEESHOP_API_REQUEST_TIMEOUT="1")
    with connect(server.port) as slow:
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        closed = False
        for _ in range(40):  # a header byte every 0.1 s: never a complete head
            try:
                slow.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.1)
        if not closed:
            reply = read_until_closed(slow, within=1)
            assert reply.startswith(b"HTTP/1.1 408 "), reply


def test_a_keep_alive_connection_gets_the_timeout_again_after_each_response(
    start: Start,
) -> None:
    server = start(COFFEESHOP_API_REQUEST_TIMEOUT="1", COFFEESHOP_API_KEEP_ALIVE="30")
    with connect(server.port) as client:
        for _ in range(2):
            client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(client).startswith(b"HTTP/1.1 200 ")
            time.sleep(0.5)  # under the timeout: still open for the next request
        client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # half a head, then nothing
        assert read_until_closed(client, within=8).startswith(b"HTTP/1.1 408 ")


def test_idle_connections_beyond_the_file_limit_do_not_lock_clients_out(start: Start) -> None:
    """1,100 idle connections against a server limited to 1,024 open files: before, every
    new client failed until the idle ones went away (they never did)."""
    server = start(open_files=1024, COFFEESHOP_API_REQUEST_TIMEOUT="300")
    idle: list[socket.socket] = []
    try:
        for _ in range(1100):
            idle.append(connect(server.port))
        time.sleep(1)  # let the server accept them all
        for _ in range(5):
            status, body = http_get(server.port, "/store_peak_hours")
            assert status == 200 and body.startswith(b"[{")
    finally:
        for sock in idle:
            sock.close()
    assert "Traceback" not in server.output()


SLOW_APP = """
import asyncio, functools, sys
import uvicorn
from coffeeshop.api.connections import ConnectionLimits, GuardedHttpToolsProtocol

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(30)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})

limits = ConnectionLimits(max_connections=3, request_timeout=300)
protocol = functools.partial(GuardedHttpToolsProtocol, limits=limits)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http=protocol, log_level="warning")
"""


def test_when_every_connection_is_busy_a_new_one_gets_503(tmp_path: Path) -> None:
    """The cap closes idle connections first; with none idle, a new connection is refused."""
    script = tmp_path / "slow_app.py"
    script.write_text(SLOW_APP)
    port = free_port()
    process = subprocess.Popen([sys.executable, str(script), str(port)])
    busy: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if http_get(port, "/fast")[0] == 200:
                    break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        with connect(port) as idle:  # idle: the first to go when the cap is reached
            for _ in range(3):
                sock = connect(port)
                sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
                busy.append(sock)
            assert read_until_closed(idle, within=5) == b""
            with connect(port) as extra:
                extra.sendall(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
                reply = read_until_closed(extra, within=5)
            assert reply.startswith(b"HTTP/1.1 503 "), reply
    finally:
        for sock in busy:
            sock.close()
        process.kill()
        process.wait()


def stream_huge_header(port: int, size: int, result: dict[str, object]) -> None:
    """Send a GET whose one header is `size` bytes, in 64 KiB writes; record the reply."""
    chunk = b"a" * 65536
    sent = 0
    with connect(port) as sock:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Huge: ")
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        result["sent"] = sent
        try:
            result["reply"] = read_until_closed(sock, within=60)
        except (AssertionError, OSError) as exc:
            result["reply"] = repr(exc).encode()


def test_a_huge_header_gets_431_and_does_not_hold_up_others(start: Start) -> None:
    server = start()
    result: dict[str, object] = {}
    sender = threading.Thread(target=stream_huge_header, args=(server.port, 48 << 20, result))
    sender.start()
    try:
        answered = 0
        while sender.is_alive() and answered < 20:
            assert http_get(server.port, "/health")[0] == 200  # within its 5 s timeout
            answered += 1
    finally:
        sender.join(timeout=120)
    assert not sender.is_alive()
    reply = result["reply"]
    assert isinstance(reply, bytes) and reply.startswith(b"HTTP/1.1 431 "), repr(reply)[:200]

    assert "Traceback" not in server.output()


def test_a_head_just_under_the_limit_is_served(start: Start) -> None:
    server = start()
    padding = b"b" * (60 * 1024)
    with connect(server.port) as client:
        client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + padding + b"\r\n\r\n")
        assert read_response(client).startswith(b"HTTP/1.1 200 ")


def test_a_head_just_over_the_limit_gets_431(start: Start) -> None:
    server = start(COFFEESHOP_API_MAX_HEADER_BYTES="8192")
    with connect(server.port) as client:
        client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"b" * 8200 + b"\r\n\r\n")
        assert read_until_closed(client, within=8).startswith(b"HTTP/1.1 431 ")


# -- request bodies and chunked trailers ---------------------------------------------------------


def stream_huge_trailer(port: int, size: int, result: dict[str, object]) -> None:
    """A chunked GET whose body is empty and whose one trailer field is `size` bytes."""
    chunk = b"t" * 65536
    with connect(port) as sock:
        try:
            sock.sendall(
                b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"0\r\nX-Trailer: "
            )
            sent = 0
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            result["reply"] = read_until_closed(sock, within=60)
        except (AssertionError, OSError) as exc:
            result["reply"] = repr(exc).encode()


def test_a_chunked_request_is_refused_without_reading_its_trailers(start: Start) -> None:
    """Before: trailers escaped the head limit (60.8 MiB of one field per connection, /health
    up to 10.3 s). Now a request announcing a body gets 413 and is closed unread."""
    server = start()
    result: dict[str, object] = {}
    sender = threading.Thread(target=stream_huge_trailer, args=(server.port, 32 << 20, result))
    sender.start()
    try:
        answered = 0
        while sender.is_alive() and answered < 20:
            assert http_get(server.port, "/health")[0] == 200
            answered += 1
    finally:
        sender.join(timeout=120)
    assert not sender.is_alive()
    reply = result["reply"]
    assert isinstance(reply, bytes) and reply.startswith(b"HTTP/1.1 413 "), repr(reply)[:200]
    assert "Traceback" not in server.output()


@pytest.mark.parametrize(
    "head",
    [
        b"GET /store_monthly HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /store_monthly HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
)
def test_a_request_with_a_body_gets_413_and_is_closed(start: Start, head: bytes) -> None:
    server = start()
    with connect(server.port) as client:
        client.sendall(head)
        reply = read_until_closed(client, within=8)
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
    assert reply.count(b"HTTP/1.1") == 1, reply  # no second answer from the parser or the app


def test_an_empty_content_length_is_no_body(start: Start) -> None:
    server = start()
    with connect(server.port) as client:
        client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert read_response(client).startswith(b"HTTP/1.1 200 ")


# -- clients that never read their response ------------------------------------------------------

# Responses larger than the kernel buffers of a loopback connection (4 MiB): one sent as one
# piece (JSON: complete at once, then only the write buffer holds it), and a static file
# asked for 8 times in a row on one connection (pipelined), which is sent in pieces (the
# response stays in progress).
WHOLE = ("/quarantine?limit=1000", 1)
PIECES = ("/dashboard/vendor/chart.js/chart.umd.min.js.map", 8)


def add_big_quarantine(tmp_path: Path) -> None:
    """1,000 quarantined lines of 1,000 control characters: /quarantine?limit=1000 writes each
    as a 6-byte escape, ~6 MB in one JSON body."""
    lines = [f"{n:04d}" + "\x01" * 996 for n in range(1000)]
    sync(f"sqlite:///{tmp_path / 'analysis.db'}", tmp_path / "receipts.jsonl", lines)


def stalled_client(port: int, path: str, times: int = 1) -> socket.socket:
    """A client that asks for `path` (`times` times, pipelined) and never reads (a tiny
    receive buffer, so the server's writes stall soon)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() * times)
    return sock


def tcp_state(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


TCP_ESTABLISHED = 1


def health_or_503(port: int) -> int:
    try:
        return http_get(port, "/health")[0]
    except OSError:  # refused by the cap: closed before or after the 503
        return 503


@pytest.mark.parametrize(("path", "times"), [WHOLE, PIECES])
def test_clients_that_never_read_are_evicted_by_the_cap(
    start: Start, tmp_path: Path, path: str, times: int
) -> None:
    """Before: a connection stalled on writing was never evicted (and one whose whole response
    sat in the write buffer stayed counted after its close), so with the cap reached every new
    request, /health included, got 503 while they stayed."""
    add_big_quarantine(tmp_path)
    server = start(COFFEESHOP_API_MAX_CONNECTIONS="8", COFFEESHOP_API_SEND_TIMEOUT="3600")
    stalled = [stalled_client(server.port, path, times) for _ in range(8)]
    try:
        deadline = time.monotonic() + 120
        while health_or_503(server.port) != 200:
            assert time.monotonic() < deadline, "every new request still got 503"
            time.sleep(0.1)
        for _ in range(2 * len(stalled) + 2):  # more than there were stalled clients
            assert health_or_503(server.port) == 200
    finally:
        for sock in stalled:
            sock.close()
    assert "Traceback" not in server.output()


@pytest.mark.parametrize(("path", "times"), [WHOLE, PIECES])
def test_a_client_that_never_reads_is_disconnected_after_the_send_timeout(
    start: Start, tmp_path: Path, path: str, times: int
) -> None:
    add_big_quarantine(tmp_path)
    server = start(COFFEESHOP_API_SEND_TIMEOUT="1", COFFEESHOP_API_KEEP_ALIVE="1")
    with stalled_client(server.port, path, times) as sock:
        deadline = time.monotonic() + 120
        while tcp_state(sock) == TCP_ESTABLISHED:
            assert time.monotonic() < deadline, "the server still holds the connection"
            time.sleep(0.1)
    assert http_get(server.port, "/health")[0] == 200
    assert "Traceback" not in server.output()


def test_a_slow_but_steady_reader_gets_the_whole_response(start: Start) -> None:
    """The send timeout counts time without progress, not the time a response takes."""
    server = start(COFFEESHOP_API_SEND_TIMEOUT="5")
    sock = stalled_client(server.port, PIECES[0])
    with sock:
        sock.settimeout(10)
        received = b""
        began = time.monotonic()
        while chunk := sock.recv(16384):
            received += chunk
            if b"\r\n\r\n" in received:
                head, _, body = received.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(body) >= length:
                    break
            time.sleep(0.005)  # ~1 MB at a few MB/s: slower than the server, never 5 s idle
    assert len(body) == length, (len(body), length, time.monotonic() - began)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COFFEESHOP_API_MAX_CONNECTIONS", "0"),
        ("COFFEESHOP_API_SEND_TIMEOUT", "0"),
        ("COFFEESHOP_API_ALLOWED_HOSTS", "http://shop.example"),
        ("COFFEESHOP_API_REQUEST_TIMEOUT", "abc"),
        ("COFFEESHOP_API_MAX_HEADER_BYTES", "100"),
    ],
)
def test_a_bad_limit_is_one_line_and_exit_2(tmp_path: Path, variable: str, value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "coffeeshop", "serve", "--db", f"sqlite:///{tmp_path / 'a.db'}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, variable: value},
        timeout=60,
    )
    assert_one_line_error(result, variable)
