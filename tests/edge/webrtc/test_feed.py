"""The Feed and its viewers' RtpOut without sockets: keyframe gating, slow viewers, KEYREQ."""

from __future__ import annotations

from cluster.medialink.frames import FEED_AUDIO, FEED_VIDEO, CodecConfig, MediaPacket
from edge.playback.webrtc.feed import Feed, Viewer
from tests.conftest import await_for
from tests.edge.webrtc.wire import Sink, out_to

VIDEO = CodecConfig(FEED_VIDEO, "video", "h264", b"", "annexb", 192, 108)
AUDIO = CodecConfig(FEED_AUDIO, "audio", "opus", sample_rate=48_000, channels=2)


class Upstream:
    def __init__(self) -> None:
        self.keyreqs = 0

    def __call__(self) -> bool:
        self.keyreqs += 1
        return True


def _feed(now: list[float], keyreq_interval: float = 0.5) -> tuple[Feed, Upstream]:
    feed = Feed("s1", keyreq_interval=keyreq_interval, clock=lambda: now[0])
    up = Upstream()
    feed.source(1, up)
    feed.codec(1, VIDEO)
    feed.codec(1, AUDIO)
    return feed, up


def _video(i: int, key: bool = False, epoch_pts: int = 0) -> MediaPacket:
    data = b"\x00\x00\x00\x01" + (b"\x65" if key else b"\x41") + b"v%d" % i  # one NAL unit
    return MediaPacket(FEED_VIDEO, epoch_pts + i * 66_666, 0, data, keyframe=key)


class Watcher:
    """A viewer on the feed whose RTP, in clear, lands in two sinks."""

    def __init__(
        self, feed: Feed, on_end: list[bool] | None = None, connected: bool = True
    ) -> None:
        self.video_sink, self.audio_sink = Sink(connected), Sink(connected)
        ask = feed.request_keyframe
        self.viewer = Viewer(
            out_to(self.video_sink, "video", ts_origin=0),
            out_to(self.audio_sink, "audio", ts_origin=0),
            lambda: (on_end if on_end is not None else []).append(True),
        )
        assert self.viewer.video is not None
        self.viewer.video.ask_key = ask
        feed.add_viewer(self.viewer)

    def frames(self) -> list[bytes]:
        """The video frames received, by the NAL unit's own bytes (b"v1" for frame 1)."""
        return [p[1:] for p in self.video_sink.payloads()]


async def test_viewer_starts_at_a_keyframe_and_the_feed_at_the_sources_first_one() -> None:
    now = [0.0]
    feed, _ = _feed(now)
    viewer = Watcher(feed)
    feed.packet(1, MediaPacket(FEED_AUDIO, 0, 0, b"a0"))  # before any keyframe: dropped
    feed.packet(1, _video(0))
    assert not viewer.frames() and not viewer.audio_sink.datagrams and feed.packets_in == 2
    feed.packet(1, _video(1, key=True))
    feed.packet(1, _video(2))
    feed.packet(1, MediaPacket(FEED_AUDIO, 70_000, 0, b"a1"))
    assert viewer.frames() == [b"v1", b"v2"]
    assert [p.timestamp for p in viewer.video_sink.packets] == [0, 66_666 * 90 // 1000]
    [audio] = viewer.audio_sink.packets
    assert audio.payload == b"a1" and audio.timestamp == (70_000 - 66_666) * 48 // 1000  # as video


async def test_slow_viewer_skips_to_the_next_keyframe_without_holding_others() -> None:
    now = [0.0]
    feed, up = _feed(now, keyreq_interval=0.0)
    slow, fast = Watcher(feed), Watcher(feed)
    feed.packet(1, _video(0, key=True))
    asked = up.keyreqs
    slow.video_sink.full = True  # its socket takes no more
    for i in range(1, 10):
        feed.packet(1, _video(i))
    assert fast.frames() == [b"v%d" % i for i in range(10)]
    assert slow.frames() == [b"v0"]
    assert slow.viewer.video is not None and slow.viewer.video.skips == 1
    assert up.keyreqs == asked + 1  # it skipped: an IDR shortens its wait
    slow.video_sink.full = False
    feed.packet(1, _video(10))
    feed.packet(1, _video(11, key=True))
    assert slow.frames() == [b"v0", b"v11"]


async def test_a_viewer_connecting_mid_gop_catches_up_from_a_recent_keyframe() -> None:
    now = [0.0]
    feed, up = _feed(now, keyreq_interval=0.0)
    viewer = Watcher(feed, connected=False)  # still in ICE/DTLS
    asked = up.keyreqs
    feed.packet(1, _video(0, key=True))
    for i in range(1, 5):
        feed.packet(1, _video(i))
    assert not viewer.frames() and up.keyreqs == asked
    now[0] += 0.4
    viewer.video_sink.connected = True
    feed.packet(1, _video(5))  # connected between keyframes: the GOP so far, then this frame
    assert viewer.frames() == [b"v%d" % i for i in range(6)] and up.keyreqs == asked
    seqs = [p.seq for p in viewer.video_sink.packets]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(6)]


