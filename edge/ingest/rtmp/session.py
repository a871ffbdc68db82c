"""One RTMP publisher connection as a pure state machine (h11-style: no sockets, no clock).

`receive(bytes)` returns events; `data_to_send()` returns the bytes to write back. The caller owns
the socket and decides about a publish (authentication, registration) between `PublishRequest`
and `accept_publish()` / `refuse_publish()`; until then messages are held, not processed, so no
media gets past an unchecked key.

    handshake --C2--> connecting --connect--> connected --publish--> publish pending
    publish pending --accept--> publishing --FCUnpublish/deleteStream--> connected
    publish pending --refuse--> closed

A command in the wrong state raises BadRequest; a command we do not know gets an `_error` reply
and changes nothing (encoders send vendor extras that must not cost them the connection).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from enum import Enum
from urllib.parse import parse_qsl

from cluster.errors import BadRequest
from cluster.medialink.frames import CodecConfig, MediaPacket
from edge.ingest.rtmp import amf0, flv
from edge.ingest.rtmp.chunk import (
    ACK,
    AGGREGATE,
    AUDIO,
    COMMAND_AMF0,
    COMMAND_AMF3,
    DATA_AMF0,
    DATA_AMF3,
    MAX_MESSAGE,
    SET_PEER_BANDWIDTH,
    USER_CONTROL,
    VIDEO,
    WINDOW_ACK_SIZE,
    ChunkReader,
    ChunkWriter,
    Message,
)
from edge.ingest.rtmp.handshake import Handshake


class State(Enum):
    HANDSHAKE = "handshake"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    PUBLISH_PENDING = "publish pending"
    PUBLISHING = "publishing"
    CLOSED = "closed"


# Every state may also move to CLOSED.
MOVES: dict[State, frozenset[State]] = {
    State.HANDSHAKE: frozenset({State.CONNECTING}),
    State.CONNECTING: frozenset({State.CONNECTED}),
    State.CONNECTED: frozenset({State.PUBLISH_PENDING}),
    State.PUBLISH_PENDING: frozenset({State.PUBLISHING}),
    State.PUBLISHING: frozenset({State.CONNECTED}),
    State.CLOSED: frozenset(),
}


@dataclass(frozen=True)
class PublishRequest:
    app: str
    stream: str  # the publish name without its query string, not yet validated
    query: dict[str, str]


@dataclass(frozen=True)
class Unpublished:
    reason: str


Event = PublishRequest | Unpublished | CodecConfig | MediaPacket

_U32 = struct.Struct(">I")
_CONTROL_CSID = 2
_COMMAND_CSID = 3  # NetConnection commands and their answers
_STREAM_CSID = 5  # NetStream status messages
_STREAM_BEGIN = 0
_PING_REQUEST, _PING_RESPONSE = 6, 7
_PEER_BANDWIDTH_DYNAMIC = 2


def split_publish_name(name: str) -> tuple[str, dict[str, str]]:
    """`mystream?key=secret` -> ("mystream", {"key": "secret"}): OBS and FFmpeg put the stream
    key's query string into the publish name."""
    stream, _, query = name.partition("?")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=32)
    except ValueError as exc:
        raise BadRequest(f"publish name query: {exc}") from exc
    return stream, dict(pairs)


def _status(level: str, code: str, description: str) -> dict[str, amf0.Value]:
    return {"level": level, "code": code, "description": description}


