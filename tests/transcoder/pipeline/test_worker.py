"""A worker process end to end: fake edge in, real Redis out, real media both ways."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import redis

from cluster.hot import keys
from tests.conftest import wait_for
from tests.transcoder.conftest import StartWorker
from tests.transcoder.pipeline import hot
from tests.transcoder.pipeline.edge import FakeEdge, Feed
from tests.transcoder.pipeline.media import FPS, Media, demux, make_clip
from transcoder.pipeline import fmp4
from transcoder.pipeline.job import Job

GOP_US = 2_000_000  # the tiny ladder's gop_seconds


def test_worker_writes_an_aligned_ladder_and_ends_on_eos(
    redis_sync: redis.Redis,
    clip: Media,
    edge: FakeEdge,
    make_job: Callable[..., Job],
    start_worker: StartWorker,
) -> None:
    edge.feed(Feed(live=clip.packets, eos=False))
    proc = start_worker(make_job(1))
    wait_for(lambda: hot.has_segments(redis_sync, "cam", 3), "3 segments in every rendition", 30)
    edge.send_eos()
    proc.join(10)
    assert proc.exitcode == 0
    assert int(redis_sync.get(keys.epoch("cam")) or 0) == 1

    segs = {n: hot.entries(redis_sync, "cam", n) for n in hot.RENDITIONS}
    # 8 s of media on a 2 s grid: three closed segments; the fourth never got its end.
    for name, entries in segs.items():
        assert [e.msn for e in entries] == [0, 1, 2], name
        assert not any(e.disc for e in entries)
        assert all(e.epoch == 1 for e in entries)
        assert abs(entries[0].pdt - time.time()) < 30
        # LL-HLS: each segment is exactly its parts, each part at most the part target.
        for e in entries:
            assert e.parts and all(0 < d <= 0.5 for d, _ in e.parts), (name, e.parts)
            assert abs(sum(d for d, _ in e.parts) - e.duration) < 0.03, (name, e)
            assert e.parts[0][1], "a segment's first part starts with a keyframe"
            parts = [
                hot.blob(redis_sync, keys.part("cam", name, 1, e.msn, i))
                for i in range(len(e.parts))
            ]
            assert b"".join(parts) == hot.blob(redis_sync, keys.segment("cam", name, e.msn))
    video = [(e.start_us, e.end_us) for e in segs["240p"]]
    assert video == [(0, GOP_US), (GOP_US, 2 * GOP_US), (2 * GOP_US, 3 * GOP_US)]
    assert [(e.start_us, e.end_us) for e in segs["120p"]] == video
    for a, v in zip(segs["audio"], segs["240p"], strict=True):
        assert abs(a.start_us - v.start_us) < 25_000  # within one AAC frame

    info = hot.renditions(redis_sync, "cam")
    assert set(info) == {"240p", "120p", "audio"}
    assert info["audio"].codecs == "mp4a.40.2"
    for name, height in (("240p", 240), ("120p", 120)):
        assert info[name].codecs.startswith("avc1.") and info[name].height == height
        assert info[name].fps == FPS
        data = hot.file_of(redis_sync, "cam", name, segs[name])
        frames = hot.video(data)
        assert len(frames) == 3 * 2 * FPS
        assert {(f.width, f.height) for f in frames} == {(info[name].width, height)}
        probe = hot.ffprobe(data)["streams"][0]
        assert (probe["codec_name"], probe["height"]) == ("h264", height)
        # Each segment opens with an IDR on the grid: the decoded keyframes say so.
        keys_at = [round(hot.at(f) * 1e6) for f in frames if f.key_frame]
        assert keys_at == [0, GOP_US, 2 * GOP_US]
    audio = hot.file_of(redis_sync, "cam", "audio", segs["audio"])
    samples = hot.audio(audio)
    assert samples and all(f.sample_rate == 48_000 for f in samples)
    assert hot.ffprobe(audio)["streams"][0]["codec_name"] == "aac"
    state = hot.state(redis_sync, "cam", "240p")
    assert state == {"msn": 2, "disc": 0, "epoch": 1, "end_us": 3 * GOP_US}
    assert fmp4.base_decode_time(hot.blob(redis_sync, keys.segment("cam", "240p", 0))) == 0


def test_successor_continues_the_sequence_after_a_discontinuity(
    redis_sync: redis.Redis,
    clip: Media,
    edge: FakeEdge,
    make_job: Callable[..., Job],
    start_worker: StartWorker,
) -> None:
    # Worker A (epoch 1) gets the stream up to 4.5 s and packages [0,2) and [2,4).
    cut_us = 4_500_000
    edge.feed(Feed(live=clip.until(cut_us)))
    a = start_worker(make_job(1))
    wait_for(lambda: hot.has_segments(redis_sync, "cam", 2), "A's two segments", 30)
    a.terminate()
    a.join(5)
    assert a.exitcode == 0
    a_last = {n: hot.entries(redis_sync, "cam", n)[-1] for n in hot.RENDITIONS}
    assert a_last["240p"].end_us == 2 * GOP_US

    # Worker B (epoch 2) gets a GOP-cache-like replay that starts a second before A's end,
    # so it must decode frames A already packaged without packaging them again.
    replay, live = clip.split(replay_from_us=3_000_000, live_from_us=cut_us)
    edge.feed(Feed(replay=replay, live=live))
    b = start_worker(make_job(2))
    wait_for(lambda: hot.has_segments(redis_sync, "cam", 3), "B's first segment", 30)
    edge.send_eos()
    b.join(10)
    assert b.exitcode == 0

    for name in hot.RENDITIONS:
        entries = hot.entries(redis_sync, "cam", name)
        assert [e.msn for e in entries] == [0, 1, 2], name
        first_b = entries[2]
        assert (first_b.epoch, first_b.disc) == (2, True), name
        assert [e.disc for e in entries[:2]] == [False, False]
        # Neither overlap nor gap: B starts where A ended (to an AAC frame for audio).
        assert 0 <= first_b.start_us - a_last[name].end_us < 25_000, name
        assert hot.state(redis_sync, "cam", name)["disc"] == 1
        # Both writers' files decode, each with its own init segment.
        decode = hot.audio if name == "audio" else hot.video
        assert decode(hot.file_of(redis_sync, "cam", name, entries[:2]))
        b_frames = decode(hot.file_of(redis_sync, "cam", name, entries[2:]))
        assert b_frames
        assert abs(hot.at(b_frames[0]) - first_b.start_us / 1e6) < 0.03, name
    video = hot.entries(redis_sync, "cam", "240p")
    assert (video[2].start_us, video[2].end_us) == (2 * GOP_US, 3 * GOP_US)
    seg = hot.blob(redis_sync, keys.segment("cam", "240p", 2))
    assert fmp4.base_decode_time(seg) == 2 * GOP_US * 9 // 100


def test_an_audio_only_opus_stream_becomes_an_aac_rendition(
    tmp_path: Path,
    redis_sync: redis.Redis,
    make_job: Callable[..., Job],
    start_worker: StartWorker,
) -> None:
    media = demux(make_clip(tmp_path / "voice.mkv", audio="opus", video=False))
    # As from WebRTC: Opus without an OpusHead, only the rate and channels.
    codecs = [dataclasses.replace(c, extradata=b"", sample_rate=48_000) for c in media.codecs]
    assert [(c.kind, c.codec) for c in codecs] == [("audio", "opus")]
    edge = FakeEdge(codecs)
    try:
        edge.feed(Feed(live=media.packets))
        proc = start_worker(make_job(1, source=edge.addr))
        wait_for(lambda: hot.has_segments(redis_sync, "cam", 3, ("audio",)), "3 audio segments")
        edge.send_eos()
        proc.join(10)
    finally:
        edge.close()
    assert proc.exitcode == 0
    assert list(hot.renditions(redis_sync, "cam")) == ["audio"]
    entries = hot.entries(redis_sync, "cam", "audio")
    # The grid, to within an AAC frame (Opus from Matroska starts 6.5 ms in, after pre-skip).
    assert all(abs(e.start_us - n * GOP_US) < 25_000 for n, e in enumerate(entries)), entries
    samples = hot.audio(hot.file_of(redis_sync, "cam", "audio", entries))
    assert samples and abs(hot.at(samples[-1]) - 5.98) < 0.05


def test_a_custom_ladder_is_encoded_and_rungs_above_the_source_are_skipped(
    redis_sync: redis.Redis,
    clip: Media,
    edge: FakeEdge,
    make_job: Callable[..., Job],
    start_worker: StartWorker,
) -> None:
    spec = {
        "name": "own",
        "rungs": [
            {"height": 720, "video_kbps": 2000},  # above the 240p source: skipped, not upscaled
            {"height": 180, "video_kbps": 300, "webrtc": True},
            {"height": 96, "video_kbps": 100},
        ],
        "gop_seconds": 1,
        "fps": 15,
        "preset": "ultrafast",
        "audio_kbps": 64,
    }
    edge.feed(Feed(live=clip.packets, eos=False))
    proc = start_worker(make_job(1, stream="own", profile="own", ladder=spec))
    names = ("180p", "96p", "audio")
    wait_for(lambda: hot.has_segments(redis_sync, "own", 3, names), "3 segments of each rung", 30)
    edge.send_eos()
    proc.join(10)
    info = hot.renditions(redis_sync, "own")
    assert set(info) == set(names)
    assert (info["180p"].height, info["96p"].height) == (180, 96)
    assert not hot.entries(redis_sync, "own", "720p")
    entries = hot.entries(redis_sync, "own", "180p")
    assert all(abs(e.duration - 1.0) < 0.01 for e in entries)  # the ladder's own 1 s GOP


def test_a_whole_clip_then_eos_at_once_keeps_its_audio(
    redis_sync: redis.Redis,
    clip: Media,
    edge: FakeEdge,
    make_job: Callable[..., Job],
    start_worker: StartWorker,
) -> None:
    # The audio arrives long before the video chain has decoded its way to the first frame
    # that settles the grid; EOS right behind it must not drop what audio was holding.
    edge.feed(Feed(live=clip.packets, eos=True))
    proc = start_worker(make_job(1, stream="burst"))
    proc.join(60)
    assert proc.exitcode == 0
    video = hot.entries(redis_sync, "burst", "240p")
    audio = hot.entries(redis_sync, "burst", "audio")
    assert len(video) >= 3
    assert len(audio) >= len(video) - 1, (len(audio), len(video))


def test_a_reconnected_publisher_restarts_its_clock_and_the_sequence_continues(
    redis_sync: redis.Redis,
    clip: Media,
    edge: FakeEdge,
    make_job: Callable[..., Job],
    start_worker: StartWorker,
) -> None:
    # Session "a" is carried to the end of the clip: segments [0,2), [2,4), [4,6).
    edge.feed(Feed(live=clip.packets, eos=True))
    a = start_worker(make_job(1, session="a"))
    a.join(60)
    assert a.exitcode == 0
    assert hot.state(redis_sync, "cam", "240p")["end_us"] == 3 * GOP_US
    # The publisher reconnects (session "b"): its clock starts at 0 again. Where session "a"
    # stopped (6 s) means nothing on this clock: nothing may be skipped up to it.
    edge.feed(Feed(live=clip.packets, eos=True))
    b = start_worker(make_job(2, session="b"))
    b.join(60)
    assert b.exitcode == 0
    for name in hot.RENDITIONS:
        entries = hot.entries(redis_sync, "cam", name)
        assert [e.msn for e in entries] == [0, 1, 2, 3, 4, 5], name  # never backwards
        assert [e.disc for e in entries] == [False, False, False, True, False, False], name
        assert entries[3].start_us < 25_000, name  # from the new clock's start
