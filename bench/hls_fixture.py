"""What the HLS serving benchmarks share: an LL-HLS stream written into a real Redis by the
transcoder's own writer, and a real edge HTTP app serving it in a process of its own.

The stream is what the default ladder produces, in shape: renditions 720p, 360p and audio,
30 fps, 2 s segments (or longer) cut into 0.5 s parts, with the 720p segments about 400 KB. Frames are
random bytes (the edge never looks inside them); every write goes through `Output` and
`TrackOutput`, as in a worker, so keys, index entries, parts and pub/sub messages are the real ones.

The edge runs as `python -m bench.hls_fixture edge --redis URL --port N` (pinned to a core by
the caller): `cluster.ops.make_app` with the HLS routes, as `edge/http.py` builds it, served as
`zoocast edge` serves it (`edge.http.serve`: the HLS fast path in front of aiohttp's AppRunner,
no access log, on uvloop through `cluster.runtime.run`), with a Redis client made as in
`edge/app.py`. To compare: `--pool` picks another pool, `--server aiohttp` serves with a plain
aiohttp TCPSite (no fast path), `--loop asyncio` runs on asyncio's own loop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import resource
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import redis

from cluster.hot import keys
from cluster.hot.model import RenditionInfo, renditions_to_json
from cluster.runtime import run
from transcoder.pipeline.control import Control
from transcoder.pipeline.output import Output, Resume, TrackOutput
from transcoder.pipeline.segments import Mark, Segmenter

STREAM = "bench"
FPS = 30
VIDEO_TICKS = 90_000 // FPS
AUDIO_RATE, AAC_FRAME = 48_000, 1024
PART_SECONDS = 0.5
POOLS = ["edge", "queue", "redis-default"]  # the edge's Redis pool: see _serve_edge
SERVERS = ["fast", "aiohttp"]  # edge.http.serve as shipped, or aiohttp's TCPSite alone
LOOPS = ["uvloop", "asyncio"]
LOG = logging.LoggerAdapter(logging.getLogger("bench"), {})


@dataclass
class _Track:
    info: RenditionInfo
    out: TrackOutput
    seg: Segmenter
    key_bytes: int  # size of a segment's first (key) frame
    frame_bytes: int  # size of the other frames
    timescale: int
    frames: int = 0  # samples added so far
    pool: bytes = field(default=b"", repr=False)

    def sample(self, size: int) -> bytes:
        start = random.randrange(0, len(self.pool) - size)
        return self.pool[start : start + size]

    def add(self, dts: int, key: bool, mark: Mark | None) -> None:
        data = self.sample(self.key_bytes if key else self.frame_bytes)
        sync = key or self.info.kind == "audio"  # every AAC frame is a sync sample
        closed = self.seg.add(dts, dts, data, sync, mark)
        for part in self.seg.take_parts():
            self.out.submit_part(part)
        if closed is not None:
            self.out.submit(closed, self.info)
        self.frames += 1


class Writer:
    """The default ladder's three renditions written frame by frame by the real writer thread."""

    def __init__(
        self,
        client: redis.Redis,
        segment_kb: int = 400,
        epoch: int = 1,
        window: int = 6,
        segment_seconds: int = 2,
    ) -> None:
        self.client = client
        self.gop = gop = segment_seconds * FPS  # frames per segment
        self.segment_samples = AUDIO_RATE * segment_seconds
        self.control = Control()
        self.out = Output(client, STREAM, epoch, window, 3600.0, LOG, gop_seconds=segment_seconds)
        self.out.claim()
        pool = os.urandom(256 * 1024)
        per_frame = segment_kb * 1024 // (gop + 5)  # a key frame is about six times the others
        video = [
            ("720p", 1280, 720, per_frame * 6, per_frame),
            ("360p", 640, 360, per_frame * 2, per_frame // 3),
        ]
        self.tracks: list[_Track] = []
        for name, w, h, key, other in video:
            kbps = (key + other * (gop - 1)) * 8 * FPS // gop // 1000
            info = RenditionInfo(name, "video", kbps * 1320, "avc1.42c01f", w, h, FPS, PART_SECONDS)
            self.tracks.append(self._track(info, key, other, 90_000, pool))
        audio = RenditionInfo("audio", "audio", 140_800, "mp4a.40.2", part_target=PART_SECONDS)
        self.audio = self._track(audio, 370, 370, AUDIO_RATE, pool)
        client.set(
            keys.renditions(STREAM),
            renditions_to_json([t.info for t in self.tracks] + [audio]),
        )
        self.thread = self.out.start(self.control)
        self.frame = 0

    def _track(
        self, info: RenditionInfo, key: int, other: int, timescale: int, pool: bytes
    ) -> _Track:
        out = self.out.track(info.name, Resume(), timescale)
        out.init = b"\x00\x00\x00\x18ftypiso6" + bytes(12)  # the edge serves it as bytes
        seg = Segmenter(part_ticks=round(PART_SECONDS * timescale))
        return _Track(info, out, seg, key, other, timescale, pool=pool)

    def step(self) -> None:
        """One video frame (and the audio up to its end); returns once Redis has what it closed."""
        i, gop = self.frame, self.gop
        t_us = i * 1_000_000 // FPS
        mark = Mark(t_us, 1.7e9 + t_us / 1e6) if i % gop == 0 else None
        for t in self.tracks:
            t.add(i * VIDEO_TICKS, i % gop == 0, mark)
        end = (i + 1) * AUDIO_RATE // FPS
        while self.audio.frames * AAC_FRAME < end:
            n = self.audio.frames
            at = n * AAC_FRAME
            # The first audio frame at or after a video cut starts the segment.
            starts = (
                n == 0 or at // self.segment_samples != (at - AAC_FRAME) // self.segment_samples
            )
            amark = None
            if starts:
                a_us = at * 1_000_000 // AUDIO_RATE
                amark = Mark(a_us, 1.7e9 + a_us / 1e6)
            self.audio.add(at, starts, amark)
        self.frame += 1
        self.flush()

    def flush(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.out.idle():
            if time.monotonic() > deadline:
                raise TimeoutError("the writer thread did not empty its queue")
            time.sleep(0.001)
        if self.control.stopped.is_set():
            raise RuntimeError(f"writer stopped: {self.control.reason}")

    def until_segments(self, n: int) -> None:
        """Write until `n` segments of every rendition are complete and the next has one part."""
        while self.frame < n * self.gop + FPS // 2 + 1:
            self.step()

    def position(self) -> tuple[int, int]:
        """(next msn of 720p, parts it has)."""
        state = self.client.hget(keys.state(STREAM, "720p"), "msn")
        last = int(state) if state is not None else -1
        return last + 1, self.client.llen(keys.parts(STREAM, "720p"))

    def next_part(self) -> tuple[int, int]:
        """Write until 720p has one more part (or a new segment); the new position."""
        start = self.position()
        while (now := self.position()) == start:
            self.step()
        return now

    def close(self) -> None:
        self.control.halt("bench done")
        self.thread.join(2)


# --- the edge, in its own process -----------------------------------------------------------


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def _serve_edge(redis_url: str, port: int, window: int, pool: str, server: str) -> None:
    import redis.asyncio
    from aiohttp import web

    from cluster.ops import METRICS, make_app
    from edge.http import serve
    from edge.playback.hls import routes as hls

    if pool == "edge":
        from edge.app import REDIS_CONNECTIONS, REDIS_POOL_WAIT

        # As edge/app.py makes it: a pool that queues, for at most REDIS_POOL_WAIT seconds.
        client = redis.asyncio.Redis.from_pool(
            redis.asyncio.BlockingConnectionPool.from_url(
                redis_url, max_connections=REDIS_CONNECTIONS, timeout=REDIS_POOL_WAIT
            )
        )
    elif pool == "queue":
        # Not what the edge ships: the same kind of pool, callers queued for as long as it takes.
        client = redis.asyncio.Redis.from_pool(
            redis.asyncio.BlockingConnectionPool.from_url(
                redis_url, max_connections=100, timeout=None
            )
        )
    else:
        # redis-py's default (the edge's until b356ecd): 100 connections, the 101st refused.
        client = redis.asyncio.Redis.from_url(redis_url)
    app = make_app(client_max_size=64 * 1024)
    app[hls.REDIS] = client
    app[hls.WINDOW] = window
    hls.add_routes(app)
    app[METRICS].append(
        lambda: {
            "hls_waiting": app[hls.EVENTS].waiting,
            "hls_cache_hits": app[hls.CACHE].hits,
            "hls_cache_misses": app[hls.CACHE].misses,
            "redis_pool_connections": len(client.connection_pool._available_connections)
            + len(client.connection_pool._in_use_connections),
        }
    )
    if server == "fast":
        runner = await serve(app, "127.0.0.1", port)
    else:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await client.aclose()


def _load_files(root: Path) -> dict[str, bytes]:
    return {"/" + str(f.relative_to(root)): f.read_bytes() for f in root.rglob("*") if f.is_file()}


async def _serve_bare(files: dict[str, bytes], port: int) -> None:
    """A bare aiohttp handler answering every file (path -> bytes) from memory: what aiohttp
    itself costs, without the edge's routing, middleware, cache and Redis."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        data = files.get(request.path)
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def start_edge(
    redis_url: str,
    port: int,
    core: int,
    window: int = 6,
    bare_root: Path | None = None,
    pool: str = "edge",
    server: str = "fast",
    loop: str = "uvloop",
) -> subprocess.Popen[bytes]:
    """The edge HTTP app (or, with `bare_root`, the bare handler) in its own process on
    `core`; returns once it answers."""
    cmd = ["taskset", "-c", str(core), sys.executable, "-m", "bench.hls_fixture"]
    if bare_root is None:
        cmd += ["edge", "--redis", redis_url, "--port", str(port), "--window", str(window)]
        cmd += ["--pool", pool, "--server", server]
    else:
        cmd += ["bare", "--root", str(bare_root), "--port", str(port)]
    cmd += ["--loop", loop]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=Path(__file__).parent.parent)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != b"ready":
        proc.kill()
        raise RuntimeError(f"edge did not start (exit {proc.wait()})")
    if bare_root is None:
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", 10)
        except Exception:
            proc.kill()  # the caller never gets it to stop
            proc.wait()
            raise
    return proc


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        out[name.removeprefix("zoocast_")] = float(value)
    return out


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["edge", "bare"])
    p.add_argument("--redis", default="")
    p.add_argument("--root", type=Path)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--window", type=int, default=6)
    p.add_argument("--pool", choices=POOLS, default="edge")
    p.add_argument("--server", choices=SERVERS, default="fast")
    p.add_argument("--loop", choices=LOOPS, default="uvloop")
    args = p.parse_args()
    raise_fd_limit()
    logging.basicConfig(level=logging.WARNING)
    try:
        uvloop = args.loop == "uvloop"
        if args.role == "edge":
            main = _serve_edge(args.redis, args.port, args.window, args.pool, args.server)
            run(main, uvloop=uvloop)
        else:
            run(_serve_bare(_load_files(args.root), args.port), uvloop=uvloop)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(_main())
