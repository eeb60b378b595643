"""api/transport/header_timeout.py: the request-head deadline, on a real uvicorn server in this process.

The server is started as BentoML's worker starts it (``uvicorn.Config`` without ``http=``, served
on a socket it is handed), with a 0.5 s deadline; the client is a raw socket, so a request can
stop anywhere in its head.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http import auto
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.transport.header_timeout import HeaderDeadlineProtocol, install, uninstall

DEADLINE_S = 0.5
WAIT_S = 3.0  # a connection still open this long after the deadline is held
REQUEST = b"GET / HTTP/1.1\r\nHost: armor\r\n\r\n"
PARTIAL_HEAD = b"GET / HTTP/1.1\r\nHost: arm"
TIMEOUT_BODY = {
    "error": {"status": 408, "type": "request_timeout", "message": "the request headers did not arrive within 0.5 s"}
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """200 "ok"; /slow answers after 1 s."""
    if scope["path"] == "/slow":
        await asyncio.sleep(1.0)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(autouse=True)
def _uninstall() -> Iterator[None]:
    yield
    uninstall()


@contextmanager
def uvicorn_server(
    header_timeout_s: float, keep_alive_s: int, served: ASGIApp
) -> Iterator[tuple[uvicorn.Server, tuple[str, int]]]:
    """A uvicorn server in a thread, with the deadline installed, serving ``served``; yields it and its address."""
    install(header_timeout_s)
    config = uvicorn.Config(
        served, lifespan="off", log_config=None, timeout_keep_alive=keep_alive_s, server_header=False
    )
    listening = socket.create_server(("127.0.0.1", 0))
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    started = time.monotonic()
    while not instance.started and time.monotonic() - started < 5:
        time.sleep(0.01)
    try:
        yield instance, listening.getsockname()
    finally:
        instance.should_exit = True
        thread.join(5)
        listening.close()


@contextmanager
def server(header_timeout_s: float, keep_alive_s: int = 5) -> Iterator[tuple[str, int]]:
    """``uvicorn_server`` of ``app``; yields its address."""
    with uvicorn_server(header_timeout_s, keep_alive_s, app) as (_, address):
        yield address


def read_until_closed(conn: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and the seconds that took."""
    conn.settimeout(WAIT_S)
    started, data = time.monotonic(), b""
    while chunk := conn.recv(65536):
        data += chunk
    return data, time.monotonic() - started


