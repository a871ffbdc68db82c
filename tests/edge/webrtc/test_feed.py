"""The Feed and viewer tracks without sockets: keyframe gating, slow viewers, KEYREQ coalescing."""

from __future__ import annotations

from cluster.medialink.frames import FEED_AUDIO, FEED_VIDEO, CodecConfig, MediaPacket
from edge.playback.webrtc.feed import Feed
from tests.conftest import await_for

VIDEO = CodecConfig(FEED_VIDEO, "video", "h264", b"", "annexb", 192, 108)
AUDIO = CodecConfig(FEED_AUDIO, "audio", "opus", sample_rate=48_000, channels=2)


class Upstream:
    def __init__(self) -> None:
        self.keyreqs = 0

    def __call__(self) -> bool:
        self.keyreqs += 1
        return True


def _feed(now: list[float], keyreq_interval: float = 0.5) -> tuple[Feed, Upstream]:
    feed = Feed("s1", keyreq_interval=keyreq_interval, video_queue=4, clock=lambda: now[0])
    up = Upstream()
    feed.source(1, up)
    feed.codec(1, VIDEO)
    feed.codec(1, AUDIO)
    return feed, up


def _video(i: int, key: bool = False, epoch_pts: int = 0) -> MediaPacket:
    return MediaPacket(FEED_VIDEO, epoch_pts + i * 66_666, 0, b"v%d" % i, keyframe=key)


async def test_viewer_starts_at_a_keyframe_and_the_feed_at_the_sources_first_one() -> None:
    now = [0.0]
    feed, _ = _feed(now)
    viewer = feed.add_viewer(lambda: None)
    feed.packet(1, MediaPacket(FEED_AUDIO, 0, 0, b"a0"))  # before any keyframe: dropped
    feed.packet(1, _video(0))
    assert viewer.video.sent == 0 and not viewer.audio._queue and feed.packets_in == 2
    feed.packet(1, _video(1, key=True))
    feed.packet(1, _video(2))
    feed.packet(1, MediaPacket(FEED_AUDIO, 70_000, 0, b"a1"))
    got = [bytes(await viewer.video.recv()) for _ in range(2)]
    assert got == [b"v1", b"v2"]
    audio = await viewer.audio.recv()
    assert bytes(audio) == b"a1" and audio.pts == (70_000 - 66_666) * 48 // 1000  # as video


async def test_slow_viewer_skips_to_the_next_keyframe_without_holding_others() -> None:
    now = [0.0]
    feed, up = _feed(now, keyreq_interval=0.0)
    slow, fast = feed.add_viewer(lambda: None), feed.add_viewer(lambda: None)
    feed.packet(1, _video(0, key=True))
    assert bytes(await slow.video.recv()) == b"v0"  # it reads once, then stalls
    asked = up.keyreqs
    for i in range(1, 10):
        feed.packet(1, _video(i))
        assert bytes(await fast.video.recv()) == b"v%d" % (i - 1)
    assert slow.video.skips == 1 and slow.video.waiting_key
    assert len(slow.video._queue) == 0
    assert up.keyreqs == asked + 1  # it skipped: an IDR shortens its wait
    feed.packet(1, _video(10, key=True))
    assert bytes(await slow.video.recv()) == b"v10"


async def test_a_viewer_not_reading_yet_overflows_without_asking() -> None:
    now = [0.0]
    feed, up = _feed(now, keyreq_interval=0.0)
    viewer = feed.add_viewer(lambda: None)  # still in ICE/DTLS: its sender does not read
    asked = up.keyreqs
    feed.packet(1, _video(0, key=True))
    for i in range(1, 10):
        feed.packet(1, _video(i))
    assert viewer.video.skips == 1 and up.keyreqs == asked


