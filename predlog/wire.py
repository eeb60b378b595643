"""What crosses between an API worker (predlog/handover.py) and its instance's writer process
(predlog/process.py): length-prefixed frames over a Unix socket, each one pickled message.

    API worker -> writer:  Handed(seq, sync, entries)   the worker's queue, every PREDICTION_LOG_FLUSH_S
                           (entries: plain tuples of ``Entry``'s fields; sync: write it now, a reader waits)
    writer -> API worker:  Settled(seq, last_error, partial_seq, partial_left)
                           after each batch written or dropped: every entry of the worker's messages
                           up to ``seq`` is written, or dropped and counted; of message
                           ``partial_seq``, the next one, some are and ``partial_left`` are not yet
                           (a message of many batches is confirmed batch by batch)

Why pickle: the entries are tuples of str, bytes, float, bool, None and (a /batch row's outcome)
dicts; pickle writes a list of 10,000 of them at ~0.4 us an entry in C, keeps bytes as bytes, and
stores a body shared by many answers (a cached answer's rendered bytes) once per message. orjson
has no bytes; msgpack took as long (0.37 us an entry) and wrote a shared body once per entry
(10,000 repeats: 8.4 MB against pickle's 0.38 MB; timeit, this machine). The socket lives in
the serve's private 0700 directory (serving/control.py): only the serving user's processes
connect, so what is unpickled comes from the service's own workers.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any, NamedTuple

from predlog.entry import Entry

HEADER = struct.Struct("<I")  # the frame's length, bytes
MAX_FRAME_BYTES = 1 << 30


class Handed(NamedTuple):
    seq: int  # increasing per connection
    sync: bool
    entries: list[tuple[Any, ...]]


class Settled(NamedTuple):
    seq: int  # every message up to this one is settled (0: none yet)
    last_error: str | None  # the writer's last database error, None once a write succeeded
    # the message after ``seq`` when some of its entries are settled (0: none is), named rather than
    # ``seq + 1``: a worker's numbers go on across connections, a new connection's first is not 1
    partial_seq: int = 0
    partial_left: int = 0  # its entries not settled yet


def frame(message: Handed | Settled) -> bytes:
    """``message`` as one frame (plain tuples: pickle writes them in C, a NamedTuple through Python)."""
    payload = pickle.dumps(tuple(message), protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


def handed(entries: list[Entry], seq: int, sync: bool) -> bytes:
    return frame(Handed(seq, sync, [tuple(entry) for entry in entries]))


def entries_of(message: Handed) -> list[Entry]:
    return [Entry._make(fields) for fields in message.entries]


class FrameError(ValueError):
    """A frame longer than MAX_FRAME_BYTES, or one that does not unpickle: the peer is not one of
    ours, or out of step."""


class Frames:
    """Splits a byte stream into its messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[Any, ...]]:
        self._buffer += data
        found, start = [], 0
        while len(self._buffer) - start >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer, start)
            if length > MAX_FRAME_BYTES:
                raise FrameError(f"a frame of {length} bytes")
            end = start + HEADER.size + length
            if len(self._buffer) < end:
                break
            try:
                found.append(pickle.loads(self._buffer[start + HEADER.size : end]))
            except Exception as exc:  # whatever unpickling raised: the bytes are not ours
                raise FrameError(f"an unreadable frame ({type(exc).__name__})") from exc
            start = end
        del self._buffer[:start]
        return found