def read_response(conn: socket.socket) -> bytes:
    """One response with a Content-Length body."""
    conn.settimeout(WAIT_S)
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    length = int(lengths[0])
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def status_and_body(response: bytes) -> tuple[int, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def test_a_partial_request_head_gets_408_with_the_error_body_and_is_closed():
    with server(DEADLINE_S) as address, socket.create_connection(address) as conn:
        conn.sendall(PARTIAL_HEAD)
        response, elapsed = read_until_closed(conn)
    status, body = status_and_body(response)
    assert status == 408 and json.loads(body) == TIMEOUT_BODY
    assert b"connection: close" in response.lower()
    assert DEADLINE_S * 0.9 < elapsed < DEADLINE_S + 1.5


def test_a_partial_request_line_gets_408():
    with server(DEADLINE_S) as address, socket.create_connection(address) as conn:
        conn.sendall(b"GE")
        response, _ = read_until_closed(conn)
    assert status_and_body(response)[0] == 408


def test_a_connection_that_sends_nothing_is_closed_without_an_answer():
    with server(DEADLINE_S) as address, socket.create_connection(address) as conn:
        response, elapsed = read_until_closed(conn)
    assert response == b"" and elapsed < DEADLINE_S + 1.5


def test_a_complete_request_is_served():
    with server(DEADLINE_S) as address, socket.create_connection(address) as conn:
        conn.sendall(REQUEST)
        assert status_and_body(read_response(conn)) == (200, b"ok")


def test_a_slow_head_that_completes_within_the_deadline_is_served():
    with server(DEADLINE_S) as address, socket.create_connection(address) as conn:
        for start in range(0, len(REQUEST), 8):
            conn.sendall(REQUEST[start : start + 8])
            time.sleep(0.05)  # 5 pieces: 0.25 s in all
        assert status_and_body(read_response(conn)) == (200, b"ok")


def test_a_keep_alive_connection_may_idle_between_requests_beyond_the_deadline():
    with server(DEADLINE_S) as address, socket.create_connection(address) as conn:
        conn.sendall(REQUEST)
        assert status_and_body(read_response(conn))[0] == 200
        time.sleep(DEADLINE_S * 2)  # idle: uvicorn's keep-alive timeout (5 s here) applies, not the deadline
        conn.sendall(REQUEST)
        assert status_and_body(read_response(conn))[0] == 200


def test_a_partial_head_on_a_keep_alive_connection_gets_408_from_its_first_byte():
    with server(DEADLINE_S) as address, socket.create_connection(address) as conn:
        conn.sendall(REQUEST)
        assert status_and_body(read_response(conn))[0] == 200
        time.sleep(DEADLINE_S * 1.5)
        conn.sendall(PARTIAL_HEAD)
        response, elapsed = read_until_closed(conn)
    assert status_and_body(response)[0] == 408
    assert DEADLINE_S * 0.9 < elapsed < DEADLINE_S + 1.5


def test_an_idle_keep_alive_connection_is_closed_by_uvicorns_keep_alive_timeout():
    with server(0, keep_alive_s=1) as address, socket.create_connection(address) as conn:
        conn.sendall(REQUEST)
        assert status_and_body(read_response(conn))[0] == 200
        response, elapsed = read_until_closed(conn)
    assert response == b"" and elapsed < 2.5


def test_a_response_in_progress_is_finished_before_a_pipelined_stalled_head_closes_the_connection():
    with server(DEADLINE_S) as address, socket.create_connection(address) as conn:
        conn.sendall(b"GET /slow HTTP/1.1\r\nHost: armor\r\n\r\n" + PARTIAL_HEAD)
        response, _ = read_until_closed(conn)
    status, body = status_and_body(response)
    assert (status, body) == (200, b"ok") and b"connection: close" in response.lower()


def test_uvicorn_alone_holds_a_partial_head():
    """Why the module exists: if this fails, uvicorn times out heads itself; the patch may go."""
    with server(0) as address, socket.create_connection(address) as conn:
        conn.sendall(PARTIAL_HEAD)
        conn.settimeout(DEADLINE_S * 2)
        with pytest.raises(TimeoutError):
            conn.recv(1)


def test_install_swaps_the_class_uvicorn_resolves_for_http_auto_and_uninstall_restores_it():
    install(1.5)
    install(2.5)  # installing again replaces, never stacks
    config = uvicorn.Config(app)
    assert config.http == "auto"
    config.load()
    assert issubclass(config.http_protocol_class, HeaderDeadlineProtocol)
    assert config.http_protocol_class.header_timeout_s == 2.5  # type: ignore[attr-defined]
    assert config.http_protocol_class.__mro__[2] is HttpToolsProtocol
    uninstall()
    assert auto.AutoHTTPProtocol is HttpToolsProtocol


def test_zero_switches_off_the_deadline_only():
    """HEADER_READ_TIMEOUT_S=0: no head deadline, but each response still leaves in one write."""
    install(0)
    config = uvicorn.Config(app)
    config.load()
    assert issubclass(config.http_protocol_class, HeaderDeadlineProtocol)
    assert config.http_protocol_class.header_timeout_s == 0  # type: ignore[attr-defined]
    with server(0) as address, socket.create_connection(address) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # half a head, then nothing
        client.settimeout(0.5)
        with pytest.raises(TimeoutError):  # no 408, no close: the connection waits for the rest
            client.recv(100)
        client.sendall(b"\r\n")
        client.settimeout(5)
        assert client.recv(1000).startswith(b"HTTP/1.1 200")


def test_bentoml_starts_uvicorn_with_its_default_protocol():
    """The patch reaches BentoML's workers only while they leave ``http=`` to uvicorn's "auto"."""
    from _bentoml_impl.worker import service as worker

    source = inspect.getsource(worker.main.callback)  # a click command
    assert "uvicorn.Config(" in source and "http=" not in source
    assert source.index("load(bento_identifier") < source.index("uvicorn.Server(config).run(")


class _RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_a_responses_writes_of_one_loop_step_leave_in_one_write() -> None:
    from api.transport.header_timeout import _OneWritePerStep

    async def scenario() -> tuple[list[bytes], list[bytes], list[bytes], str]:
        real = _RecordingTransport()
        corked = _OneWritePerStep(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        corked.write(b"HTTP/1.1 200 OK\r\n\r\n")
        corked.write(b"body")
        during = list(real.writes)
        await asyncio.sleep(0)
        after_step = list(real.writes)
        corked.write(b"chunk")  # a streamed chunk in a later step leaves on its own
        corked.close()  # closing writes what is pending first
        return during, after_step, real.writes, corked.get_extra_info("peername")

    during, after_step, final, info = asyncio.run(scenario())
    assert during == [] and after_step == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    assert final == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"chunk"] and info == "info:peername"


def test_a_streamed_response_that_ends_in_the_step_of_a_shutdown_is_written_whole() -> None:
    """uvicorn's shutdown closes a connection whose response is complete at once; the response's
    last chunk, written in that same step, must reach the client first (issue 35's drain test lost it)."""
    servers: list[uvicorn.Server] = []

    async def streamed(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})  # chunked
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b"last", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        for connection in list(servers[0].server_state.connections):
            connection.shutdown()  # as uvicorn's Server.shutdown, in the step the response ended

    with uvicorn_server(DEADLINE_S, 5, streamed) as (instance, address), socket.create_connection(address) as conn:
        servers.append(instance)
        conn.sendall(REQUEST)
        data, _ = read_until_closed(conn)
    assert data.endswith(b"5\r\nfirst\r\n4\r\nlast\r\n0\r\n\r\n"), data


