"""Real WebRTC publishers (the aiortc harness) into the edge's WHIP endpoint, media checked at the relay."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time

import av
from aiortc import RTCSessionDescription

from cluster.medialink.frames import MediaPacket
from edge.ingest.whip.packets import AUDIO_TRACK, VIDEO_TRACK, nal_types
from edge.relay.hub import StreamRelay
from tests.conftest import await_for
from tests.edge.whip.conftest import Edge
from tests.edge.whip.rtc import sender
from tests.edge.whip.sdp import OBS
from zoocast.harness import timecode
from zoocast.harness.frames import luma
from zoocast.harness.rtc_tracks import PatternTrack, ToneTrack
from zoocast.harness.whip_publisher import WhipStats, publish_whip

W, H, FPS = 160, 90, 15


def _start(edge: Edge, key: str, stop: asyncio.Event, **kw: object) -> asyncio.Task[WhipStats]:
    coro = publish_whip(
        edge.url("/whip/cam"),
        key,
        width=W,
        height=H,
        fps=FPS,
        stop=stop,
        **kw,  # type: ignore[arg-type]
    )
    return asyncio.get_running_loop().create_task(coro)


def _decode(codec: str, packets: list[MediaPacket]) -> list[av.VideoFrame]:
    decoder = av.CodecContext.create(codec, "r")
    out = []
    for p in packets:
        out += decoder.decode(av.Packet(p.data))  # type: ignore[attr-defined]
    return out


async def test_obs_shaped_publish_passes_h264_and_opus_through(edge: Edge) -> None:
    key = await edge.registry.create("cam", "tiny")
    stop = asyncio.Event()
    task = _start(edge, key, stop, codec="h264", gop=1.0, bitrate=200_000, candidates=False)
    relay = await await_for(lambda: edge.publishing.relay("cam"), "the publish to start")
    # 65 packets a second (15 video, 50 audio): this is more than two seconds, two GOPs.
    await await_for(lambda: relay.packets_in > 160, "media at the relay", 15)
    codecs, packets = relay.gop.snapshot()
    stop.set()
    stats = await asyncio.wait_for(task, 10)
    assert stats.connected and "/whip/cam/" in stats.location and stats.frames > 20
    by_track = {c.track: c for c in codecs}
    assert (by_track[VIDEO_TRACK].codec, by_track[VIDEO_TRACK].bitstream) == ("h264", "annexb")
    assert (by_track[AUDIO_TRACK].codec, by_track[AUDIO_TRACK].sample_rate) == ("opus", 48_000)
    video = [p for p in packets if p.track == VIDEO_TRACK]
    audio = [p for p in packets if p.track == AUDIO_TRACK]
    assert video[0].keyframe and {7, 8, 5} <= set(nal_types(video[0].data))
    assert [p.keyframe for p in video] == [5 in nal_types(p.data) for p in video]
    assert any(p.keyframe for p in video[1:]), "a 1 s GOP shows a second IDR"
    for track in (video, audio):
        dts = [p.dts_us for p in track]
        assert dts == sorted(set(dts)) and all(p.pts_us == p.dts_us for p in track)
    assert video[0].dts_us < 2_000_000, "the session clock starts near 0"
    steps = {b.dts_us - a.dts_us for a, b in itertools.pairwise(audio)}
    assert 20_000 in steps  # 20 ms Opus packets on the 48 kHz clock
    codes = [timecode.read(luma(f)) for f in _decode("h264", video)]
    assert sum(c is not None for c in codes) >= len(codes) * 0.9, codes
    # DELETE at the end of publish_whip ended the publish as an RTMP unpublish does.
    await await_for(lambda: relay.ended and not edge.ingest.sessions, "the publish to end")


async def test_browser_shaped_vp8_publish_answers_a_keyframe_request(edge: Edge) -> None:
    key = await edge.registry.create("cam", "tiny")
    stop = asyncio.Event()
    task = _start(edge, key, stop, codec="vp8")
    relay = await await_for(lambda: edge.publishing.relay("cam"), "the publish to start")
    await await_for(lambda: relay.packets_in > 30, "media at the relay", 15)
    session = next(iter(edge.ingest.sessions.values()))

    def newest_keyframe_us() -> int:
        keys = [p.dts_us for p in relay.gop.snapshot()[1] if p.track == VIDEO_TRACK and p.keyframe]
        return max(keys)

    # aiortc's VP8 encoder makes a keyframe every 3000 frames by itself: a new one within a
    # second or two of the request is the answer to the PLI.
    asked_at = max(p.dts_us for p in relay.gop.snapshot()[1])
    # The way a transcoder's KEYREQ reaches the publisher: through the publish session.
    session.publish.request_keyframe()
    assert not session.request_keyframe(), "PLI is rate-limited"
    await await_for(lambda: newest_keyframe_us() > asked_at, "a keyframe answering the PLI", 5)
    codecs, packets = relay.gop.snapshot()
    stop.set()
    await asyncio.wait_for(task, 10)
    assert [c.codec for c in codecs if c.track == VIDEO_TRACK] == ["vp8"]
    frames = _decode("vp8", [p for p in packets if p.track == VIDEO_TRACK])
    assert frames and any(timecode.read(luma(f)) for f in frames)


async def test_a_publisher_that_closes_without_delete_ends_the_publish(edge: Edge) -> None:
    key = await edge.registry.create("cam", "tiny")
    pc = sender([PatternTrack(W, H, FPS), ToneTrack()], "VP8")
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/sdp"}
    resp = await edge.client.post("/whip/cam", data=pc.localDescription.sdp, headers=headers)
    assert resp.status == 201, await resp.text()
    await pc.setRemoteDescription(RTCSessionDescription(await resp.text(), "answer"))
    relay = await await_for(lambda: edge.publishing.relay("cam"), "the publish to start")
    await await_for(lambda: relay.packets_in > 10, "media at the relay", 15)
    await pc.close()  # a browser tab closing: RTCP BYE, then silence
    await await_for(lambda: relay.ended, "the publish to end", 10)
    assert not edge.ingest.sessions and not edge.publishing.sessions
    assert await edge.registry.zk.get(edge.registry.paths.publisher("cam")) is None


async def _encoder_publishing(
    edge: Edge, key: str
) -> tuple[asyncio.subprocess.Process, StreamRelay]:
    """An encoder in its own process (one that can be killed -9), publishing "cam" with media."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "zoocast.cli", "publish-test", "cam", "--whip", edge.url("/"),
        "--key", key, "--size", "160x90", "--fps", "15",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        relay = await await_for(lambda: edge.publishing.relay("cam"), "the publish", 20)
        await await_for(lambda: relay.packets_in > 20, "media at the relay", 15)
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    return proc, relay


