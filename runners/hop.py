"""The API -> runner hop for the default models: feature rows as raw float64 over a Unix socket.

Why not BentoML's client for every call: one call through it (aiohttp, BentoML's serde of the
ndarray, uvicorn, Starlette and the endpoint's pydantic model on the runner side, and back) cost
1.43 ms p50 on an idle machine and ~0.8 ms of CPU per uncached request, which made a new material
through the service 2-3x slower than the same code in one process (issue 12). The rows are
already a float64 array and the answer is one (``runners.contract``): they only need framing.

Each runner worker listens on ``<dir>/<worker index>.sock`` (``socket_paths``); each API worker
keeps one connection per runner worker and multiplexes calls on it by request id. Both sides are
asyncio protocols (no reading task, no coroutine step per frame), and a runner worker answers the
calls that arrive together, from every API worker, as one model call per kind (``HopServer``).

    request:  id u32 | family u8 | flags u8 | rows u32 | columns u32 | request id length u8 |
              rows*columns float64 | request id (ASCII, after the rows: they stay 8-byte aligned)
              (flags: 1 explain, 2 past the prediction cache, 4 material rows, not feature rows;
              the request id is the one of monitoring/request_id.py, of the request whose task sent
              the call: the runner's log lines for the call carry it)
    answer:   id u32 | status u8 | rows u32 | columns u32 | rows*columns float64   (status 0)
              id u32 | status u8 | 0 u32    | length u32 | UTF-8 message          (status 1)

Only the default model of a family goes this way: pinned versions, model cards and every error
status stay on BentoML's endpoints (runners/services.py), which remain the contract. When no
runner socket answers (a runner starting, restarting or killed), ``SocketHop.predict`` returns
None and the caller uses BentoML's client, so failures and recovery look exactly as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitoring.logs import REQUEST_ID
from runners.contract import RowKind

logger = logging.getLogger("armor.hop")

REQUEST = struct.Struct("<IBBIIB")
ANSWER = struct.Struct("<IBII")
OK, FAILED = 0, 1
FLOAT = np.dtype("<f8")

Answer = Callable[[str, np.ndarray, RowKind], np.ndarray]  # family, rows, their kind -> packed rows
EXPLAIN, UNCACHED, MATERIALS = 1, 2, 4  # request flags: a RowKind on the wire


def wire_flags(kind: RowKind) -> int:
    return (EXPLAIN if kind.explain else 0) | (0 if kind.cache else UNCACHED) | (MATERIALS if kind.materials else 0)


def row_kind(flags: int) -> RowKind:
    return RowKind(explain=bool(flags & EXPLAIN), cache=not flags & UNCACHED, materials=bool(flags & MATERIALS))


def serve_directory(shared_dir: str | None) -> Path | None:
    """The hop sockets of this ``bentoml serve``: beside the directory it shares with its workers,
    under the serve's PID (every worker's parent), so two serves never meet; None outside a serve."""
    return None if shared_dir is None else Path(shared_dir).parent / "armor_hop" / str(os.getppid())


def socket_paths(directory: Path, workers: int) -> list[Path]:
    """One socket per runner worker (BentoML's worker index is 1-based)."""
    return [directory / f"{index}.sock" for index in range(1, workers + 1)]


class HopFailed(RuntimeError):
    """The runner answered the call with an error (its message is kept)."""


class RunnerSilent(TimeoutError):
    """The runner sent nothing on the connection for RUNNER_UNAVAILABLE_S while calls waited (a
    paused or stuck runner; a busy one keeps answering). A TimeoutError: the request is 503."""


# ---------------------------------------------------------------------------------------------
# both sides


class _Frames:
    """Whole frames out of a byte stream: a header, then a body whose size the header gives.
    Each body is copied out once, as a bytearray: the buffer can be trimmed, and an array over
    the body is writable (an answer is the caller's to change)."""

    def __init__(self, header: struct.Struct, body_size: Callable[[tuple[int, ...]], int]):
        self.header, self.body_size = header, body_size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[tuple[int, ...], bytearray]]:
        buffer = self._buffer
        buffer += data
        frames: list[tuple[tuple[int, ...], bytearray]] = []
        position, end = 0, len(buffer)
        while end - position >= self.header.size:
            head = self.header.unpack_from(buffer, position)
            start = position + self.header.size
            stop = start + self.body_size(head)
            if stop > end:
                break
            frames.append((head, buffer[start:stop]))
            position = stop
        del buffer[:position]
        return frames


