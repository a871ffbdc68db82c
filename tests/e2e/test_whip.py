"""WHIP end to end: the aiortc harness publishes over WebRTC; placement, HLS and capture codes as over RTMP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import av
import pytest

from tests.conftest import await_for, wait_for
from tests.e2e.conftest import (
    MediaPlaylist,
    base,
    carrier,
    create,
    decode_segment,
    media_playlist,
    stream_info,
    wait_segments,
)
from zoocast.harness import timecode
from zoocast.harness.frames import luma
from zoocast.harness.whep_viewer import WhepError, WhepViewer
from zoocast.local.up import LocalCluster


def whip_publish(
    c: LocalCluster, stream: str, key: str, seconds: float, codec: str = "h264"
) -> subprocess.Popen[bytes]:
    """Its own process, as OBS is: the publisher's encoding never competes with the test's loop.
    H.264 is sent as OBS does (own encoder, offer without candidates), VP8 as a browser does."""
    cmd = [
        sys.executable, "-m", "zoocast.cli", "publish-test", stream,
        "--whip", base(c), "--key", key, "--size", "426x240", "--fps", "15", "--gop", "1",
        "--bitrate", "300", "--duration", str(seconds), "--codec", codec,
    ]  # fmt: skip
    if codec == "h264":
        cmd.append("--no-candidates")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def first_segments(
    c: LocalCluster, stream: str, rendition: str, pub: subprocess.Popen[bytes]
) -> MediaPlaylist:
    """Wait for two segments; if the publisher died meanwhile, say why rather than time out."""
    try:
        return wait_segments(c, stream, rendition, 2, timeout=40)
    except AssertionError:
        if pub.poll() is not None:
            err = pub.stderr.read().decode() if pub.stderr else ""
            raise AssertionError(f"the WHIP publisher exited {pub.returncode}: {err}") from None
        raise


@pytest.mark.parametrize("codec", ["h264", "vp8"])
def test_whip_publish_is_placed_and_plays_as_hls_with_capture_codes(
    cluster: LocalCluster, codec: str
) -> None:
    key = create(cluster, "webcam")
    pub = whip_publish(cluster, "webcam", key, seconds=40, codec=codec)
    try:
        for rendition, height in (("240p", 240), ("120p", 120)):
            pl = first_segments(cluster, "webcam", rendition, pub)
            frames = decode_segment(cluster, "webcam", rendition, pl.segments[-1])
            assert frames and all(isinstance(f, av.VideoFrame) for f in frames)
            assert {f.height for f in frames} == {height}  # type: ignore[union-attr]
            codes = [timecode.read(luma(f)) for f in frames]  # type: ignore[arg-type]
            read = [c for c in codes if c is not None]
            assert len(read) >= len(codes) // 2, f"{rendition}: {codes}"
            stamps = [c.capture_us for c in read]
            assert stamps == sorted(stamps), "capture times go forward"
        audio = wait_segments(cluster, "webcam", "audio", 2)
        samples = decode_segment(cluster, "webcam", "audio", audio.segments[-1])
        assert samples and all(isinstance(f, av.AudioFrame) for f in samples)
        info = stream_info(cluster, "webcam")
        assert info["live"] and info["publisher"]["protocol"] == "whip"
        assert info["placement"]["state"] == "placed"
        assert sorted(info["publisher"]["codecs"]) == sorted([codec, "opus"])
    finally:
        pub.send_signal(signal.SIGTERM)  # the harness sends DELETE on its way out, as OBS does
        out, err = pub.communicate(timeout=20)
    assert pub.returncode == 0, err.decode()
    assert b"/whip/webcam/" in out
    wait_for(lambda: not stream_info(cluster, "webcam")["live"], "the publish to end", 10)


def test_kill_9_of_the_transcoder_moves_a_whip_stream_and_the_publisher_stays(
    cluster: LocalCluster,
) -> None:
    key = create(cluster, "webfail")
    pub = whip_publish(cluster, "webfail", key, seconds=60)
    try:
        first_segments(cluster, "webfail", "240p", pub)
        victim, epoch = carrier(cluster, "webfail")
        os.kill(cluster.child(victim).proc.pid, signal.SIGKILL)

        def moved_and_writing() -> bool:
            pl = media_playlist(cluster, "webfail", "240p")
            return bool(pl and any(s.map_uri == f"init/{epoch + 1}.mp4" for s in pl.segments))

        wait_for(moved_and_writing, "segments from the successor", 30)
        new, new_epoch = carrier(cluster, "webfail")
        assert new != victim and new_epoch == epoch + 1
        pl = wait_segments(cluster, "webfail", "240p", 1)
        after = [s for s in pl.segments if s.map_uri == f"init/{new_epoch}.mp4"]
        frames = decode_segment(cluster, "webfail", "240p", after[-1])
        assert frames and any(timecode.read(luma(f)) for f in frames)  # type: ignore[arg-type]
        assert pub.poll() is None, "the WHIP publisher must not notice the failover"
        assert stream_info(cluster, "webfail")["publisher"]["protocol"] == "whip"
    finally:
        pub.kill()
        pub.wait()


async def test_whip_in_whep_out_frames_carry_capture_codes(cluster: LocalCluster) -> None:
    """The issue's whole path: aiortc WHIP publisher -> edge -> transcoder -> edge -> aiortc WHEP
    viewer (whose receivers, unmarked, decode as usual)."""
    key = create(cluster, "loop")
    pub = whip_publish(cluster, "loop", key, seconds=60)
    viewer: WhepViewer | None = None

    async def attempt() -> WhepViewer | None:
        if pub.poll() is not None:  # say why, rather than time out
            err = pub.stderr.read().decode() if pub.stderr else ""
            raise AssertionError(f"the WHIP publisher exited {pub.returncode}: {err}")
        try:
            return await WhepViewer(f"{base(cluster)}/whep/loop").start()
        except WhepError:
            return None  # 404 until the publish is placed and the feed is up

    try:
        viewer = await await_for(attempt, "a WHEP session for the WHIP stream", 40, 0.3)
        v = viewer
        await await_for(lambda: len(v.readable()) >= 30, "WHEP frames with capture codes", 40)
        stamps = [r.capture for r in v.readable() if r.capture is not None]
        assert stamps == sorted(stamps), "capture times go forward"
        lat = v.latency()
        print(f"\nWHIP -> WHEP glass-to-glass: p50 {lat.p50 * 1000:.0f} ms over {lat.count} frames")
        assert 0 < lat.p50 < 2.0
    finally:
        if viewer is not None:
            await viewer.stop()
        pub.kill()
        pub.wait()
