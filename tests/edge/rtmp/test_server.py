"""The RTMP server over real sockets, with FFmpeg as the publisher and misbehaving clients beside it."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from collections.abc import AsyncIterator

import av
import pytest

from cluster.errors import BadRequest, Conflict, Unauthorized
from cluster.ids import stream_id
from cluster.medialink.frames import CodecConfig, MediaPacket
from edge.ingest.rtmp.server import RtmpServer, serve_rtmp
from tests.conftest import await_for
from tests.edge.rtmp.client import Client


class Sink:
    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.codecs: list[CodecConfig] = []
        self.packets: list[MediaPacket] = []
        self.closed: list[str] = []

    def codec(self, cfg: CodecConfig) -> None:
        self.codecs.append(cfg)

    def packet(self, pkt: MediaPacket) -> None:
        self.packets.append(pkt)

    async def close(self, reason: str) -> None:
        self.closed.append(reason)

    def track(self, track: int) -> list[MediaPacket]:
        return [p for p in self.packets if p.track == track]


class Handler:
    """Checks like the edge does (app, stream id, key) and collects what each publish delivers."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str]]] = []
        self.sinks: dict[str, Sink] = {}

    async def start(self, app: str, stream: str, query: dict[str, str], peer: str) -> Sink:
        self.calls.append((app, stream, query))
        if app != "live":
            raise BadRequest(f"unknown application {app!r}")
        stream_id(stream)
        if query.get("key") != "good":
            raise Unauthorized("wrong stream key")
        if stream in self.sinks and not self.sinks[stream].closed:
            raise Conflict(f"stream {stream} is already being published")
        sink = self.sinks[stream] = Sink(stream)
        return sink


@pytest.fixture
async def rtmp() -> AsyncIterator[tuple[RtmpServer, Handler]]:
    handler = Handler()
    server = RtmpServer(handler, idle_timeout=5.0, setup_timeout=2.0)
    await server.start("127.0.0.1", 0)
    yield server, handler
    await server.stop()


async def ffmpeg(port: int, name: str, seconds: float = 3) -> asyncio.subprocess.Process:
    # fmt: off
    return await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
        "-re", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=15",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-c:a", "aac",
        "-f", "flv", f"rtmp://127.0.0.1:{port}/live/{name}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    # fmt: on


async def finish(proc: asyncio.subprocess.Process, timeout: float = 20) -> tuple[int, str]:
    _, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, err.decode(errors="replace")


def check_complete_stream(sink: Sink) -> None:
    """What FFmpeg sent for 3 s of 320x180 at 15 fps with a keyframe each second, plus AAC."""
    video, audio = sink.codecs
    assert (video.kind, video.codec, video.bitstream) == ("video", "h264", "avcc")
    assert video.extradata[0] == 1 and (video.width, video.height) == (320, 180)
    assert (audio.kind, audio.codec, audio.sample_rate, audio.channels) == (
        "audio",
        "aac",
        44100,
        1,
    )
    assert len(audio.extradata) >= 2

    frames = sink.track(0)
    assert abs(len(frames) - 45) <= 1
    assert frames[0].keyframe
    assert sum(p.keyframe for p in frames) == 3
    assert abs(len(sink.track(1)) - 3 * 44100 / 1024) <= 3
    for track in (0, 1):
        dts = [p.dts_us for p in sink.track(track)]
        assert dts == sorted(dts), f"track {track} goes back in time"
    assert frames[-1].dts_us - frames[0].dts_us == pytest.approx(44 / 15 * 1e6, abs=70_000)

    decoder = av.CodecContext.create("h264", "r")
    decoder.extradata = video.extradata
    pictures = [f for p in frames for f in decoder.decode(av.Packet(p.data))]
    pictures += decoder.decode(None)
    assert len(pictures) == len(frames)
    assert {(f.width, f.height) for f in pictures} == {(320, 180)}


async def test_ffmpeg_publishes_a_complete_decodable_stream(
    rtmp: tuple[RtmpServer, Handler],
) -> None:
    server, handler = rtmp
    code, err = await finish(await ffmpeg(server.port, "s1?key=good"))
    assert code == 0, err
    assert handler.calls == [("live", "s1", {"key": "good"})]
    sink = handler.sinks["s1"]
    await await_for(lambda: sink.closed, "the publish to end")
    assert sink.closed == ["unpublished"]
    check_complete_stream(sink)


async def test_a_wrong_key_fails_ffmpeg_and_creates_no_sink(
    rtmp: tuple[RtmpServer, Handler], caplog: pytest.LogCaptureFixture
) -> None:
    server, handler = rtmp
    with caplog.at_level(logging.INFO, logger="edge.ingest.rtmp.server"):
        code, err = await finish(await ffmpeg(server.port, "s1?key=bad"))
        await await_for(lambda: "refused" in caplog.text, "the refusal to be logged")
    assert code != 0
    assert "wrong stream key" in err  # FFmpeg prints our onStatus description
    assert handler.calls == [("live", "s1", {"key": "bad"})]
    assert handler.sinks == {}
    assert "bad" not in caplog.text  # the key never reaches a log line