async def test_a_viewer_connecting_long_after_the_keyframe_asks_for_a_new_one() -> None:
    now = [0.0]
    feed, up = _feed(now, keyreq_interval=0.0)
    viewer = Watcher(feed, connected=False)
    feed.packet(1, _video(0, key=True))
    feed.packet(1, _video(1))
    asked = up.keyreqs
    now[0] += 1.5  # a replay from that keyframe would be a burst of 1.5 s
    viewer.video_sink.connected = True
    feed.packet(1, _video(2))
    assert not viewer.frames() and up.keyreqs == asked + 1
    feed.packet(1, _video(3, key=True))
    assert viewer.frames() == [b"v3"]


async def test_no_catch_up_across_frames_nobody_was_sent_or_onto_a_keyframe() -> None:
    now = [0.0]
    feed, up = _feed(now, keyreq_interval=0.0)
    first = Watcher(feed)
    feed.packet(1, _video(0, key=True))
    feed.packet(1, _video(1))
    feed.remove_viewer(first.viewer)
    feed.packet(1, _video(2))  # no viewer: not kept, so the GOP has a hole from here
    late = Watcher(feed, connected=False)
    late.video_sink.connected = True
    asked = up.keyreqs
    feed.packet(1, _video(3))
    assert not late.frames() and up.keyreqs == asked + 1  # asks instead of a broken replay
    feed.packet(1, _video(4, key=True))
    on_key = Watcher(feed, connected=False)
    feed.packet(1, _video(5))
    on_key.video_sink.connected = True
    feed.packet(1, _video(6, key=True))  # connected on a keyframe: no replay of the last GOP
    assert on_key.frames() == [b"v6"] and late.frames() == [b"v4", b"v5", b"v6"]


async def test_keyreqs_are_coalesced_and_a_late_one_is_sent_when_its_turn_comes() -> None:
    now = [100.0]
    feed, up = _feed(now)
    Watcher(feed)
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
    Watcher(feed)
    feed.request_keyframe("second viewer")
    assert feed.keys.pending
    feed.packet(1, _video(0, key=True))
    assert not feed.keys.pending and up.keyreqs == 1


async def test_stale_epoch_is_ignored_and_end_closes_viewers() -> None:
    now = [0.0]
    feed, _ = _feed(now)
    ended: list[bool] = []
    viewer = Watcher(feed, ended)
    feed.source(2, Upstream())
    feed.codec(2, VIDEO)
    feed.packet(1, _video(0, key=True))
    assert feed.packets_in == 0
    feed.close()
    assert ended == [True] and not feed.viewers
    assert all(out is not None and out.closed for out in (viewer.viewer.video, viewer.viewer.audio))


async def test_a_source_starts_at_a_live_keyframe_not_at_its_replayed_past() -> None:
    now = [100.0]
    live = [10_000_000]
    feed = Feed("s1", clock=lambda: now[0], live_us=lambda: live[0], catchup_timeout=3.0)
    up = Upstream()
    feed.source(1, up)
    feed.codec(1, VIDEO)
    viewer = Watcher(feed)
    feed.packet(1, _video(0, key=True, epoch_pts=5_000_000))  # from the GOP cache: seconds old
    assert feed.skipped_behind == 1 and not feed.timeline.anchored
    feed.packet(1, _video(0, key=True, epoch_pts=9_800_000))  # the IDR it asked for, live
    assert feed.timeline.anchored and viewer.frames() == [b"v0"]
    # A source whose clock is not the publisher's is taken after catchup_timeout.
    feed.source(2, up)
    feed.codec(2, VIDEO)
    feed.packet(2, _video(1, key=True))
    assert not feed.timeline.anchored
    now[0] += 3.5
    feed.packet(2, _video(2, key=True))
    assert feed.timeline.anchored and viewer.frames() == [b"v0", b"v2"]


async def test_a_successor_never_repeats_what_its_predecessor_sent() -> None:
    now = [100.0]
    live = [10_000_000]
    feed = Feed("s1", clock=lambda: now[0], live_us=lambda: live[0])
    up = Upstream()
    feed.source(1, up)
    feed.codec(1, VIDEO)
    viewer = Watcher(feed)
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
    assert viewer.frames() == [b"v0", b"v1", b"v2", b"v3", b"v5"]
    assert not viewer.audio_sink.datagrams
