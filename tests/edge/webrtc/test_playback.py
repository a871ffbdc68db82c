"""Scripted worker -> edge feed -> aiortc WHEP viewers, on loopback: decode, fan-out, switch."""

from __future__ import annotations

import asyncio
import time
from itertools import pairwise

from cluster.medialink import frames
from cluster.medialink.frames import FEED_VIDEO, Frame, Kind, MediaPacket
from edge.playback.webrtc.feed import Feed
from edge.relay.gop import GopCache
from edge.relay.hub import StreamRelay
from tests.conftest import await_for
from tests.edge.webrtc.conftest import Edge
from tests.edge.webrtc.worker import ScriptedWorker
from zoocast.harness.whep_viewer import WhepViewer


async def test_viewer_decodes_the_workers_feed_with_capture_codes(edge: Edge) -> None:
    worker = await ScriptedWorker(edge.media_port, "s1", 1).start()
    viewer = await WhepViewer(edge.url).start()
    try:
        await await_for(lambda: len(viewer.readable()) >= 15, "15 readable frames", 20)
        assert viewer.audio_frames > 0
        assert worker.keyreqs >= 1  # the edge asked for an IDR for its new viewer
        lat = viewer.latency()
        assert lat.count >= 15 and lat.min > 0
    finally:
        await viewer.stop()
        await worker.stop()
    await await_for(lambda: not edge.relay.feed.viewers, "the session to end on DELETE")


async def test_a_viewers_pli_reaches_the_worker_as_keyreq(edge: Edge) -> None:
    worker = await ScriptedWorker(edge.media_port, "s1", 1).start()
    viewer = await WhepViewer(edge.url).start()
    try:
        await await_for(lambda: len(viewer.readable()) >= 3, "frames at the viewer", 20)
        session = next(iter(edge.whep.sessions.values()))
        sender = next(s for s in session.pc.getSenders() if s.kind == "video")
        receiver = next(t.receiver for t in viewer.pc.getTransceivers() if t.kind == "video")
        before, idrs = worker.keyreqs, worker.idrs
        # A real RTCP PLI over the wire, as a browser sends after a loss.
        await receiver._send_rtcp_pli(sender._ssrc)
        await await_for(lambda: worker.keyreqs > before, "the PLI forwarded as KEYREQ", 5)
        await await_for(lambda: worker.idrs > idrs, "the IDR it asked for")
    finally:
        await viewer.stop()
        await worker.stop()


async def test_a_superseded_workers_frames_are_ignored(edge: Edge) -> None:
    old = await ScriptedWorker(edge.media_port, "s1", 1, "t1").start()
    await await_for(lambda: edge.relay.feed.packets_in > 0, "the first worker's feed")
    superseded = edge.relay.subscriber
    assert superseded is not None
    new = await ScriptedWorker(edge.media_port, "s1", 2, "t2").start()
    try:
        await await_for(lambda: edge.relay.feed.epoch == 2, "the second worker to attach")
        await await_for(
            lambda: any(f.kind is Kind.ERROR for f in old.received), "the old link's ERROR"
        )
        before = edge.relay.feed.packets_in
        # Frames the old worker's link still delivers (already buffered) must not reach viewers.
        late = MediaPacket(FEED_VIDEO, 10**12, 10**12, b"\x00\x00\x00\x01\x65", keyframe=True)
        edge.relay.from_worker(superseded, Frame(Kind.PACKET, frames.encode_packet(late)[5:]))
        edge.relay.feed.packet(1, late)
        assert edge.relay.feed.packets_in == before
        await await_for(lambda: edge.relay.feed.packets_in > before, "the new worker's feed")
    finally:
        await old.stop()
        await new.stop()


async def test_twenty_viewers_share_one_upstream_feed(edge: Edge) -> None:
    worker = await ScriptedWorker(edge.media_port, "s1", 1).start()
    viewers = [WhepViewer(edge.url) for _ in range(20)]
    try:
        await asyncio.gather(*(v.start() for v in viewers))
        assert len(edge.relay.feed.viewers) == 20
        await await_for(
            lambda: all(len(v.readable()) >= 5 for v in viewers),
            "5 readable frames at each of 20 viewers",
            60,
        )
        # One link: the edge took each packet once from the worker, whatever the viewer count,
        # and every viewer's sender was handed those packets.
        assert len(edge.link._tasks) == 1
        assert edge.relay.feed.packets_in <= worker.sent_packets
        outs = [(v.video, v.audio) for v in edge.relay.feed.viewers]
        assert all(o is not None and o.frames > 0 for pair in outs for o in pair)
        # Each access unit was cut into RTP payloads once, for all 20 viewers.
        sent = sum(video.frames for video, _ in outs if video is not None)
        assert 0 < edge.relay.feed.cuts <= worker.sent_video < sent
        # The senders' RTCP reports what was sent past them (the sender-report counters).
        session = next(iter(edge.whep.sessions.values()))
        out = session.viewer.video if session.viewer else None
        assert out is not None
        await await_for(lambda: out.frames >= 8, "8 frames to one viewer (counters every 8)")
        stats = await next(s for s in session.pc.getSenders() if s.kind == "video").getStats()
        outbound = [st for st in stats.values() if st.type == "outbound-rtp"]
        assert outbound and all(st.packetsSent > 0 for st in outbound)
    finally:
        await asyncio.gather(*(v.stop() for v in viewers))
        await worker.stop()


