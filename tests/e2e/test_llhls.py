"""LL-HLS on a real cluster: a part-following viewer and ffmpeg both play through a kill -9."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

from tests.conftest import wait_for
from tests.e2e.conftest import base, carrier, create, stream_info, wait_segments
from zoocast.harness.analysis import gaps
from zoocast.harness.part_follower import PartFollower
from zoocast.local.up import LocalCluster

FPS = 15


def _publish_test(c: LocalCluster, stream: str, key: str) -> subprocess.Popen[bytes]:
    url = f"rtmp://127.0.0.1:{c.rtmp_port}/live/{stream}?key={key}"
    cmd = [sys.executable, "-m", "zoocast.cli", "publish-test", stream, "--url", url,
           "--size", "426x240", "--fps", str(FPS), "--gop", "1", "--bitrate", "500",
           "--duration", "90"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_ll_hls_viewer_and_ffmpeg_play_through_a_transcoder_kill(cluster: LocalCluster) -> None:
    key = create(cluster, "ll")
    pub = _publish_test(cluster, "ll", key)
    playlist = f"{base(cluster)}/hls/ll/240p/index.m3u8"
    player = None
    try:
        wait_segments(cluster, "ll", "240p", 2)
        # A third-party reader of the LL-HLS playlist: ffprobe finds the rendition's stream.
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,height", "-of", "json",
             playlist],
            capture_output=True, timeout=60, check=True,
        )  # fmt: skip
        streams = json.loads(probe.stdout)["streams"]
        assert {"codec_name": "h264", "height": 240} in streams, streams
        viewer = PartFollower(playlist).start()
        # ffmpeg as a second, independent player: it must read through the discontinuity.
        player = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "info", "-i", playlist, "-map", "0:v:0",
             "-t", "25", "-f", "null", "-"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        wait_for(lambda: len(viewer.snapshot()) > 3 * FPS, "LL-HLS frames before the kill", 30)
        victim, epoch = carrier(cluster, "ll")
        os.kill(cluster.child(victim).proc.pid, signal.SIGKILL)
        wait_for(lambda: carrier(cluster, "ll")[1] > epoch, "the stream to move", 20)
        moved_at = time.time()
        wait_for(
            lambda: sum(r.arrival > moved_at for r in viewer.snapshot()) > 4 * FPS,
            "LL-HLS frames from the successor",
            30,
        )
        records = viewer.stop()
        _, err = player.communicate(timeout=60)
        assert player.returncode == 0, err.decode(errors="replace")[-2000:]
        # ffmpeg's last progress line: the frames it decoded over its 25 s.
        decoded = [int(n) for n in re.findall(rb"frame=\s*(\d+)", err)]
        assert decoded and decoded[-1] > 15 * FPS, err.decode(errors="replace")[-2000:]
    finally:
        if player is not None and player.poll() is None:
            player.kill()
        pub.terminate()
        pub.wait(10)
    assert viewer.parts_fetched > 10
    sequences = viewer.sequences
    assert [m for m, _ in sequences] == sorted(m for m, _ in sequences), "media sequence went back"
    assert [d for _, d in sequences] == sorted(d for _, d in sequences)
    assert sum(r.discontinuity for r in records) >= 1, "the failover shows as a discontinuity"
    readable = [r for r in records if r.capture is not None]
    assert len(readable) > 0.9 * len(records)
    after = [r.capture for r in readable if r.arrival > moved_at]
    before = [r.capture for r in readable if r.arrival <= moved_at]
    assert after and before and max(after) > max(before), "content continues after the move"
    g = gaps(records)
    assert g.content_gap < 5.0, g  # the successor starts where its predecessor stopped
    assert stream_info(cluster, "ll")["placement"]["transcoder"] != victim
