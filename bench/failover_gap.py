"""Viewer-visible gap after kill -9 of the transcoder carrying a stream.

A local cluster (real processes) carries one stamped test stream; an HLS follower decodes every
frame and reads its capture time. Each trial kills the carrying transcoder with SIGKILL, waits
until the follower has seen several seconds from the successor, and measures:

- content gap: publisher time the viewer never saw (capture-time jump minus one frame interval);
- stall: the longest wait for new frames at the viewer, minus the usual wait between segments.

Reference, same run: the segment duration (what a viewer's buffer must cover to hide the gap),
printed as the gap/segment ratio. Then the killed transcoder is restarted for the next trial.

    .venv/bin/python -m bench.failover_gap --trials 10
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.support import url_exists, wait_until
from cluster.ladder import ladder
from zoocast.harness.viewer import HlsFollower, gaps
from zoocast.local.demo import api
from zoocast.local.servers import free_port
from zoocast.local.up import LocalCluster


def _placement(base: str, stream: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{base}/api/streams/{stream}", timeout=5) as resp:
        return dict(json.load(resp)["placement"] or {})


def trial(
    cluster: LocalCluster, base: str, n: int, gop: float, rendition: str, size: str, fps: int
) -> dict[str, float]:
    stream = f"gap{n}"
    key = api(base, "POST", "/api/streams", cluster.admin_token, {"stream": stream})["key"]
    url = f"rtmp://127.0.0.1:{cluster.rtmp_port}/live/{stream}?key={key}"
    # A separate process: PyAV holds the GIL while it opens an RTMP connection.
    pub = subprocess.Popen(
        [sys.executable, "-m", "zoocast.cli", "publish-test", stream, "--url", url,
         "--size", size, "--fps", str(fps), "--gop", str(gop), "--bitrate", "1500"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        playlist = f"{base}/hls/{stream}/{rendition}/index.m3u8"
        wait_until(lambda: url_exists(playlist), "the media playlist", 30)
        follower = HlsFollower(playlist).start()
        wait_until(lambda: len(follower.snapshot()) > 3 * fps, "frames before the kill", 30)
        placement = _placement(base, stream)
        victim, epoch = str(placement["transcoder"]), int(placement["epoch"])  # type: ignore[call-overload]
        killed_at = time.time()
        os.kill(cluster.child(victim).proc.pid, signal.SIGKILL)
        wait_until(lambda: int(_placement(base, stream).get("epoch", 0)) > epoch, "the move", 20)  # type: ignore[call-overload]
        moved_at = time.time()
        wait_until(
            lambda: sum(1 for r in follower.snapshot() if r.arrival > moved_at) > 4 * fps,
            "frames after the move",
            30,
        )
        records = follower.stop()
        g = gaps(records)
        # Restart the killed transcoder so every trial starts from three.
        cluster.children.remove(cluster.child(victim))
        cluster.spawn("transcoder", victim, http_port=free_port(), media_port=free_port())
        return {"content_gap": g.content_gap, "stall": g.stall, "detect": moved_at - killed_at}
    finally:
        pub.terminate()
        pub.wait(10)


def _pct(values: list[float]) -> str:
    return f"p50 {statistics.median(values):.3f} s, max {max(values):.3f} s"


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--gop", type=float, default=1.0, help="publisher keyframe interval, seconds")
    p.add_argument("--rendition", default="240p")
    p.add_argument("--ladder", default="tiny", help="ladder profile of the cluster")
    p.add_argument("--size", default="426x240", help="publisher size")
    p.add_argument("--fps", type=int, default=15)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="zoocast-bench-gap-"))
    cluster = LocalCluster(
        root, http_port=free_port(), rtmp_port=free_port(), ladder=args.ladder, session_timeout=1.0
    )
    cluster.start()
    base = f"http://127.0.0.1:{cluster.http_port}"
    results = []
    try:
        for n in range(args.trials):
            r = trial(cluster, base, n, args.gop, args.rendition, args.size, args.fps)
            results.append(r)
            print(
                f"trial {n + 1}: content gap {r['content_gap']:.3f} s, stall {r['stall']:.3f} s, "
                f"kill->moved {r['detect']:.3f} s",
                flush=True,
            )
    finally:
        cluster.stop()
    gap = [r["content_gap"] for r in results]
    stall = [r["stall"] for r in results]
    detect = [r["detect"] for r in results]
    seg = ladder(args.ladder).gop_seconds
    print(f"\n{len(results)} trials, logs in {root}/logs")
    print(
        f"content gap : {_pct(gap)}  (x segment duration {seg:.1f} s: p50 {statistics.median(gap) / seg:.2f}x)"
    )
    print(f"viewer stall: {_pct(stall)}")
    print(f"kill->moved : {_pct(detect)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
