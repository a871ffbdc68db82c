"""The feed's sender: frames leave in order; an edge that stops reading costs packets, never a
blocked encoder, and video resumes only at a keyframe."""

from __future__ import annotations

import logging
import threading

from cluster.medialink.frames import FEED_AUDIO, FEED_VIDEO, CodecConfig, FrameReader, MediaPacket
from tests.conftest import wait_for
from transcoder.pipeline.control import Control
from transcoder.pipeline.feed import Feed


def video(n: int, key: bool = False) -> MediaPacket:
    return MediaPacket(FEED_VIDEO, n * 66_666, n * 66_666, b"v%d" % n, keyframe=key)


def audio(n: int) -> MediaPacket:
    return MediaPacket(FEED_AUDIO, n * 20_000, n * 20_000, b"a%d" % n, keyframe=True)


def test_a_stalled_edge_costs_packets_and_video_waits_for_a_keyframe() -> None:
    edge_reads = threading.Event()
    wire = bytearray()

    def send(data: bytes) -> None:  # a socket whose peer stopped reading, until it reads again
        edge_reads.wait()
        wire.extend(data)

    control = Control()
    losses: list[int] = []
    log = logging.LoggerAdapter(logging.getLogger("test.feed"), {})
    feed = Feed(send, control, log, on_loss=lambda: losses.append(1), limit=3)
    feed.start()
    try:
        feed.codec(CodecConfig(FEED_VIDEO, "video", "h264", bitstream="annexb"))
        wait_for(lambda: feed.backlog() == 0, "the sender to be stuck writing the CODEC frame")
        assert [feed.packet(p) for p in (video(0, True), audio(0), video(1))] == [True] * 3
        # The queue is full: these go, without waiting for the edge.
        assert not feed.packet(video(2))
        assert not feed.packet(audio(1))
        assert losses == [1]  # one IDR asked for, for the whole episode

        edge_reads.set()
        wait_for(lambda: feed.backlog() == 0, "the backlog to drain")
        assert not feed.packet(video(3))  # would not decode without video(2)
        assert feed.packet(audio(2))
        assert feed.packet(video(4, key=True))
        assert feed.packet(video(5))
        wait_for(lambda: feed.backlog() == 0, "the rest to be sent")
    finally:
        control.halt("test over")
    assert feed.dropped == 3
    assert losses == [1]
    frames = FrameReader().feed(bytes(wire))
    assert frames[0].codec().track == FEED_VIDEO
    assert [f.packet().data for f in frames[1:]] == [b"v0", b"a0", b"v1", b"a2", b"v4", b"v5"]