# ---- head size and field count (issue 34: a 1 MB header and 5,000 headers were accepted)


def _request(head_lines: list[bytes]) -> bytes:
    return b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(line + b"\r\n" for line in head_lines) + b"\r\n"


@pytest.mark.parametrize(
    "head_lines, says",
    [
        ([b"X-Big: " + b"a" * 40_000], "over 32768 bytes"),
        ([f"X-H{i}: v".encode() for i in range(150)], "more than 100 request header fields"),
    ],
)
def test_a_head_over_the_limits_is_431_with_the_json_body(head_lines, says):
    with server(5.0) as address, socket.create_connection(address) as conn:
        conn.sendall(_request(head_lines))
        data, _ = read_until_closed(conn)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), head[:80]
    error = json.loads(body)["error"]
    assert (error["status"], error["type"]) == (431, "headers_too_large") and says in error["message"]


def test_an_endless_header_is_refused_as_it_arrives():
    """httptools buffers a header until it ends: the bytes of an unfinished head are counted too."""
    with server(5.0) as address, socket.create_connection(address) as conn:
        # just over the limit, never ended: what the server closes on is all read (no reset)
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"a" * 33_000)
        data, seconds = read_until_closed(conn)
    assert data.startswith(b"HTTP/1.1 431 ") and seconds < WAIT_S


def test_a_head_within_the_limits_is_served():
    lines = [f"X-H{i}: v".encode() for i in range(90)] + [b"X-Big: " + b"a" * 20_000]
    with server(5.0) as address, socket.create_connection(address) as conn:
        conn.sendall(_request([*lines, b"Connection: close"]))
        data, _ = read_until_closed(conn)
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"ok")