async def test_keyreqs_are_coalesced_and_a_late_one_is_sent_when_its_turn_comes() -> None:
    now = [100.0]
    feed, up = _feed(now)
    feed.add_viewer(lambda: None)
    assert up.keyreqs == 1  # the first viewer asks at once
    for _ in range(5):
        feed.request_keyframe("viewer PLI/FIR")
    assert up.keyreqs == 1 and feed.keys.pending
    now[0] += 0.5
    # The event loop's timer, not the fake clock, fires the pending request.
    await await_for(lambda: up.keyreqs == 2, "the pending KEYREQ")


async def test_a_keyframe_answers_a_pending_request() -> None:
    now = [100.0]
    feed, up = _feed(now)
    feed.add_viewer(lambda: None)
    feed.request_keyframe("second viewer")
    assert feed.keys.pending
    feed.packet(1, _video(0, key=True))
    assert not feed.keys.pending and up.keyreqs == 1


async def test_stale_epoch_is_ignored_and_end_closes_viewers() -> None:
    now = [0.0]
    feed, _ = _feed(now)
    ended: list[bool] = []
    viewer = feed.add_viewer(lambda: ended.append(True))
    feed.source(2, Upstream())
    feed.codec(2, VIDEO)
    feed.packet(1, _video(0, key=True))
    assert feed.packets_in == 0
    feed.close()
    assert ended == [True] and not feed.viewers and viewer.video.readyState == "ended"


async def test_a_source_starts_at_a_live_keyframe_not_at_its_replayed_past() -> None:
    now = [100.0]
    live = [10_000_000]
    feed = Feed("s1", clock=lambda: now[0], live_us=lambda: live[0], catchup_timeout=3.0)
    up = Upstream()
    feed.source(1, up)
    feed.codec(1, VIDEO)
    viewer = feed.add_viewer(lambda: None)
    feed.packet(1, _video(0, key=True, epoch_pts=5_000_000))  # from the GOP cache: seconds old
    assert feed.skipped_behind == 1 and not feed.timeline.anchored
    feed.packet(1, _video(0, key=True, epoch_pts=9_800_000))  # the IDR it asked for, live
    assert feed.timeline.anchored and bytes(await viewer.video.recv()) == b"v0"
    # A source whose clock is not the publisher's is taken after catchup_timeout.
    feed.source(2, up)
    feed.codec(2, VIDEO)
    feed.packet(2, _video(1, key=True))
    assert not feed.timeline.anchored
    now[0] += 3.5
    feed.packet(2, _video(2, key=True))
    assert feed.timeline.anchored and bytes(await viewer.video.recv()) == b"v2"


async def test_a_successor_never_repeats_what_its_predecessor_sent() -> None:
    now = [100.0]
    live = [10_000_000]
    feed = Feed("s1", clock=lambda: now[0], live_us=lambda: live[0])
    up = Upstream()
    feed.source(1, up)
    feed.codec(1, VIDEO)
    viewer = feed.add_viewer(lambda: None)
    for i in range(4):
        feed.packet(1, _video(i, key=i == 0, epoch_pts=9_700_000))
    feed.source(2, up)
    feed.codec(2, VIDEO)
    feed.codec(2, AUDIO)
    # Its first IDR is recent enough to be live, but the viewer saw that moment already.
    feed.packet(2, _video(1, key=True, epoch_pts=9_700_000))
    feed.packet(2, MediaPacket(FEED_AUDIO, 9_800_000, 0, b"old audio"))
    assert not feed.timeline.anchored and feed.skipped_behind == 1
    feed.packet(2, _video(4, epoch_pts=9_700_000))  # new and live, between keyframes
    assert up.keyreqs == 2  # the new viewer's, then "send an IDR now"
    feed.packet(2, _video(5, key=True, epoch_pts=9_700_000))
    feed.packet(2, MediaPacket(FEED_AUDIO, 9_800_000, 0, b"old audio"))
    assert feed.timeline.anchored
    assert [bytes(await viewer.video.recv()) for _ in range(5)] == [
        b"v0",
        b"v1",
        b"v2",
        b"v3",
        b"v5",
    ]
    assert not viewer.audio._queue