class RtmpSession:
    def __init__(
        self,
        window: int = 2_500_000,
        chunk_size: int = 4096,
        max_message: int = MAX_MESSAGE,
        now_ms: int = 0,
        random: bytes | None = None,
    ) -> None:
        self.state = State.HANDSHAKE
        self.app = ""
        self.publish_name = ""
        self.metadata: dict[str, amf0.Value] = {}
        self.dropped = 0  # media outside a publish, or before its track's codec config
        self._handshake = Handshake(now_ms, random)
        self._reader = ChunkReader(max_message)
        self._writer = ChunkWriter()
        self._out = bytearray()
        # Messages not yet processed: while a publish is pending, everything after it waits here.
        # The caller stops reading the socket meanwhile, so this holds at most one read's worth.
        self._held: deque[Message] = deque()
        self._window = window  # announced to the client: it acknowledges our bytes this often
        self._ack_window = window  # how often we acknowledge; the client may change it
        self._chunk_size = chunk_size
        self._received = 0
        self._acked = 0
        self._next_stream_id = 1
        self._publish_stream_id = 0
        self._codecs: dict[int, CodecConfig] = {}

    # the caller's interface

    def receive(self, data: bytes) -> list[Event]:
        if self.state is State.CLOSED:
            return []
        if self.state is State.HANDSHAKE:
            self._out += self._handshake.feed(data)
            if not self._handshake.done:
                return []
            self._move(State.CONNECTING)
            data = self._handshake.leftover
        self._count(len(data))
        self._held.extend(self._reader.feed(data))
        return self._drain()

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def accept_publish(self) -> list[Event]:
        """Tell the client it is publishing; returns the events of the messages held meanwhile."""
        self._move(State.PUBLISHING)
        sid = self._publish_stream_id
        self._control(USER_CONTROL, struct.pack(">HI", _STREAM_BEGIN, sid))
        status = _status("status", "NetStream.Publish.Start", f"{self.publish_name} is published.")
        self._command(
            _STREAM_CSID, sid, "onStatus", 0.0, None, {**status, "details": self.publish_name}
        )
        return self._drain()

    def refuse_publish(self, code: str, description: str) -> None:
        """Answer the pending publish with an error status; the caller then closes the socket."""
        if self.state is not State.PUBLISH_PENDING:
            raise BadRequest(f"RTMP: no publish to refuse in state {self.state.value}")
        status = _status("error", code, description)
        self._command(_STREAM_CSID, self._publish_stream_id, "onStatus", 0.0, None, status)
        self._move(State.CLOSED)
        self._held.clear()

    # internals

    def _move(self, to: State) -> None:
        if to is not State.CLOSED and to not in MOVES[self.state]:
            raise BadRequest(f"RTMP: cannot go from {self.state.value} to {to.value}")
        self.state = to

    def _count(self, n: int) -> None:
        self._received += n
        if self._received - self._acked >= self._ack_window:
            self._acked = self._received
            self._control(ACK, _U32.pack(self._received & 0xFFFFFFFF))

    def _control(self, type_id: int, body: bytes) -> None:
        self._out += self._writer.message(_CONTROL_CSID, type_id, 0, 0, body)

    def _command(self, csid: int, stream_id: int, *values: amf0.Value) -> None:
        self._out += self._writer.message(csid, COMMAND_AMF0, stream_id, 0, amf0.encode(*values))

    def _drain(self) -> list[Event]:
        events: list[Event] = []
        while self._held and self.state not in (State.PUBLISH_PENDING, State.CLOSED):
            events += self._message(self._held.popleft())
        return events

    def _message(self, msg: Message) -> list[Event]:
        t = msg.type_id
        if t in (COMMAND_AMF0, COMMAND_AMF3):
            # An AMF3 command is AMF0 behind a zero "format" byte.
            body = msg.body[1:] if t == COMMAND_AMF3 and msg.body[:1] == b"\0" else msg.body
            return self._on_command(msg.stream_id, amf0.decode(body))
        if t in (AUDIO, VIDEO):
            return self._media(t, msg.timestamp, msg.body)
        if t == AGGREGATE:
            return [e for tag in flv.aggregate(msg.body, msg.timestamp) for e in self._media(*tag)]
        if t in (DATA_AMF0, DATA_AMF3):
            self._on_data(msg.body[1:] if t == DATA_AMF3 else msg.body)
        elif t == USER_CONTROL and len(msg.body) >= 6:
            if int.from_bytes(msg.body[:2], "big") == _PING_REQUEST:
                self._control(USER_CONTROL, _PING_RESPONSE.to_bytes(2, "big") + msg.body[2:6])
        elif t == WINDOW_ACK_SIZE and len(msg.body) == 4:
            self._ack_window = max(1, int(_U32.unpack(msg.body)[0]))
        # Acknowledgement, Set Peer Bandwidth, shared objects: nothing to do for a publisher.
        return []

    def _media(self, type_id: int, ts_ms: int, body: bytes) -> list[Event]:
        if type_id not in (AUDIO, VIDEO):
            return []
        if self.state is not State.PUBLISHING:
            self.dropped += 1
            return []
        item = flv.video(body, ts_ms) if type_id == VIDEO else flv.audio(body, ts_ms)
        if item is None:
            return []
        if isinstance(item, CodecConfig):
            # Encoders may repeat sequence headers; only a change is news downstream.
            if self._codecs.get(item.track) == item:
                return []
            self._codecs[item.track] = item
            return [item]
        if item.track not in self._codecs:
            self.dropped += 1  # undecodable without its config
            return []
        return [item]

    def _on_data(self, body: bytes) -> None:
        try:
            values = amf0.decode(body)
        except BadRequest:
            return  # metadata is informational; a vendor's odd encoding must not end the session
        if values[:1] == ["@setDataFrame"]:
            values = values[1:]
        if values[:1] == ["onMetaData"] and len(values) > 1 and isinstance(values[1], dict):
            self.metadata = dict(values[1])

    def _on_command(self, stream_id: int, values: list[amf0.Value]) -> list[Event]:
        if not values or not isinstance(values[0], str):
            raise BadRequest("RTMP: command without a name")
        name = values[0]
        tid = values[1] if len(values) > 1 and isinstance(values[1], float) else 0.0
        args = values[2:]
        if name == "connect":
            self._connect(tid, args)
            return []
        if self.state is State.CONNECTING:
            raise BadRequest(f"RTMP: {name} before connect")
        if name == "createStream":
            self._command(_COMMAND_CSID, 0, "_result", tid, None, float(self._next_stream_id))
            self._next_stream_id += 1
        elif name == "publish":
            return self._publish(stream_id, args)
        elif name in ("releaseStream", "FCPublish", "FCUnpublish", "_checkbw"):
            if name == "FCPublish":
                status = _status("status", "NetStream.Publish.Start", "FCPublish")
                self._command(_COMMAND_CSID, 0, "onFCPublish", 0.0, None, status)
            if tid:
                self._command(_COMMAND_CSID, 0, "_result", tid, None, amf0.UNDEFINED)
            if name == "FCUnpublish":
                return self._unpublish("unpublished")
        elif name in ("deleteStream", "closeStream"):
            return self._unpublish("unpublished")
        elif tid:
            status = _status("error", "NetConnection.Call.Failed", f"unknown command {name}")
            self._command(_COMMAND_CSID, 0, "_error", tid, None, status)
        return []

    def _connect(self, tid: float, args: list[amf0.Value]) -> None:
        if self.state is not State.CONNECTING:
            raise BadRequest("RTMP: connect on a connected session")
        params = args[0] if args and isinstance(args[0], dict) else {}
        app = params.get("app")
        self.app = app.strip("/") if isinstance(app, str) else ""
        self._move(State.CONNECTED)
        self._control(WINDOW_ACK_SIZE, _U32.pack(self._window))
        self._control(
            SET_PEER_BANDWIDTH, _U32.pack(self._window) + bytes([_PEER_BANDWIDTH_DYNAMIC])
        )
        self._out += self._writer.set_chunk_size(self._chunk_size)
        server: dict[str, amf0.Value] = {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0}
        status = _status("status", "NetConnection.Connect.Success", "Connection succeeded.")
        self._command(_COMMAND_CSID, 0, "_result", tid, server, {**status, "objectEncoding": 0.0})

    def _publish(self, stream_id: int, args: list[amf0.Value]) -> list[Event]:
        if self.state is not State.CONNECTED:
            raise BadRequest(f"RTMP: publish while {self.state.value}")
        # args: the (null) command object, the publish name, the type ("live").
        name = args[1] if len(args) > 1 else None
        if not isinstance(name, str) or not name:
            raise BadRequest("RTMP: publish without a stream name")
        stream, query = split_publish_name(name)
        self.publish_name = stream
        self._publish_stream_id = stream_id
        self._move(State.PUBLISH_PENDING)
        return [PublishRequest(self.app, stream, query)]

    def _unpublish(self, reason: str) -> list[Event]:
        # FFmpeg sends FCUnpublish and then deleteStream: only the first one ends the publish.
        if self.state is not State.PUBLISHING:
            return []
        self._move(State.CONNECTED)
        self._codecs.clear()
        return [Unpublished(reason)]
