"""predlog/wire.py: what crosses between an API worker and the log's writer process."""

import pytest

from predlog import wire
from predlog.entry import Entry

ENTRY = Entry(
    1.0, "mechanical", "single", b'{"i":1}', "t:v1", b'{"predictions":{}}', True, 2.5, None, "r", (True, False), "k"
)


def test_a_stream_cut_anywhere_gives_back_every_message_whole():
    data = wire.handed([ENTRY, ENTRY._replace(ts=2.0)], 7, True) + wire.frame(wire.Settled(3, "OSError", 4, 120))
    frames, found = wire.Frames(), []
    for start in range(0, len(data), 5):
        found += frames.feed(data[start : start + 5])
    handed, settled = wire.Handed._make(found[0]), wire.Settled._make(found[1])
    assert (handed.seq, handed.sync, wire.entries_of(handed)) == (7, True, [ENTRY, ENTRY._replace(ts=2.0)])
    assert settled == wire.Settled(3, "OSError", 4, 120)


def test_a_frame_longer_than_the_limit_is_refused():
    with pytest.raises(wire.FrameError):
        wire.Frames().feed(wire.HEADER.pack(wire.MAX_FRAME_BYTES + 1))