async def test_a_worker_switch_keeps_the_peer_connection_and_timestamps_monotonic(
    edge: Edge,
) -> None:
    first = await ScriptedWorker(edge.media_port, "s1", 1, "t1", pts_base_us=50_000_000).start()
    viewer = await WhepViewer(edge.url).start()
    pc = viewer.pc
    try:
        await await_for(lambda: len(viewer.readable()) >= 10, "frames from the first worker", 20)
        first.kill()  # kill -9: the edge sees the link break
        await await_for(lambda: edge.broken == [1], "the broken-link report")
        switched = time.time()
        # The successor's clock restarts far behind its predecessor's, as a real one may.
        second = await ScriptedWorker(edge.media_port, "s1", 2, "t2", pts_base_us=0).start()
        try:
            await await_for(
                lambda: any(r.capture and r.capture > switched for r in viewer.records),
                "frames from the second worker at the same viewer",
                20,
            )
            await await_for(
                lambda: sum(bool(r.capture and r.capture > switched) for r in viewer.records) >= 10,
                "ten frames from the second worker",
                20,
            )
        finally:
            await second.stop()
        assert viewer.pc is pc and pc.connectionState == "connected"
        stamps = viewer.rtp_timestamps
        assert all(b > a for a, b in pairwise(stamps)), "RTP timestamps went backwards"
        gaps = viewer.gaps()
        assert gaps.content_jump > 0 and gaps.rewind == 0
    finally:
        await viewer.stop()
        await first.stop()


async def test_the_publisher_leaving_ends_the_viewers_sessions(edge: Edge) -> None:
    worker = await ScriptedWorker(edge.media_port, "s1", 1).start()
    viewer = await WhepViewer(edge.url).start()
    try:
        await await_for(lambda: len(viewer.readable()) >= 3, "frames at the viewer", 20)
        edge.relay.end("publisher left")
        await await_for(lambda: not edge.whep.sessions, "the WHEP session to close")
        await await_for(
            lambda: viewer.pc.connectionState == "closed", "the viewer to see the connection close"
        )
    finally:
        await viewer.stop()
        await worker.stop()


async def test_viewers_ride_out_a_publisher_reconnect_on_a_new_clock(edge: Edge) -> None:
    # A feed that would wait a minute for a source on another clock: only new_publisher() helps.
    first_relay = StreamRelay(
        "s1", GopCache(1 << 20, 10), edge.broken.append, Feed("s1", catchup_timeout=60)
    )
    edge.relay = first_relay
    first_relay.packet(MediaPacket(FEED_VIDEO, 50_000_000, 50_000_000, b"", keyframe=True))
    first = await ScriptedWorker(edge.media_port, "s1", 1, "t1", pts_base_us=50_000_000).start()
    viewer = await WhepViewer(edge.url).start()
    pc = viewer.pc
    second: ScriptedWorker | None = None
    try:
        await await_for(lambda: len(viewer.readable()) >= 5, "frames before the drop", 20)
        # The publisher drops: its session ends but keeps the feed, as Publishing does.
        first_relay.end("publisher dropped", keep_feed=True)
        first.kill()
        assert viewer.pc.connectionState == "connected" and first_relay.feed.viewers
        dropped = time.time()
        # It comes back with its clock restarted; a new session (relay) takes the same feed.
        edge.relay = StreamRelay("s1", GopCache(1 << 20, 10), edge.broken.append, first_relay.feed)
        edge.relay.packet(MediaPacket(FEED_VIDEO, 1_000_000, 1_000_000, b"", keyframe=True))
        second = await ScriptedWorker(edge.media_port, "s1", 2, "t2", pts_base_us=1_000_000).start()
        await await_for(
            lambda: sum(bool(r.capture and r.capture > dropped) for r in viewer.records) >= 5,
            "frames from the new publish session at the same viewer",
            20,
        )
        assert viewer.pc is pc and pc.connectionState == "connected"
        assert all(b > a for a, b in pairwise(viewer.rtp_timestamps))
    finally:
        await viewer.stop()
        await first.stop()
        if second is not None:
            await second.stop()
