"""The Redis side of a worker against a real Redis: numbering, discontinuities, fencing, catalog."""

from __future__ import annotations

import logging

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from cluster.errors import Fenced
from cluster.hot import keys
from cluster.hot.fence import Stale
from cluster.hot.model import PartEntry, RenditionInfo
from edge.playback.hls.playlist import media
from tests.transcoder.pipeline import hot
from transcoder.pipeline import catalog, fmp4
from transcoder.pipeline.fmp4 import Sample
from transcoder.pipeline.output import Output, Resume, _PartWrite, _SegmentWrite, resume_point
from transcoder.pipeline.segments import Closed, Mark, Part, Segmenter

LOG = logging.LoggerAdapter(logging.getLogger("test"), {})
INFO = RenditionInfo("240p", "video", 500_000, "avc1.42c00d", 426, 240, 15.0)


def output(r: redis.Redis, epoch: int, window: int = 3) -> Output:
    return Output(r, "cam", epoch, window, 30.0, LOG, gop_seconds=0.0)


def closed(n: int) -> Closed:
    start = n * 2_000_000
    return Closed(
        start * 9 // 100,
        [Sample(b"x", 180_000, True)],
        Mark(start, 1000.0 + n * 2),
        Mark(start + 2_000_000, 1002.0 + n * 2),
    )


def test_resume_parses_the_state_hash() -> None:
    assert Resume.parse({}) == Resume(0, 0, None)
    assert not Resume.parse({}).continues
    got = Resume.parse({b"msn": b"9", b"disc": b"2", b"epoch": b"3", b"end_us": b"20000000"})
    assert got == Resume(10, 2, 20_000_000) and got.continues


def test_the_resume_point_follows_the_video_renditions() -> None:
    assert resume_point({"240p": Resume(), "audio": Resume()}, "audio") == 0
    video_and_audio = {
        "240p": Resume(5, 0, 8_000_000),
        "120p": Resume(4, 0, 6_000_000),  # its last write was lost: the newest end wins
        "audio": Resume(5, 0, 8_010_000),
    }
    assert resume_point(video_and_audio, "audio") == 8_000_000
    assert resume_point({"audio": Resume(3, 0, 6_005_000)}, "audio") == 6_005_000


def test_segments_extend_the_window_and_state(redis_sync: redis.Redis) -> None:
    out = output(redis_sync, 1)
    out.claim()
    track = out.track("240p", Resume())
    track.init = b"init"
    for n in range(9):
        track.write(closed(n), INFO)
    entries = hot.entries(redis_sync, "cam", "240p")
    assert [e.msn for e in entries] == [2, 3, 4, 5, 6, 7, 8]  # the window of 3, and slack
    assert redis_sync.get(keys.init("cam", "240p", 1)) == b"init"
    seg = hot.blob(redis_sync, keys.segment("cam", "240p", 8))
    assert fmp4.base_decode_time(seg) == 16_000_000 * 9 // 100
    assert 0 < redis_sync.pttl(keys.segment("cam", "240p", 8)) <= 30_000
    assert 0 < redis_sync.pttl(keys.init("cam", "240p", 1)) <= 30_000
    assert hot.state(redis_sync, "cam", "240p") == {
        "msn": 8,
        "disc": 0,
        "epoch": 1,
        "end_us": 18_000_000,
    }


def test_a_lost_write_marks_the_next_segment_as_a_discontinuity(
    redis_sync: redis.Redis,
) -> None:
    out = output(redis_sync, 1)
    out.claim()
    track = out.track("240p", Resume())
    track.init = b"init"
    track.write(closed(0), INFO)
    out.client = redis.Redis(port=1, retry=Retry(NoBackoff(), 0))  # Redis away
    track.write(closed(1), INFO)
    out.client = redis_sync
    track.write(closed(2), INFO)
    entries = hot.entries(redis_sync, "cam", "240p")
    assert [(e.msn, e.disc, e.start_us) for e in entries] == [(0, False, 0), (1, True, 4_000_000)]
    assert hot.state(redis_sync, "cam", "240p")["disc"] == 1


def test_an_older_epoch_is_fenced_and_an_equal_one_cannot_rewind(redis_sync: redis.Redis) -> None:
    new = output(redis_sync, 2)
    new.claim()
    old = output(redis_sync, 1)
    with pytest.raises(Fenced):
        old.claim()
    track = new.track("240p", Resume())
    track.init = b"init"
    track.write(closed(0), INFO)
    twin = new.track("240p", Resume())  # a second writer of the same epoch, starting over
    twin.init = b"init"
    with pytest.raises(Stale):
        twin.write(closed(0), INFO)
    assert [e.msn for e in hot.entries(redis_sync, "cam", "240p")] == [0]


def test_the_rendition_list_waits_for_every_expected_rendition(redis_sync: redis.Redis) -> None:
    out = Output(redis_sync, "cam", 1, 3, 30.0, LOG, gop_seconds=60.0)
    out.claim()
    out.catalog.expect(["240p", "120p"])
    out.catalog.expect(["audio"])
    out.catalog.ready(INFO)
    assert redis_sync.get(keys.renditions("cam")) is None
    audio = RenditionInfo("audio", "audio", 70_000, "mp4a.40.2")
    low = RenditionInfo("120p", "video", 160_000, "avc1.42c00c", 212, 120, 15.0)
    out.catalog.ready(audio)
    out.catalog.ready(low)
    assert list(hot.renditions(redis_sync, "cam").values()) == [INFO, low, audio]