async def test_two_publishers_and_misbehaving_clients_at_once(
    rtmp: tuple[RtmpServer, Handler], caplog: pytest.LogCaptureFixture
) -> None:
    server, handler = rtmp
    caplog.set_level(logging.INFO, logger="edge.ingest.rtmp.server")
    rng = random.Random(5)
    publishers = [await ffmpeg(server.port, f"{name}?key=good") for name in ("a", "b")]

    async def misbehave(data: bytes) -> bytes:
        """Send `data`, then wait for the server to hang up; what it sent back."""
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(data)
        received = b""
        try:
            while chunk := await asyncio.wait_for(reader.read(65536), 10):
                received += chunk
        except ConnectionResetError:
            pass
        writer.close()
        return received

    client = Client()
    huge = client.handshake() + client.writer.set_chunk_size(0x7FFFFFFF)
    huge += b"\x06" + b"\x00\x00\x00" + b"\xff\xff\xff" + b"\x09" + b"\x01\x00\x00\x00"
    misfits = await asyncio.gather(
        misbehave(b"\x47" + rng.randbytes(4000)),  # not RTMP at all
        misbehave(Client().handshake() + rng.randbytes(20000)),  # garbage chunks
        misbehave(huge),  # a 16 MiB message behind a huge chunk size
        misbehave(Client().handshake()[:1000]),  # a truncated handshake, then silence
        misbehave(b""),  # nothing at all
    )
    assert misfits[0] == b""  # not even a handshake answer

    for proc in publishers:
        code, err = await finish(proc)
        assert code == 0, err
    for name in ("a", "b"):
        sink = handler.sinks[name]
        await await_for(lambda sink=sink: sink.closed, f"publish {name} to end")  # type: ignore[misc]
        assert sink.closed == ["unpublished"]
        check_complete_stream(sink)
    closes = [r.getMessage() for r in caplog.records if " closed: " in r.getMessage()]
    assert len(closes) == 7
    assert sum("protocol error" in c for c in closes) >= 3
    assert sum("no publish within 2s" in c for c in closes) == 2


async def raw_publisher(
    port: int, name: str
) -> tuple[Client, asyncio.StreamReader, asyncio.StreamWriter]:
    """A publish over a raw socket, up to NetStream.Publish.Start (or the refusal)."""
    client = Client()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(client.handshake() + client.connect() + client.publish(name))
    return client, reader, writer


async def read_status(client: Client, reader: asyncio.StreamReader) -> str:
    while data := await asyncio.wait_for(reader.read(65536), 5):
        for command in client.commands(data):
            if command[0] == "onStatus" and isinstance(command[3], dict):
                return str(command[3]["code"])
    return "closed"


async def test_a_taken_stream_is_refused_as_bad_name(rtmp: tuple[RtmpServer, Handler]) -> None:
    server, handler = rtmp
    first = await raw_publisher(server.port, "s1?key=good")
    assert await read_status(first[0], first[1]) == "NetStream.Publish.Start"
    second = await raw_publisher(server.port, "s1?key=good")
    assert await read_status(second[0], second[1]) == "NetStream.Publish.BadName"
    assert await asyncio.wait_for(second[1].read(), 5) == b""  # and the server hung up
    assert handler.sinks["s1"].closed == []  # the first publish goes on
    first[2].close()
    await await_for(lambda: handler.sinks["s1"].closed, "the first publish to end")
    assert handler.sinks["s1"].closed == ["closed by peer"]


async def test_a_silent_publisher_times_out() -> None:
    handler = Handler()
    server = await serve_rtmp(handler, "127.0.0.1", 0, idle_timeout=0.5)
    try:
        client, reader, writer = await raw_publisher(server.port, "s1?key=good")
        assert await read_status(client, reader) == "NetStream.Publish.Start"
        writer.write(client.headers())
        await await_for(lambda: handler.sinks["s1"].closed, "the idle publish to end", timeout=5)
        assert handler.sinks["s1"].closed == ["idle for 0.5s"]
        assert len(handler.sinks["s1"].codecs) == 2
        writer.close()
    finally:
        await server.stop()


async def test_killed_publisher_and_server_stop_each_close_the_sink_once() -> None:
    handler = Handler()
    server = await serve_rtmp(handler, "127.0.0.1", 0)
    try:
        killed = await ffmpeg(server.port, "k?key=good", seconds=30)
        stopped = await ffmpeg(server.port, "st?key=good", seconds=30)

        def streaming() -> bool:
            sinks = [handler.sinks.get(name) for name in ("k", "st")]
            return all(s is not None and len(s.packets) > 10 for s in sinks)

        await await_for(streaming, "both publishers to stream")
        killed.send_signal(signal.SIGKILL)
        await killed.wait()
        await await_for(lambda: handler.sinks["k"].closed, "the killed publish to end")
    finally:
        await server.stop()
    assert handler.sinks["k"].closed in (
        ["closed by peer"],
        ["connection lost: ConnectionResetError"],
    )
    assert handler.sinks["st"].closed == ["server stopping"]
    code, _ = await finish(stopped)  # FFmpeg notices the hang-up and gives up
    assert code != 0