def _request_body(head: tuple[int, ...]) -> int:
    _, _, _, rows, columns, id_length = head
    return id_length + rows * columns * FLOAT.itemsize


def _answer_body(head: tuple[int, ...]) -> int:
    _, status, rows, columns = head
    return rows * columns * FLOAT.itemsize if status == OK else columns


# ---------------------------------------------------------------------------------------------
# runner side


@dataclass
class _Call:
    connection: _ServerConnection
    ident: int
    family: int
    flags: int
    rows: np.ndarray
    request_id: str | None = None


class HopServer:
    """Serves one runner worker's default models on a Unix socket, on the worker's event loop.

    The calls that arrive together, from any API worker's connection, are answered together: a
    call is queued when its frame is read and the queue is answered one step of the event loop
    later, the calls of one kind (family, flags) as one model call. A model call costs about as
    much for 8 rows as for 1 (docs/performance.md, The pieces), and while one runs the next API calls wait
    in the sockets, so under load each answer takes the calls of both API workers at once. The
    answer is computed inline, as BentoML's endpoint did: the rows are already batches. A merged
    call that fails is answered call by call, so a failure stays with the call that caused it.
    """

    def __init__(self, path: Path, families: Sequence[str], answer: Answer):
        self.path, self.families, self._answer = path, tuple(families), answer
        self._server: asyncio.AbstractServer | None = None
        self._queue: list[_Call] = []
        self.model_calls = 0  # calls of the answer function (merged calls count once)

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # this user's processes only
        # a socket file left by a killed worker of the same index is replaced by the event loop
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _ServerConnection(self), path=str(self.path))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        with contextlib.suppress(OSError):  # the serve's directory, once its last worker is gone
            self.path.parent.rmdir()

    def queue(self, call: _Call) -> None:
        if not self._queue:
            asyncio.get_running_loop().call_soon(self._answer_queued)
        self._queue.append(call)

    def _answer_queued(self) -> None:
        queued, self._queue = self._queue, []
        kinds: dict[tuple[int, int], list[_Call]] = {}
        for call in queued:
            kinds.setdefault((call.family, call.flags), []).append(call)
        replies: dict[_ServerConnection, list[bytes]] = {}
        for calls in kinds.values():
            for call, reply in zip(calls, self._replies(calls), strict=True):
                replies.setdefault(call.connection, []).append(reply)
        for connection, parts in replies.items():
            connection.write(b"".join(parts))

    def _replies(self, calls: list[_Call]) -> list[bytes]:
        """One model call for all of them; call by call if it fails."""
        if len(calls) == 1:
            return [self._reply(calls[0], calls[0].rows)]
        first = calls[0]
        try:
            answer = self._compute(first.family, first.flags, np.vstack([c.rows for c in calls]))
        except Exception:
            return [self._reply(call, call.rows) for call in calls]
        bounds = np.cumsum([0] + [call.rows.shape[0] for call in calls])
        return [_ok(call, answer[start:stop]) for call, start, stop in zip(calls, bounds[:-1], bounds[1:], strict=True)]

    def _compute(self, family: int, flags: int, rows: np.ndarray) -> np.ndarray:
        self.model_calls += 1
        answer = self._answer(self.families[family], rows, row_kind(flags))
        return np.ascontiguousarray(answer, FLOAT)

    def _reply(self, call: _Call, rows: np.ndarray) -> bytes:
        try:
            packed = self._compute(call.family, call.flags, rows)
        except Exception as exc:  # the API answers it as the endpoint's failure would be
            token = REQUEST_ID.set(call.request_id)
            try:
                logger.exception("hop call failed")
            finally:
                REQUEST_ID.reset(token)
            message = f"{type(exc).__name__}: {exc}".encode()
            return ANSWER.pack(call.ident, FAILED, 0, len(message)) + message
        return _ok(call, packed)


