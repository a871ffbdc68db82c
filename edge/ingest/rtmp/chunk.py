"""The RTMP chunk stream (pure): bytes in, whole messages out; messages in, chunks out.

A message is cut into chunks of at most `chunk_size` bytes; chunks of different chunk streams
(csid) interleave. Each chunk starts with a basic header (fmt + csid in 1-3 bytes) and a message
header whose size depends on fmt:

    fmt 0  11 bytes  timestamp, length, type, message stream id (little-endian!)
    fmt 1   7 bytes  timestamp delta, length, type            (same stream id)
    fmt 2   3 bytes  timestamp delta                          (same length, type, stream id)
    fmt 3   0 bytes  continuation of a message, or a new message repeating everything

A timestamp field of 0xFFFFFF means a 4-byte extended timestamp follows the header, and then it
also follows every fmt 3 header of that chunk stream. Timestamps are 32-bit milliseconds that wrap
after 49.7 days; `Message.timestamp` is unwrapped per chunk stream into a monotonic integer.

Set Chunk Size and Abort only matter to this layer, so the reader applies them and does not hand
them on. Limits (message length, bytes held in unfinished messages) raise TooLarge before any
memory is committed to them; malformed headers raise BadRequest.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cluster.errors import BadRequest, TooLarge

# Message type ids.
SET_CHUNK_SIZE = 1
ABORT = 2
ACK = 3
USER_CONTROL = 4
WINDOW_ACK_SIZE = 5
SET_PEER_BANDWIDTH = 6
AUDIO = 8
VIDEO = 9
DATA_AMF3 = 15
COMMAND_AMF3 = 17
DATA_AMF0 = 18
COMMAND_AMF0 = 20
AGGREGATE = 22

DEFAULT_CHUNK_SIZE = 128
MAX_CHUNK_SIZE = 0x7FFFFFFF
MAX_MESSAGE = 8 * 1024 * 1024
_EXTENDED = 0xFFFFFF
_U32 = struct.Struct(">I")


@dataclass(frozen=True)
class Message:
    csid: int
    type_id: int
    stream_id: int
    timestamp: int  # ms, unwrapped: never jumps back by 2^32 when the 32-bit field wraps
    body: bytes


@dataclass
class _ChunkStream:
    """What later headers of one chunk stream inherit from earlier ones."""

    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    ts_field: int = 0  # last timestamp field: absolute after fmt 0, a delta after fmt 1/2
    extended: bool = False  # the last fmt 0-2 header had an extended timestamp
    timestamp: int = 0  # unwrapped ms of the current or last message
    body: bytearray | None = None  # the message being assembled, if any


def _u24(buf: bytearray, pos: int) -> int:
    return (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]


def _unwrap(previous: int, raw: int) -> int:
    """The 64-bit time nearest to `previous` whose low 32 bits are `raw`."""
    diff = (raw - previous) & 0xFFFFFFFF
    return previous + diff - (1 << 32 if diff >= 1 << 31 else 0)


class ChunkReader:
    """Incremental: `feed` any slice of the byte stream, get the messages it completes.

    State changes only when a whole chunk is in the buffer, so feeding byte by byte and feeding
    one blob give the same messages.
    """

    def __init__(self, max_message: int = MAX_MESSAGE, max_pending: int | None = None) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.max_message = max_message
        # Interleaved unfinished messages on many chunk streams could otherwise hold
        # (chunk streams x max_message) bytes; cap what all of them may reserve together.
        self.max_pending = 2 * max_message if max_pending is None else max_pending
        self._pending = 0
        self._streams: dict[int, _ChunkStream] = {}
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        out: list[Message] = []
        pos = 0
        while True:
            used, message = self._chunk(pos)
            if not used:
                break
            pos += used
            if message is not None and not self._control(message):
                out.append(message)
        del self._buf[:pos]
        return out

    def _chunk(self, pos: int) -> tuple[int, Message | None]:
        """Parse one chunk at `pos`: (bytes used, completed message); (0, None) if incomplete."""
        buf, avail = self._buf, len(self._buf) - pos
        if avail < 1:
            return 0, None
        fmt, csid, at = buf[pos] >> 6, buf[pos] & 0x3F, pos + 1
        if csid == 0:
            if avail < 2:
                return 0, None
            csid, at = 64 + buf[pos + 1], pos + 2
        elif csid == 1:
            if avail < 3:
                return 0, None
            csid, at = 64 + buf[pos + 1] + (buf[pos + 2] << 8), pos + 3
        st = self._streams.get(csid)
        if st is None and fmt != 0:
            raise BadRequest(f"RTMP: chunk stream {csid} starts with a fmt {fmt} header")
        if st is not None and st.body is not None and fmt != 3:
            raise BadRequest(f"RTMP: fmt {fmt} header in the middle of a message on {csid}")
        header = (11, 7, 3, 0)[fmt]
        if len(buf) < at + header:
            return 0, None
        ts_field = _u24(buf, at) if fmt < 3 else 0
        extended = ts_field == _EXTENDED if fmt < 3 else st is not None and st.extended
        end = at + header + (4 if extended else 0)
        if len(buf) < end:
            return 0, None
        if extended:
            ts_field = int(_U32.unpack_from(buf, at + header)[0])
        length = _u24(buf, at + 3) if fmt < 2 else st.length if st else 0
        if fmt < 2 and length > self.max_message:
            raise TooLarge(f"RTMP: message of {length} bytes (limit {self.max_message})")
        have = len(st.body) if st is not None and st.body is not None else 0
        size = min(self.chunk_size, length - have)
        if len(buf) < end + size:
            return 0, None

        # The whole chunk is here: commit.
        if st is None:
            st = self._streams[csid] = _ChunkStream()
            st.timestamp = ts_field  # a stream's first message anchors its unwrapping
        if st.body is None:
            self._start(st, fmt, buf, at, length, ts_field, extended)
        assert st.body is not None
        st.body += buf[end : end + size]
        if len(st.body) < st.length:
            return end + size - pos, None
        message = Message(csid, st.type_id, st.stream_id, st.timestamp, bytes(st.body))
        self._pending -= st.length
        st.body = None
        return end + size - pos, message

    def _start(
        self,
        st: _ChunkStream,
        fmt: int,
        buf: bytearray,
        at: int,
        length: int,
        ts_field: int,
        extended: bool,
    ) -> None:
        """The first chunk of a message: take its header fields, time it, reserve its bytes."""
        if fmt < 2:
            st.length, st.type_id = length, buf[at + 6]
        if fmt == 0:
            st.stream_id = int.from_bytes(buf[at + 7 : at + 11], "little")
            st.timestamp = _unwrap(st.timestamp, ts_field)
        elif fmt < 3:
            st.timestamp += ts_field
        else:
            # A fmt 3 header starting a message repeats the last timestamp field as a delta
            # (FFmpeg's and librtmp's reading; both writers rely on it).
            st.timestamp += st.ts_field
        if fmt < 3:
            st.ts_field, st.extended = ts_field, extended
        if self._pending + st.length > self.max_pending:
            raise TooLarge(f"RTMP: more than {self.max_pending} bytes in unfinished messages")
        self._pending += st.length
        st.body = bytearray()

    def _control(self, message: Message) -> bool:
        """Apply chunk-layer control messages; True if `message` was one."""
        if message.type_id == SET_CHUNK_SIZE:
            if len(message.body) != 4:
                raise BadRequest(f"RTMP: Set Chunk Size with a {len(message.body)}-byte body")
            size = int(_U32.unpack(message.body)[0])
            if not 1 <= size <= MAX_CHUNK_SIZE:
                raise BadRequest(f"RTMP: invalid chunk size {size}")
            self.chunk_size = size
            return True
        if message.type_id == ABORT:
            if len(message.body) != 4:
                raise BadRequest(f"RTMP: Abort with a {len(message.body)}-byte body")
            st = self._streams.get(int(_U32.unpack(message.body)[0]))
            if st is not None and st.body is not None:
                self._pending -= st.length
                st.body = None
            return True
        return False


class ChunkWriter:
    """Our side of the chunk stream: every message as one fmt 0 chunk plus fmt 3 continuations."""

    def __init__(self) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE

    def message(
        self, csid: int, type_id: int, stream_id: int, timestamp: int, body: bytes
    ) -> bytes:
        if not 2 <= csid < 65600:
            raise ValueError(f"chunk stream id {csid} out of range")
        if len(body) > 0xFFFFFF:
            raise ValueError(f"message of {len(body)} bytes does not fit a chunk header")
        timestamp &= 0xFFFFFFFF
        extended = timestamp >= _EXTENDED
        ext = _U32.pack(timestamp) if extended else b""
        out = bytearray(_basic(0, csid))
        out += (_EXTENDED if extended else timestamp).to_bytes(3, "big")
        out += len(body).to_bytes(3, "big") + bytes([type_id])
        out += stream_id.to_bytes(4, "little") + ext
        out += body[: self.chunk_size]
        for start in range(self.chunk_size, len(body), self.chunk_size):
            out += _basic(3, csid) + ext + body[start : start + self.chunk_size]
        return bytes(out)

    def set_chunk_size(self, size: int) -> bytes:
        """The Set Chunk Size message; chunks written after it use `size`."""
        if not 1 <= size <= MAX_CHUNK_SIZE:
            raise ValueError(f"invalid chunk size {size}")
        out = self.message(2, SET_CHUNK_SIZE, 0, 0, _U32.pack(size))
        self.chunk_size = size
        return out


def _basic(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes([(fmt << 6) | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    return bytes([(fmt << 6) | 1, (csid - 64) & 0xFF, (csid - 64) >> 8])
