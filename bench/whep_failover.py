"""WHEP at the viewer: join time, glass-to-glass latency, and the gap after kill -9 of the
carrying transcoder, with the same PeerConnection throughout.

A local cluster (real processes) carries one stamped test stream per trial (`zoocast
publish-test` over RTMP, its own process); a WHEP viewer in this process (aiortc, decoding
normally: zoocast/harness/whep_viewer.py) reads the capture time stamped in every frame. Each
trial joins, watches a few seconds, kills the carrying transcoder's process group with SIGKILL,
watches a few seconds more, and measures:

- join: from the POST to the first decoded frame;
- latency: arrival - capture of every frame before the kill (pooled over trials for p50/p95),
  and its p50 from 2 s after the kill on (the successor's steady state);
- content gap: publisher time the viewer never saw (largest capture-time step minus one frame);
- stall: the longest wait for a new frame at the viewer, beyond the usual frame interval.

Reference in the same run: the frame interval (what an uninterrupted viewer waits between
frames) and the publisher's GOP, which a viewer would wait without keyframe requests.

    .venv/bin/python -m bench.whep_failover --trials 10
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoocast.harness.whep_viewer import WhepError, WhepViewer
from zoocast.local.demo import api
from zoocast.local.servers import free_port
from zoocast.local.up import LocalCluster


async def _until(cond: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(what)


def _placement(base: str, stream: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{base}/api/streams/{stream}", timeout=5) as resp:
        return dict(json.load(resp)["placement"] or {})


async def _join(url: str) -> tuple[WhepViewer, float]:
    deadline = time.monotonic() + 40
    while True:
        started = time.time()
        try:
            return await WhepViewer(url).start(), started
        except WhepError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@dataclass(frozen=True)
class Trial:
    join: float
    latency: list[float]  # before the kill
    latency_after: float  # p50 from 2 s after the kill on
    content_gap: float
    stall: float
    rewind: float
    monotonic: bool
    interval: float


async def trial(cluster: LocalCluster, base: str, n: int, size: str, fps: int, gop: float) -> Trial:
    stream = f"whep{n}"
    key = api(base, "POST", "/api/streams", cluster.admin_token, {"stream": stream})["key"]
    url = f"rtmp://127.0.0.1:{cluster.rtmp_port}/live/{stream}?key={key}"
    # Popen only forks; the publisher runs on its own (PyAV holds the GIL while it connects).
    pub = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "zoocast.cli", "publish-test", stream, "--url", url,
         "--size", size, "--fps", str(fps), "--gop", str(gop), "--bitrate", "1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    viewer: WhepViewer | None = None
    try:
        # Wait until the publish is placed, so that the join time is the viewer's, not the publish's.
        await _until(lambda: _placement(base, stream).get("state") == "placed", "placement", 30)
        await asyncio.sleep(1.0)  # the worker's startup burst is over
        viewer, posted = await _join(f"{base}/whep/{stream}")
        v = viewer
        await _until(lambda: len(v.readable()) > 0, "the first frame", 20)
        join = v.readable()[0].arrival - posted
        await _until(lambda: len(v.readable()) > 3 * fps, "frames before the kill", 30)
        placement = await asyncio.to_thread(_placement, base, stream)
        victim = str(placement["transcoder"])
        killed = time.time()
        before = [r.arrival - r.capture for r in v.readable() if r.capture]
        os.killpg(cluster.child(victim).proc.pid, signal.SIGKILL)
        await _until(
            lambda: sum(1 for r in v.readable() if r.capture and r.capture > killed) > 4 * fps,
            "frames after the kill",
            30,
        )
        assert v.pc.connectionState == "connected"
        after = [
            r.arrival - r.capture for r in v.readable() if r.capture and r.capture > killed + 2
        ]
        g = v.gaps()
        stamps = v.rtp_timestamps
        monotonic = all(b > a for a, b in itertools.pairwise(stamps))
        cluster.children.remove(cluster.child(victim))
        cluster.spawn("transcoder", victim, http_port=free_port(), media_port=free_port())
        return Trial(
            join,
            before,
            statistics.median(after) if after else float("nan"),
            g.content_gap,
            g.stall,
            g.rewind,
            monotonic,
            g.frame_interval,
        )
    finally:
        if viewer is not None:
            await viewer.stop()
        pub.terminate()
        pub.wait(10)


def _pct(values: list[float]) -> str:
    return f"p50 {statistics.median(values):.3f}, max {max(values):.3f}"


async def run(args: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="zoocast-bench-whep-"))
    cluster = LocalCluster(
        root, http_port=free_port(), rtmp_port=free_port(), ladder=args.ladder, session_timeout=1.0
    )
    cluster.start()
    base = f"http://127.0.0.1:{cluster.http_port}"
    results = []
    try:
        for n in range(args.trials):
            r = await trial(cluster, base, n, args.size, args.fps, args.gop)
            results.append(r)
            print(
                f"trial {n + 1}: join {r.join:.3f} s, latency p50 "
                f"{statistics.median(r.latency) * 1000:.0f} ms "
                f"(2 s after the kill {r.latency_after * 1000:.0f} ms), "
                f"content gap {r.content_gap:.3f} s, stall {r.stall:.3f} s, "
                f"rewind {r.rewind:.3f} s, RTP timestamps monotonic: {r.monotonic}",
                flush=True,
            )
    finally:
        cluster.stop()
    lat_all = np.array([x for r in results for x in r.latency])
    p50, p95 = np.percentile(lat_all, [50, 95]) * 1000
    after = statistics.median(r.latency_after for r in results) * 1000
    interval = statistics.median(r.interval for r in results)
    gap = [r.content_gap for r in results]
    stall = [r.stall for r in results]
    join = [r.join for r in results]
    print(f"\n{len(results)} trials, logs in {root}/logs")
    print(f"glass-to-glass: p50 {p50:.0f} ms, p95 {p95:.0f} ms over {lat_all.size} frames; "
          f"after a failover (from 2 s on): p50 of trials' p50 {after:.0f} ms")  # fmt: skip
    print(f"join (POST -> first frame): {_pct(join)} s (x publisher GOP {args.gop:.1f} s: "
          f"p50 {statistics.median(join) / args.gop:.2f}x)")  # fmt: skip
    print(f"content gap: {_pct(gap)} s; stall: {_pct(stall)} s "
          f"(x frame interval {interval * 1000:.0f} ms: stall p50 {statistics.median(stall) / interval:.1f}x)")  # fmt: skip
    print(f"rewinds: {sum(r.rewind > 0 for r in results)}; "
          f"non-monotonic RTP timestamps: {sum(not r.monotonic for r in results)}")  # fmt: skip
    return 0


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--gop", type=float, default=2.0, help="publisher keyframe interval, seconds")
    p.add_argument("--ladder", default="tiny", help="ladder profile of the cluster")
    p.add_argument("--size", default="426x240", help="publisher size")
    p.add_argument("--fps", type=int, default=15)
    return asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
