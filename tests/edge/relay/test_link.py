"""The media-link server over real loopback sockets: replay, supersede by epoch, broken-link report."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cluster.medialink import frames
from cluster.medialink.frames import FEED_VIDEO, CodecConfig, Frame, FrameReader, Kind, MediaPacket
from edge.relay.gop import GopCache
from edge.relay.hub import StreamRelay
from edge.relay.server import LinkServer
from tests.conftest import await_for


class Worker:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.parser = reader, writer, FrameReader()
        self.frames: list[Frame] = []

    @classmethod
    async def connect(cls, port: int, stream: str, epoch: int, node: str = "t1") -> Worker:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(
            frames.encode_json(Kind.HELLO, {"v": 1, "stream": stream, "epoch": epoch, "node": node})
        )
        return cls(r, w)

    async def read_until(self, pred: object, timeout: float = 5.0) -> list[Frame]:
        async def loop() -> None:
            while not pred(self.frames):  # type: ignore[operator]
                data = await self.reader.read(65536)
                if not data:
                    return
                self.frames += self.parser.feed(data)

        await asyncio.wait_for(loop(), timeout)
        return self.frames


@pytest.fixture
async def setup() -> AsyncIterator[tuple[StreamRelay, int, list[int]]]:
    broken: list[int] = []
    relay = StreamRelay("s1", GopCache(1 << 20, 10), broken.append)
    server = LinkServer(lambda s: relay if s == "s1" else None)
    port = await server.start("127.0.0.1", 0)
    relay.codec(CodecConfig(0, "video", "h264", b"cfg", "avcc"))
    relay.packet(MediaPacket(0, 0, 0, b"key", keyframe=True))
    relay.packet(MediaPacket(0, 33, 33, b"p1"))
    yield relay, port, broken
    await server.stop()


async def test_worker_gets_accept_codecs_replay_then_live(
    setup: tuple[StreamRelay, int, list[int]],
) -> None:
    relay, port, _ = setup
    w = await Worker.connect(port, "s1", 1)
    got = await w.read_until(lambda f: len(f) >= 4)
    assert [f.kind for f in got[:4]] == [Kind.ACCEPT, Kind.CODEC, Kind.PACKET, Kind.PACKET]
    assert got[2].packet().keyframe and got[2].packet().replay
    relay.packet(MediaPacket(0, 66, 66, b"live"))
    got = await w.read_until(lambda f: len(f) >= 5)
    assert got[4].packet().data == b"live" and not got[4].packet().replay


async def test_newer_epoch_supersedes_and_older_is_refused(
    setup: tuple[StreamRelay, int, list[int]],
) -> None:
    relay, port, broken = setup
    old = await Worker.connect(port, "s1", 1, "t1")
    await old.read_until(lambda f: len(f) >= 1)
    new = await Worker.connect(port, "s1", 2, "t2")
    await new.read_until(lambda f: len(f) >= 1)
    got = await old.read_until(lambda f: any(x.kind is Kind.ERROR for x in f))
    assert got[-1].json()["error"] == "superseded"
    stale = await Worker.connect(port, "s1", 1, "t3")
    got = await stale.read_until(lambda f: len(f) >= 1)
    assert got[0].kind is Kind.ERROR
    assert relay.subscriber is not None and relay.subscriber.node == "t2"
    assert broken == []  # a supersede is not a failure


async def test_dead_worker_is_reported_once(setup: tuple[StreamRelay, int, list[int]]) -> None:
    relay, port, broken = setup
    w = await Worker.connect(port, "s1", 3)
    await w.read_until(lambda f: len(f) >= 1)
    w.writer.transport.abort()  # what the kernel does when the worker is kill -9'd
    await await_for(lambda: broken == [3], "the broken-link report")
    assert relay.subscriber is None


async def test_unknown_stream_and_garbage_are_refused(
    setup: tuple[StreamRelay, int, list[int]],
) -> None:
    _, port, _ = setup
    w = await Worker.connect(port, "nope", 1)
    got = await w.read_until(lambda f: len(f) >= 1)
    assert got[0].kind is Kind.ERROR
    r, wr = await asyncio.open_connection("127.0.0.1", port)
    wr.write(b"\xff" * 64)
    data = await asyncio.wait_for(r.read(), 5)
    assert FrameReader().feed(data)[0].kind is Kind.ERROR


async def test_publisher_end_sends_eos_without_report(
    setup: tuple[StreamRelay, int, list[int]],
) -> None:
    relay, port, broken = setup
    w = await Worker.connect(port, "s1", 1)
    await w.read_until(lambda f: len(f) >= 1)
    relay.end("publisher left")
    got = await w.read_until(lambda f: any(x.kind is Kind.EOS for x in f))
    assert got[-1].kind is Kind.EOS
    await asyncio.sleep(0.1)
    assert broken == []


async def test_a_current_workers_keyreq_reaches_the_publisher_side() -> None:
    asked: list[int] = []
    relay = StreamRelay(
        "s2", GopCache(1 << 20, 10), lambda _: None, on_keyreq=lambda: asked.append(1)
    )
    server = LinkServer(lambda s: relay if s == "s2" else None)
    port = await server.start("127.0.0.1", 0)
    try:
        relay.codec(CodecConfig(0, "video", "h264", b"cfg", "avcc"))
        old = await Worker.connect(port, "s2", 1, "old")
        await old.read_until(lambda fs: any(f.kind is Kind.ACCEPT for f in fs))
        new = await Worker.connect(port, "s2", 2, "new")
        await new.read_until(lambda fs: any(f.kind is Kind.ACCEPT for f in fs))
        old.writer.write(frames.encode(Kind.KEYREQ))  # superseded: not passed on
        new.writer.write(frames.encode(Kind.KEYREQ))
        await await_for(lambda: len(asked) >= 1, "the KEYREQ passed on")
        await asyncio.sleep(0.1)  # the stale one, had it been passed on, would be here by now
        assert asked == [1]
    finally:
        await server.stop()


async def test_frames_sent_with_hello_in_one_write_reach_the_feed(
    setup: tuple[StreamRelay, int, list[int]],
) -> None:
    relay, port, _ = setup
    _, w = await asyncio.open_connection("127.0.0.1", port)
    video = CodecConfig(FEED_VIDEO, "video", "h264", b"", "annexb", 64, 64)
    # A worker need not wait for ACCEPT: its feed's codec and first packet follow HELLO at once.
    w.write(
        frames.encode_json(Kind.HELLO, {"v": 1, "stream": "s1", "epoch": 1, "node": "t1"})
        + frames.encode_codec(video)
        + frames.encode_packet(MediaPacket(FEED_VIDEO, 0, 0, b"\x00\x00\x00\x01\x65", True))
    )
    try:
        await await_for(lambda: relay.feed.packets_in == 1, "the packet sent with HELLO")
        assert relay.feed.codecs[FEED_VIDEO] == video
    finally:
        w.close()