def _ok(call: _Call, packed: np.ndarray) -> bytes:
    """The answer frame of a call that succeeded."""
    return ANSWER.pack(call.ident, OK, packed.shape[0], packed.shape[1]) + packed.tobytes()


class _ServerConnection(asyncio.Protocol):
    """One API worker's connection to this runner worker: frames in, queued on the server."""

    def __init__(self, server: HopServer):
        self.server, self.frames = server, _Frames(REQUEST, _request_body)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a unix socket's (uvloop's is no asyncio.Transport)

    def data_received(self, data: bytes) -> None:
        for (ident, family, flags, rows, columns, id_length), body in self.frames.feed(data):
            values = np.frombuffer(body, FLOAT, count=rows * columns).reshape(rows, columns)
            request_id = body[len(body) - id_length :].decode("ascii", errors="replace") if id_length else None
            self.server.queue(_Call(self, ident, family, flags, values, request_id))

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def pause_writing(self) -> None:  # an API worker that does not read its answers is not read either
        assert self.transport is not None
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        assert self.transport is not None
        self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None  # the API worker closed its connection; queued answers are dropped


# ---------------------------------------------------------------------------------------------
# API side


class _Connection(asyncio.Protocol):
    """One connection to one runner worker; calls multiplexed by id, answers settled as their
    frames arrive (a protocol, not a reading task: no coroutine step per answer)."""

    def __init__(self, silence_s: float | None = None) -> None:
        self.pending: dict[int, asyncio.Future[np.ndarray]] = {}
        self.next_id = 0
        self.frames = _Frames(ANSWER, _answer_body)
        self.transport: asyncio.Transport | None = None
        self.silence_s, self.last_heard = silence_s, time.monotonic()
        self.last_answer = 0.0  # when the runner last sent anything (monotonic s)
        self._watchdog: asyncio.TimerHandle | None = None

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a unix socket's (uvloop's is no asyncio.Transport)

    def send(self, family: int, rows: np.ndarray, flags: int) -> asyncio.Future[np.ndarray]:
        if self.transport is None:  # lost since it was chosen
            raise ConnectionError("runner connection lost")
        if not self.pending:  # the silence is counted from the first call outstanding
            self.last_heard = time.monotonic()
        self._watch()
        self.next_id = (self.next_id + 1) & 0xFFFFFFFF
        answer: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = answer
        data = np.ascontiguousarray(rows, FLOAT)
        request_id = (REQUEST_ID.get() or "").encode("ascii", errors="replace")[:255]
        head = REQUEST.pack(self.next_id, family, flags, data.shape[0], data.shape[1], len(request_id))
        self.transport.write(head + data.tobytes() + request_id)
        return answer

    def data_received(self, data: bytes) -> None:
        self.last_heard = self.last_answer = time.monotonic()
        for (ident, status, rows, columns), body in self.frames.feed(data):
            self._settle(self.pending.pop(ident, None), status, body, rows, columns)

    def _watch(self) -> None:
        """One timer a connection, not one a call: it fires ``silence_s`` after the runner was
        last heard, fails the calls still waiting if it has been silent since, else is set again."""
        if self.silence_s is not None and self._watchdog is None:
            delay = max(0.0, self.last_heard + self.silence_s - time.monotonic())
            self._watchdog = asyncio.get_running_loop().call_later(delay, self._check_silence)

    def _check_silence(self) -> None:
        self._watchdog = None
        if not self.pending or self.silence_s is None:
            return
        quiet_s = time.monotonic() - self.last_heard
        if quiet_s < self.silence_s:
            self._watch()
            return
        error = RunnerSilent(f"the runner sent nothing for {quiet_s:.1f} s")
        for answer in self.pending.values():  # a late answer to these is dropped (pending.pop)
            if not answer.done():
                answer.set_exception(error)
        self.pending.clear()

    @staticmethod
    def _settle(
        answer: asyncio.Future[np.ndarray] | None, status: int, body: bytearray, rows: int, columns: int
    ) -> None:
        if answer is None or answer.done():
            return
        if status == OK:
            answer.set_result(np.frombuffer(body, FLOAT).reshape(rows, columns))
        else:
            answer.set_exception(HopFailed(body.decode(errors="replace")))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_all(ConnectionError(f"runner connection lost: {exc or 'closed by the runner'}"))

    def _fail_all(self, exc: Exception) -> None:
        self.transport = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for answer in self.pending.values():
            if not answer.done():
                answer.set_exception(exc)
        self.pending.clear()

    async def close(self) -> None:
        transport = self.transport
        self._fail_all(ConnectionError("closed"))
        if transport is not None:
            transport.close()