def test_parts_are_published_then_joined_into_their_segment(redis_sync: redis.Redis) -> None:
    seg = Segmenter(part_ticks=45_000)
    out = output(redis_sync, 4)
    out.claim()
    track = out.track("240p", Resume())
    track.init = b"init"
    pubsub = redis_sync.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.events("cam", "240p"))
    for i in range(61):  # one 2 s segment of 30 fps, closed by the next one's first frame
        mark = Mark(i * 1_000_000 // 30, 1000.0) if i % 60 == 0 else None
        done = seg.add(i * 3000, i * 3000, bytes([i]) * 10, i % 60 == 0, mark)
        for part in seg.take_parts():
            track.submit_part(part)
            item = out._queue.get_nowait()  # the writer thread's work, done here in order
            assert isinstance(item, _PartWrite)
            track.write_part(item.part, item.body)
            if part.index == 1:  # mid-segment: the open parts are listed, the segment is not
                listed = [
                    PartEntry.from_json(x)
                    for x in redis_sync.lrange(keys.parts("cam", "240p"), 0, -1)
                ]
                assert [(p.msn, p.index, p.duration, p.independent) for p in listed] == [
                    (0, 0, 0.5, True), (0, 1, 0.5, False)
                ]  # fmt: skip
                assert hot.entries(redis_sync, "cam", "240p") == []
        if done is not None:
            track.submit(done, INFO)
            item = out._queue.get_nowait()
            assert isinstance(item, _SegmentWrite) and item.body is not None
            track.write(item.closed, item.info, item.body)
    parts = [hot.blob(redis_sync, keys.part("cam", "240p", 4, 0, i)) for i in range(4)]
    assert hot.blob(redis_sync, keys.segment("cam", "240p", 0)) == b"".join(parts)
    (entry,) = hot.entries(redis_sync, "cam", "240p")
    assert entry.parts == [[0.5, True], [0.5, False], [0.5, False], [0.5, False]]
    assert redis_sync.llen(keys.parts("cam", "240p")) == 0  # listed in the entry now
    events: list[str] = []
    for _ in range(50):  # an ignored subscribe confirmation also reads as None
        if len(events) == 5:
            break
        msg = pubsub.get_message(timeout=0.05)
        if msg is not None:
            events.append(msg["data"].decode())
    assert events == ["0.0", "0.1", "0.2", "0.3", "0"]
    pubsub.close()


def test_a_fenced_writer_cannot_publish_parts(redis_sync: redis.Redis) -> None:
    old, new = output(redis_sync, 1), output(redis_sync, 2)
    old.claim()
    track = old.track("240p", Resume())
    track.init = b"init"
    new.claim()
    part = Part(0, 0, [Sample(b"x", 3000, True)])
    with pytest.raises(Fenced):
        track.write_part(part, b"fragment")
    assert redis_sync.exists(keys.part("cam", "240p", 1, 0, 0), keys.parts("cam", "240p")) == 0


def test_a_redis_that_restarted_empty_gets_init_and_renditions_back(
    redis_sync: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog, "REFRESH", 0.0)  # every segment may rewrite the list
    out = output(redis_sync, 1)
    out.claim()
    out.catalog.expect(["240p"])
    track = out.track("240p", Resume())
    track.init = b"init"
    track.write(closed(0), INFO)
    assert redis_sync.get(keys.renditions("cam")) is not None
    redis_sync.flushall()  # a restart without persistence
    track.write(closed(1), INFO)
    assert redis_sync.get(keys.init("cam", "240p", 1)) == b"init"
    assert redis_sync.get(keys.renditions("cam")) is not None
    assert [e.msn for e in hot.entries(redis_sync, "cam", "240p")] == [1]  # never backwards


def test_a_segment_lost_after_its_parts_went_out_becomes_a_gap_never_rewritten(
    redis_sync: redis.Redis,
) -> None:
    out = output(redis_sync, 3)
    out.claim()
    track = out.track("240p", Resume())
    track.init = b"init"
    sample = [Sample(b"x", 45_000, True)]
    # Segment 0's first two parts go out; then the segment itself never reaches Redis.
    track.write_part(Part(0, 0, sample), b"seg0-part0")
    track.write_part(Part(1, 45_000, sample), b"seg0-part1")
    # The next segment starts: msn 0 is spent (its parts' URIs are out), so it goes to msn 1.
    track.write_part(Part(0, 90_000, sample), b"seg1-part0")
    assert redis_sync.get(keys.part("cam", "240p", 3, 0, 0)) == b"seg0-part0"  # kept its bytes
    assert redis_sync.get(keys.part("cam", "240p", 3, 1, 0)) == b"seg1-part0"
    entries = hot.entries(redis_sync, "cam", "240p")
    assert [(e.msn, e.gap, e.duration) for e in entries] == [(0, True, 1.0)]
    track.write(closed(1), INFO, b"seg1")
    entries = hot.entries(redis_sync, "cam", "240p")
    assert [(e.msn, e.gap) for e in entries] == [(0, True), (1, False)]
    text = media(entries, 0)
    assert text.index("#EXT-X-GAP") < text.index("0.m4s") < text.index("1.m4s")
