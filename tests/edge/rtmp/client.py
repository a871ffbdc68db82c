"""The publisher's side of RTMP as OBS writes it, for driving the session and the server."""

from __future__ import annotations

from edge.ingest.rtmp import amf0
from edge.ingest.rtmp.chunk import AUDIO, COMMAND_AMF0, DATA_AMF0, VIDEO, ChunkReader, ChunkWriter
from edge.ingest.rtmp.chunk import Message as Message
from edge.ingest.rtmp.handshake import SIZE

# The avcC FFmpeg 5.1 sent for testsrc 320x180 with libx264 (High 4:4:4 Predictive).
AVCC = (
    b"\x01\xf4\x00\x0c\xff\xe1\x00\x1ag\xf4\x00\x0c\x91\x96\x81A\x9f\x8d\xc0D\x00\x00\x03\x00"
    b"\x04\x00\x00\x03\x00x<P\xaa\x80\x01\x00\x05h\xce\x0f\x19 \xff\xf8\xf8\x00"
)
ASC = b"\x12\x10"  # AAC LC, 44.1 kHz, stereo


class Client:
    def __init__(self) -> None:
        self.writer = ChunkWriter()
        self.reader = ChunkReader()
        self._skip = 1 + 2 * SIZE  # S0 S1 S2 come before the server's chunk stream

    def handshake(self) -> bytes:
        return b"\x03" + bytes(SIZE) + bytes(SIZE)

    def command(self, name: str, tid: float, *args: amf0.Value, stream_id: int = 0) -> bytes:
        csid = 8 if stream_id else 3
        return self.writer.message(csid, COMMAND_AMF0, stream_id, 0, amf0.encode(name, tid, *args))

    def connect(self, app: str = "live") -> bytes:
        params: dict[str, amf0.Value] = {
            "app": app,
            "type": "nonprivate",
            "flashVer": "FMLE/3.0 (compatible; FMSc/1.0)",
            "tcUrl": f"rtmp://127.0.0.1/{app}",
            "supportsGoAway": True,
        }
        return self.writer.set_chunk_size(4096) + self.command("connect", 1.0, params)

    def publish(self, name: str) -> bytes:
        stream = name.split("?")[0]
        return (
            self.command("releaseStream", 2.0, None, stream)
            + self.command("FCPublish", 3.0, None, stream)
            + self.command("createStream", 4.0, None)
            + self.command("publish", 5.0, None, name, "live", stream_id=1)
        )

    def metadata(self) -> bytes:
        body = amf0.encode("@setDataFrame", "onMetaData", amf0.EcmaArray({"width": 320.0}))
        return self.writer.message(4, DATA_AMF0, 1, 0, body)

    def video(self, ts: int, body: bytes) -> bytes:
        return self.writer.message(6, VIDEO, 1, ts, body)

    def audio(self, ts: int, body: bytes) -> bytes:
        return self.writer.message(4, AUDIO, 1, ts, body)

    def headers(self) -> bytes:
        return self.video(0, b"\x17\x00\x00\x00\x00" + AVCC) + self.audio(0, b"\xaf\x00" + ASC)

    def frame(self, ts: int, key: bool = False) -> bytes:
        nal = b"\x00\x00\x00\x02" + (b"\x65\x88" if key else b"\x41\x9a")
        return self.video(ts, bytes([0x17 if key else 0x27, 1, 0, 0, 0]) + nal)

    def parse(self, out: bytes) -> list[Message]:
        """The server's messages (after its handshake answer)."""
        skip = min(self._skip, len(out))
        self._skip -= skip
        return self.reader.feed(out[skip:])

    def commands(self, out: bytes) -> list[list[amf0.Value]]:
        return [amf0.decode(m.body) for m in self.parse(out) if m.type_id == COMMAND_AMF0]
