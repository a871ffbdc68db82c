"""The backbone end to end: RTMP in, placement through ZooKeeper, HLS out, surviving a transcoder kill."""

from __future__ import annotations

import os
import signal
import time

import av
import redis

from cluster.hot import keys
from cluster.hot.model import SegmentEntry
from tests.conftest import wait_for
from tests.e2e.conftest import (
    base,
    carrier,
    create,
    decode_segment,
    ffmpeg_publish,
    get,
    media_playlist,
    signal_group,
    stream_info,
    wait_segments,
)
from zoocast.local.up import LocalCluster


def test_rtmp_publish_plays_as_hls_in_two_renditions(cluster: LocalCluster) -> None:
    key = create(cluster, "cam")
    pub = ffmpeg_publish(cluster, "cam", key, seconds=12)
    try:
        master = wait_for(
            lambda: get(f"{base(cluster)}/hls/cam/index.m3u8"), "the multivariant playlist", 30
        )
        text = master.decode()
        assert "240p/index.m3u8" in text and "120p/index.m3u8" in text and "TYPE=AUDIO" in text
        for rendition, height in (("240p", 240), ("120p", 120)):
            pl = wait_segments(cluster, "cam", rendition, 2)
            frames = decode_segment(cluster, "cam", rendition, pl.segments[-1])
            assert frames and all(isinstance(f, av.VideoFrame) for f in frames)
            assert {f.height for f in frames} == {height}  # type: ignore[union-attr]
        audio = wait_segments(cluster, "cam", "audio", 2)
        samples = decode_segment(cluster, "cam", "audio", audio.segments[-1])
        assert samples and all(isinstance(f, av.AudioFrame) for f in samples)
        info = stream_info(cluster, "cam")
        assert info["live"] and info["placement"]["state"] == "placed"
        assert info["placement"]["transcoder"].startswith("transcoder-")
        assert {r["name"] for r in info["renditions"]} == {"240p", "120p", "audio"}
        clusterview = get(f"{base(cluster)}/api/cluster")
        assert clusterview and b'"leader"' in clusterview and b"coordinator-" in clusterview
    finally:
        pub.kill()
        pub.wait()


def test_wrong_key_is_refused_and_nothing_is_written(cluster: LocalCluster) -> None:
    create(cluster, "locked")
    pub = ffmpeg_publish(cluster, "locked", "not-the-key", seconds=3)
    _, err = pub.communicate(timeout=30)
    assert pub.returncode != 0, err
    info = stream_info(cluster, "locked")
    assert info["live"] is False and info["placement"] is None
    assert cluster.redis is not None
    r = redis.Redis.from_url(cluster.redis.url)
    assert r.keys(keys.stream_pattern("locked")) == []
    # An unknown stream is refused the same way (no probing which streams exist).
    pub = ffmpeg_publish(cluster, "ghost", "whatever", seconds=3)
    pub.communicate(timeout=30)
    assert pub.returncode != 0


def _entries(cluster: LocalCluster, stream: str, rendition: str) -> list[SegmentEntry]:
    assert cluster.redis is not None
    r = redis.Redis.from_url(cluster.redis.url)
    return [SegmentEntry.from_json(x) for x in r.lrange(keys.index(stream, rendition), 0, -1)]


def test_kill_9_of_the_carrying_transcoder_moves_the_stream(cluster: LocalCluster) -> None:
    key = create(cluster, "live")
    pub = ffmpeg_publish(cluster, "live", key, seconds=60)
    try:
        wait_segments(cluster, "live", "240p", 2)
        victim, epoch = carrier(cluster, "live")
        seen_msn: list[int] = []
        os.kill(cluster.child(victim).proc.pid, signal.SIGKILL)

        def moved() -> bool:
            pl = stream_info(cluster, "live")["placement"]
            return bool(pl and pl["epoch"] > epoch and pl["transcoder"] not in (None, victim))

        wait_for(moved, "the stream to move off the killed transcoder", 20)

        def continued() -> bool:
            pl = media_playlist(cluster, "live", "240p")
            assert pl is not None
            seen_msn.append(pl.media_sequence)
            return any(seg.map_uri != f"init/{epoch}.mp4" for seg in pl.segments)

        wait_for(continued, "segments from the new transcoder after a discontinuity", 30)
        new, new_epoch = carrier(cluster, "live")
        assert new != victim and new_epoch > epoch
        pl = wait_segments(cluster, "live", "240p", 1)
        assert "#EXT-X-DISCONTINUITY\n" in pl.text or pl.disc_sequence > 0, pl.text
        after = [s for s in pl.segments if s.map_uri == f"init/{new_epoch}.mp4"]
        assert after, pl.text
        frames = decode_segment(cluster, "live", "240p", after[-1])
        assert frames and {f.height for f in frames} == {240}  # type: ignore[union-attr]
        assert seen_msn == sorted(seen_msn), "the media sequence went backwards"
        entries = _entries(cluster, "live", "240p")
        msns = [e.msn for e in entries]
        assert msns == sorted(set(msns)), "sequence numbers must strictly increase"
        first_new = next(e for e in entries if e.epoch == new_epoch)
        assert first_new.disc
        moves = stream_info(cluster, "live")["placement"]["moves"]
        assert moves[0]["src"] == victim and moves[0]["dst"] == new
        assert pub.poll() is None, "the publisher must not notice the failover"
    finally:
        pub.kill()
        pub.wait()


def test_paused_transcoder_is_fenced_after_its_stream_moves(cluster: LocalCluster) -> None:
    key = create(cluster, "zombie")
    pub = ffmpeg_publish(cluster, "zombie", key, seconds=60)
    try:
        wait_segments(cluster, "zombie", "240p", 2)
        victim, epoch = carrier(cluster, "zombie")
        signal_group(cluster, victim, signal.SIGSTOP)
        try:

            def moved_and_writing() -> bool:
                return any(e.epoch > epoch for e in _entries(cluster, "zombie", "240p"))

            wait_for(moved_and_writing, "the successor to write segments", 30)
        finally:
            signal_group(cluster, victim, signal.SIGCONT)
        new, new_epoch = carrier(cluster, "zombie")
        assert new != victim
        # Let the paused process run on: its workers resume with buffered media and try to write.
        time.sleep(4)
        entries = _entries(cluster, "zombie", "240p")
        first_new = next(i for i, e in enumerate(entries) if e.epoch == new_epoch)
        late = [e for e in entries[first_new:] if e.epoch != new_epoch]
        assert late == [], f"writes from the paused transcoder landed: {late}"
        assert cluster.redis is not None
        r = redis.Redis.from_url(cluster.redis.url)
        assert int(r.get(keys.epoch("zombie")) or 0) == new_epoch
        for rendition in ("240p", "120p", "audio"):
            assert int(r.hget(keys.state("zombie", rendition), "epoch") or 0) == new_epoch
        assert pub.poll() is None
    finally:
        pub.kill()
        pub.wait()
        # The resumed node must have re-registered as a fresh member.
        wait_for(
            lambda: b"transcoder-" in (get(f"{base(cluster)}/api/cluster") or b""), "membership", 10
        )