class SocketHop:
    """The API worker's side: calls the runner workers' sockets, the least busy connection first.

    ``predict`` returns None when no runner socket can be reached (then the caller takes
    BentoML's route); a socket that refused is tried again after ``retry_s``. With ``silence_s``
    (RUNNER_UNAVAILABLE_S), a call raises ``RunnerSilent`` once its runner has sent nothing for
    that long: a paused or stuck runner, not a busy one, whose answers to other calls keep coming
    (a bound on each call's time failed rows of batches queued behind others under load).
    """

    def __init__(
        self, paths: Sequence[Path], families: Sequence[str], retry_s: float = 0.5, silence_s: float | None = None
    ):
        self.paths, self.retry_s, self.silence_s = list(paths), retry_s, silence_s
        self._family = {name: index for index, name in enumerate(families)}
        self._connections: dict[Path, _Connection] = {}
        self._down_until: dict[Path, float] = {}
        self._connecting: dict[Path, asyncio.Task[_Connection | None]] = {}

    async def predict(self, family: str, rows: np.ndarray, kind: RowKind) -> np.ndarray | None:
        connection = await self._connection()
        if connection is None:
            return None
        try:
            return await connection.send(self._family[family], rows, wire_flags(kind))
        except ConnectionError:
            return None  # the runner went away mid-call: BentoML's route answers (503 or the result)

    async def _connection(self) -> _Connection | None:
        live = [c for c in self._connections.values() if c.open]
        if len(live) < len(self.paths):
            live += [c for c in await self._connect_missing() if c is not None]
        return min(live, key=lambda c: len(c.pending)) if live else None

    async def _connect_missing(self) -> list[_Connection | None]:
        now = time.monotonic()
        wanted = [
            p
            for p in self.paths
            if not (p in self._connections and self._connections[p].open) and self._down_until.get(p, 0.0) <= now
        ]
        return list(await asyncio.gather(*(self._connect_once(p) for p in wanted)))

    async def _connect_once(self, path: Path) -> _Connection | None:
        """Concurrent callers share one connection attempt per socket."""
        if path not in self._connecting:
            self._connecting[path] = asyncio.create_task(self._connect(path))
        task = self._connecting[path]
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._connecting.pop(path, None)

    async def _connect(self, path: Path) -> _Connection | None:
        try:
            loop = asyncio.get_running_loop()
            _, connection = await loop.create_unix_connection(lambda: _Connection(self.silence_s), str(path))
        except OSError:
            self._down_until[path] = time.monotonic() + self.retry_s
            return None
        self._connections[path] = connection
        return connection

    def heard_within(self, seconds: float) -> bool:
        """Whether a runner answered a call on some connection within the last ``seconds`` (proof
        enough that it is alive: a busy runner is slow to answer /readyz)."""
        now = time.monotonic()
        return any(c.open and c.last_answer > now - seconds for c in self._connections.values())

    async def close(self) -> None:
        for connection in self._connections.values():
            await connection.close()
        self._connections.clear()