async def test_a_killed_publisher_is_ended_by_the_idle_timeout(edge: Edge) -> None:
    key = await edge.registry.create("cam", "tiny")
    # kill -9 of an encoder: no DELETE, no BYE, only silence.
    proc, relay = await _encoder_publishing(edge, key)
    proc.kill()
    await proc.wait()
    killed = time.monotonic()
    await await_for(lambda: relay.ended, "the publish to end", 20)
    assert time.monotonic() - killed < 15.0, "the idle timeout (2 s), not ICE consent (30 s)"
    # The relay ends first; the sessions go once the publisher znode is removed.
    await await_for(
        lambda: not edge.publishing.sessions and not edge.ingest.sessions, "the sessions to go"
    )


async def test_a_publisher_reconnecting_replaces_its_silent_session_and_a_live_one_gets_409(
    edge: Edge,
) -> None:
    key = await edge.registry.create("cam", "tiny")
    proc, relay = await _encoder_publishing(edge, key)
    try:
        [old] = edge.ingest.sessions.values()
        # While it sends, another publisher with the key is a second publisher.
        headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {key}"}
        second = await edge.client.post("/whip/cam", data=OBS.encode(), headers=headers)
        assert second.status == 409, await second.text()
    finally:
        proc.kill()  # the encoder dies: no DELETE, no BYE
        await proc.wait()
    # 0.6 x the fixture's 2 s idle timeout
    await await_for(lambda: old.silent_for() > 1.4, "silence from the killed publisher")
    assert not relay.ended  # its idle timeout has not run out yet
    stop = asyncio.Event()
    task = _start(edge, key, stop)  # it comes back with the same key
    try:
        new_relay = await await_for(
            lambda: (r := edge.publishing.relay("cam")) is not relay and r, "the new publish", 20
        )
        assert relay.ended and old.id not in edge.ingest.sessions
        await await_for(lambda: new_relay.packets_in > 20, "media from the new session", 15)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
