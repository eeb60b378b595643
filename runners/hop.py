"""The API -> runner hop for the default models: feature rows as raw float64 over a Unix socket.

Why not BentoML's client for every call: one call through it (aiohttp, BentoML's serde of the
ndarray, uvicorn, Starlette and the endpoint's pydantic model on the runner side, and back) cost
1.43 ms p50 on an idle machine and ~0.8 ms of CPU per uncached request, which made a new material
through the service 2-3x slower than the same code in one process (issue 12). The rows are
already a float64 array and the answer is one (``runners.contract``): they only need framing.

Each runner worker listens on ``<dir>/<worker index>.sock`` (``socket_paths``); each API worker
keeps one connection per runner worker and multiplexes calls on it by request id.

    request:  id u32 | family u8 | flags u8 | rows u32 | columns u32 | rows*columns float64
              (flags: 1 explain, 2 past the prediction cache)
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
from pathlib import Path

import numpy as np

logger = logging.getLogger("armor.hop")

REQUEST = struct.Struct("<IBBII")
ANSWER = struct.Struct("<IBII")
OK, FAILED = 0, 1
FLOAT = np.dtype("<f8")

Answer = Callable[[str, np.ndarray, bool, bool], np.ndarray]  # family, rows, explain, cache -> packed rows
EXPLAIN, UNCACHED = 1, 2  # request flags


def serve_directory(shared_dir: str | None) -> Path | None:
    """The hop sockets of this ``bentoml serve``: beside the directory it shares with its workers,
    under the serve's PID (every worker's parent), so two serves never meet; None outside a serve."""
    return None if shared_dir is None else Path(shared_dir).parent / "armor_hop" / str(os.getppid())


def socket_paths(directory: Path, workers: int) -> list[Path]:
    """One socket per runner worker (BentoML's worker index is 1-based)."""
    return [directory / f"{index}.sock" for index in range(1, workers + 1)]


class HopFailed(RuntimeError):
    """The runner answered the call with an error (its message is kept)."""


# ---------------------------------------------------------------------------------------------
# runner side


class HopServer:
    """Serves one runner worker's default models on a Unix socket, on the worker's event loop
    (the answer is computed inline, as BentoML's endpoint did: the rows are already a batch)."""

    def __init__(self, path: Path, families: Sequence[str], answer: Answer):
        self.path, self.families, self._answer = path, tuple(families), answer
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # this user's processes only
        # a socket file left by a killed worker of the same index is replaced by the event loop
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        with contextlib.suppress(OSError):  # the serve's directory, once its last worker is gone
            self.path.parent.rmdir()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                ident, family, flags, rows, columns = REQUEST.unpack(await reader.readexactly(REQUEST.size))
                body = await reader.readexactly(rows * columns * FLOAT.itemsize)
                features = np.frombuffer(body, FLOAT).reshape(rows, columns)
                writer.write(self._reply(ident, family, flags, features))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the API worker closed its connection
        finally:
            writer.close()

    def _reply(self, ident: int, family: int, flags: int, rows: np.ndarray) -> bytes:
        try:
            answer = self._answer(self.families[family], rows, bool(flags & EXPLAIN), not flags & UNCACHED)
            packed = np.ascontiguousarray(answer, FLOAT)
        except Exception as exc:  # the API answers it as the endpoint's failure would be
            logger.exception("hop call failed")
            message = f"{type(exc).__name__}: {exc}".encode()
            return ANSWER.pack(ident, FAILED, 0, len(message)) + message
        return ANSWER.pack(ident, OK, packed.shape[0], packed.shape[1]) + packed.tobytes()


# ---------------------------------------------------------------------------------------------
# API side


class _Connection:
    """One connection to one runner worker; calls multiplexed by id, answers read by one task."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.pending: dict[int, asyncio.Future[np.ndarray]] = {}
        self.next_id = 0
        self.reading = asyncio.create_task(self._read())

    @property
    def open(self) -> bool:
        return not self.reading.done()

    def send(self, family: int, rows: np.ndarray, flags: int) -> asyncio.Future[np.ndarray]:
        self.next_id = (self.next_id + 1) & 0xFFFFFFFF
        answer: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = answer
        data = np.ascontiguousarray(rows, FLOAT)
        self.writer.write(REQUEST.pack(self.next_id, family, flags, data.shape[0], data.shape[1]) + data.tobytes())
        return answer

    async def _read(self) -> None:
        try:
            while True:
                ident, status, rows, columns = ANSWER.unpack(await self.reader.readexactly(ANSWER.size))
                size = rows * columns * FLOAT.itemsize if status == OK else columns
                body = await self.reader.readexactly(size)
                self._settle(self.pending.pop(ident, None), status, body, rows, columns)
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            self._fail_all(ConnectionError(f"runner connection lost: {exc}"))

    @staticmethod
    def _settle(answer: asyncio.Future[np.ndarray] | None, status: int, body: bytes, rows: int, columns: int) -> None:
        if answer is None or answer.done():
            return
        if status == OK:
            answer.set_result(np.frombuffer(body, FLOAT).reshape(rows, columns).copy())
        else:
            answer.set_exception(HopFailed(body.decode(errors="replace")))

    def _fail_all(self, exc: Exception) -> None:
        for answer in self.pending.values():
            if not answer.done():
                answer.set_exception(exc)
        self.pending.clear()
        self.writer.close()

    async def close(self) -> None:
        self.reading.cancel()
        self._fail_all(ConnectionError("closed"))
        with contextlib.suppress(BaseException):
            await self.reading


class SocketHop:
    """The API worker's side: calls the runner workers' sockets, the least busy connection first.

    ``predict`` returns None when no runner socket can be reached (then the caller takes
    BentoML's route); a socket that refused is tried again after ``retry_s``.
    """

    def __init__(self, paths: Sequence[Path], families: Sequence[str], retry_s: float = 0.5):
        self.paths, self.retry_s = list(paths), retry_s
        self._family = {name: index for index, name in enumerate(families)}
        self._connections: dict[Path, _Connection] = {}
        self._down_until: dict[Path, float] = {}
        self._connecting: dict[Path, asyncio.Task[_Connection | None]] = {}

    async def predict(self, family: str, rows: np.ndarray, explain: bool, cache: bool = True) -> np.ndarray | None:
        connection = await self._connection()
        if connection is None:
            return None
        flags = (EXPLAIN if explain else 0) | (0 if cache else UNCACHED)
        try:
            return await connection.send(self._family[family], rows, flags)
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
            reader, writer = await asyncio.open_unix_connection(str(path))
        except OSError:
            self._down_until[path] = time.monotonic() + self.retry_s
            return None
        self._connections[path] = _Connection(reader, writer)
        return self._connections[path]

    async def close(self) -> None:
        for connection in self._connections.values():
            await connection.close()
        self._connections.clear()
