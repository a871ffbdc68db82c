"""Glass-to-glass latency of LL-HLS against plain HLS, read by viewers that follow the playlist.

A local cluster (real processes: ZooKeeper, Redis, coordinators, transcoders, an edge) carries
one stamped test stream (`zoocast publish-test`: every frame carries its capture time). Two
measuring viewers follow the same rendition at the same time:

- LL-HLS (`zoocast/harness/part_follower.py`): blocking reloads, each part fetched the moment
  it exists, decoded on arrival;
- plain HLS (`zoocast/harness/viewer.py`): the playlist polled every 100 ms, each whole segment
  fetched as it appears.

Latency = arrival of the frame at the viewer minus its capture time (one clock, one machine).
It is how soon a player can show the frame; players add their hold-back (PART-HOLD-BACK 1.5 s
for LL-HLS; three target durations, 6 s, for plain HLS), printed next to it. The reference in
the same run is plain HLS against the same stream.

    .venv/bin/python -m bench.hls_latency [--seconds 30] [--ladder tiny]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.support import url_exists, wait_until
from cluster.ladder import ladder
from zoocast.harness.analysis import latency
from zoocast.harness.part_follower import PartFollower
from zoocast.harness.viewer import HlsFollower
from zoocast.local.demo import api
from zoocast.local.servers import free_port
from zoocast.local.up import LocalCluster


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=30.0, help="how long both viewers watch")
    p.add_argument("--ladder", default="tiny")
    p.add_argument("--rendition", default="240p")
    p.add_argument("--size", default="426x240")
    p.add_argument("--fps", type=int, default=15)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="zoocast-bench-hls-"))
    cluster = LocalCluster(
        root, http_port=free_port(), rtmp_port=free_port(), ladder=args.ladder, transcoders=1
    )
    cluster.start()
    base = f"http://127.0.0.1:{cluster.http_port}"
    pub = None
    try:
        key = api(base, "POST", "/api/streams", cluster.admin_token, {"stream": "lat"})["key"]
        url = f"rtmp://127.0.0.1:{cluster.rtmp_port}/live/lat?key={key}"
        pub = subprocess.Popen(
            [sys.executable, "-m", "zoocast.cli", "publish-test", "lat", "--url", url,
             "--size", args.size, "--fps", str(args.fps), "--gop", "2", "--bitrate", "800"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        playlist = f"{base}/hls/lat/{args.rendition}/index.m3u8"
        wait_until(lambda: url_exists(playlist), "the media playlist", 60)
        time.sleep(3)  # a few segments in the window
        ll = PartFollower(playlist).start()
        plain = HlsFollower(playlist).start()
        time.sleep(args.seconds)
        ll_records, plain_records = ll.stop(), plain.stop()
    finally:
        if pub is not None:
            pub.terminate()
            pub.wait(10)
        cluster.stop()
    lad = ladder(args.ladder)
    a, b = latency(ll_records), latency(plain_records)
    print(f"{args.seconds:.0f} s of {args.rendition} ({args.ladder} ladder, {lad.gop_seconds:.0f} s "
          f"segments, {lad.part_seconds} s parts), logs in {root}/logs")  # fmt: skip
    print(f"LL-HLS (parts)  : {a.count} frames, p50 {a.p50:.3f} s, p90 {a.p90:.3f} s, max {a.max:.3f} s; "
          f"{ll.parts_fetched} parts, {len(ll.errors)} errors")  # fmt: skip
    print(
        f"plain HLS       : {b.count} frames, p50 {b.p50:.3f} s, p90 {b.p90:.3f} s, max {b.max:.3f} s"
    )
    print(f"ratio LL/plain p50: {a.p50 / b.p50:.2f}x")
    hold = 3 * lad.part_seconds
    print(f"with player hold-back: LL p50 + PART-HOLD-BACK {hold:.1f} s = {a.p50 + hold:.2f} s; "
          f"plain p50 + HOLD-BACK {3 * lad.gop_seconds:.0f} s = {b.p50 + 3 * lad.gop_seconds:.2f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
