"""WHEP end to end: a stamped RTMP or WHIP publish on a real cluster (processes) plays over WHEP in
this process, and the same PeerConnection keeps receiving after kill -9 of the carrying transcoder."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from tests.conftest import await_for
from tests.e2e.conftest import base, carrier, create, running_cluster, signal_group
from zoocast.harness.whep_viewer import WhepError, WhepViewer
from zoocast.local.up import LocalCluster

FPS = 15


def _publish(c: LocalCluster, stream: str, key: str, protocol: str) -> subprocess.Popen[bytes]:
    """The stamped synthetic publisher, in its own process (PyAV holds the GIL while connecting)."""
    cmd = [sys.executable, "-m", "zoocast.cli", "publish-test", stream,
           "--size", "426x240", "--fps", str(FPS), "--gop", "1", "--duration", "90"]  # fmt: skip
    if protocol == "whip":
        cmd += ["--whip", base(c), "--key", key]
    else:
        cmd += ["--url", f"rtmp://127.0.0.1:{c.rtmp_port}/live/{stream}?key={key}"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _join(url: str) -> WhepViewer:
    async def attempt() -> WhepViewer | None:
        try:
            return await WhepViewer(url).start()
        except WhepError:
            return None  # 404 until the publish is accepted at the edge

    viewer: WhepViewer = await await_for(attempt, "a WHEP session for the stream", 40, 0.3)
    return viewer


@pytest.mark.parametrize("protocol", ["rtmp", "whip"])
async def test_whep_viewer_plays_and_survives_kill_9_of_the_transcoder(
    cluster: LocalCluster, protocol: str
) -> None:
    key = create(cluster, "cam")
    pub = _publish(cluster, "cam", key, protocol)
    viewer: WhepViewer | None = None
    try:
        viewer = await _join(f"{base(cluster)}/whep/cam")
        v = viewer
        await await_for(lambda: len(v.readable()) >= 2 * FPS, "frames with capture codes", 40)
        before = v.latency()
        pc = v.pc
        victim, epoch = await asyncio.to_thread(carrier, cluster, "cam")
        killed = time.time()
        signal_group(cluster, victim, signal.SIGKILL)  # the node and its workers, as kill -9
        await await_for(
            lambda: sum(1 for r in v.readable() if r.capture and r.capture > killed) >= 2 * FPS,
            "frames captured after the kill at the same viewer",
            60,
        )
        new, new_epoch = await asyncio.to_thread(carrier, cluster, "cam")
        assert new != victim and new_epoch > epoch
        assert v.pc is pc and pc.connectionState == "connected"
        assert all(b > a for a, b in pairwise(v.rtp_timestamps)), "RTP timestamps went backwards"
        gaps = v.gaps()
        assert gaps.rewind == 0, "the viewer was shown content it had already seen"
        print(
            f"\n{protocol} -> WHEP glass-to-glass before the kill: p50 {before.p50 * 1000:.0f} ms, "
            f"p90 {before.p90 * 1000:.0f} ms over {before.count} frames; "
            f"failover content gap {gaps.content_gap:.3f} s, stall {gaps.stall:.3f} s"
        )
    finally:
        if viewer is not None:
            await viewer.stop()
        pub.terminate()
        pub.wait(10)


@pytest.fixture
def two_edges(tmp_path: Path) -> Iterator[LocalCluster]:
    with running_cluster(tmp_path / "cluster", transcoders=2, edges=2) as c:
        yield c


async def test_whep_at_another_edge_than_the_ingest_edge_survives_kill_9(
    two_edges: LocalCluster,
) -> None:
    c = two_edges
    key = create(c, "far")
    pub = _publish(c, "far", key, "rtmp")  # to edge-1
    viewer: WhepViewer | None = None
    try:
        viewer = await _join(f"http://127.0.0.1:{c.http_port + 1}/whep/far")  # edge-2
        v = viewer
        await await_for(lambda: len(v.readable()) >= FPS, "frames at edge-2's viewer", 40)
        pc = v.pc
        victim, _ = await asyncio.to_thread(carrier, c, "far")
        killed = time.time()
        signal_group(c, victim, signal.SIGKILL)
        await await_for(
            lambda: sum(1 for r in v.readable() if r.capture and r.capture > killed) >= FPS,
            "frames captured after the kill at the same viewer",
            60,
        )
        assert v.pc is pc and pc.connectionState == "connected"
        assert all(b > a for a, b in pairwise(v.rtp_timestamps)), "RTP timestamps went backwards"
        assert v.gaps().rewind == 0
    finally:
        if viewer is not None:
            await viewer.stop()
        pub.terminate()
        pub.wait(10)


async def test_whep_viewer_rides_out_a_publisher_reconnect(cluster: LocalCluster) -> None:
    key = create(cluster, "again")
    pub = _publish(cluster, "again", key, "rtmp")
    viewer: WhepViewer | None = None
    try:
        viewer = await _join(f"{base(cluster)}/whep/again")
        v = viewer
        await await_for(lambda: len(v.readable()) >= FPS, "frames before the drop", 40)
        pc = v.pc
        pub.kill()  # the publisher's process dies: its RTMP connection drops
        pub.wait(10)
        dropped = time.time()
        pub = _publish(cluster, "again", key, "rtmp")  # and comes back, on a new clock
        await await_for(
            lambda: sum(1 for r in v.readable() if r.capture and r.capture > dropped) >= FPS,
            "frames of the new publish session at the same viewer",
            60,
        )
        assert v.pc is pc and pc.connectionState == "connected"
        assert all(b > a for a, b in pairwise(v.rtp_timestamps)), "RTP timestamps went backwards"
    finally:
        if viewer is not None:
            await viewer.stop()
        pub.terminate()
        pub.wait(10)
