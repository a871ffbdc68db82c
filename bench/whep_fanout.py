"""WHEP fan-out cost at the edge: CPU of the edge process per viewer of one 720p stream.

Three processes, so that each one's CPU is its own: an edge (the real media-link server, relay,
Feed and WHEP routes, nothing else), this process as the transcoder worker (a pre-encoded 720p
H.264 constrained-baseline loop at `--kbps`, sent in real time on the media link with Opus), and
a viewers process (N light aiortc peer connections whose RTP is counted as it arrives, and one
checking viewer that rebuilds frames: see `viewers_main`). The per-viewer cost includes the
checking viewer's share (N + 1 sessions are on the edge).
For each N the edge's CPU time (utime + stime from /proc) is read over `--seconds`; the same
window with no viewer is the baseline. Per-viewer cost = (cpu(N) - cpu(0)) / (N x seconds);
viewers per core = 1 / that. Reference in the same run: the cost at the smallest N.

    .venv/bin/python -m bench.whep_fanout --viewers 10 30 50
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from fractions import Fraction
from typing import Any

import av
import numpy as np

from cluster.medialink import frames
from cluster.medialink.frames import FEED_AUDIO, FEED_VIDEO, CodecConfig, FrameReader, Kind
from cluster.medialink.frames import MediaPacket as Pkt
from zoocast.local.servers import free_port

TICK = os.sysconf("SC_CLK_TCK")


# ---- the edge process
async def edge_main(http_port: int, media_port: int) -> None:
    from aiohttp import web

    from cluster.ops import make_app
    from cluster.webrtc.ice import announce_hosts
    from edge.playback.webrtc import routes
    from edge.playback.webrtc.whep import Whep
    from edge.relay.gop import GopCache
    from edge.relay.hub import StreamRelay
    from edge.relay.server import LinkServer

    announce_hosts(["127.0.0.1"])
    relay = StreamRelay("bench", GopCache(1 << 20, 10), lambda epoch: None)
    link = LinkServer(lambda s: relay if s == "bench" else None)
    await link.start("127.0.0.1", media_port)
    app = make_app()

    async def feeds(stream: str) -> Any:
        return relay.feed if stream == "bench" else None

    routes.add_routes(app, Whep(feeds))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


# ---- the viewers process
async def viewers_main(url: str, count: int, window: int) -> None:
    """`count` light viewers and one checking viewer, each a real aiortc peer connection.

    A light viewer's RTP datagrams are counted where aioice receives them and go no further:
    aiortc's receive path (SRTP, jitter buffer, depacketizing) costs more per packet than the
    edge's send path, so a few hundred full viewers would need more cores than the edge. Its
    ICE consent checks, DTLS and RTCP (which the edge's aiortc must answer) are untouched. The
    checking viewer takes the full path, with frames rebuilt but not decoded (see
    edge/ingest/whip/passthrough.py), and proves the edge's packets are valid SRTP and H.264.
    """
    import aiohttp
    from aioice.ice import StunProtocol
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError

    from cluster.webrtc.ice import announce_hosts, configuration
    from edge.ingest.whip import passthrough

    announce_hosts(["127.0.0.1"])
    received = [0] * count
    datagrams = [0] * count
    checked = [0]
    light: dict[int, int] = {}  # id(aioice protocol) -> light viewer index
    full_path = StunProtocol.datagram_received

    def counted(self: Any, data: bytes, addr: tuple[Any, ...]) -> None:
        i = light.get(id(self))
        # RTP, not RTCP (RFC 5761: payload types 192-223 in the second byte are RTCP).
        if i is not None and 128 <= data[0] < 192 and not 192 <= data[1] <= 223:
            datagrams[i] += 1
            received[i] += len(data)
            return
        full_path(self, data, addr)

    StunProtocol.datagram_received = counted  # type: ignore[method-assign]

    async def consume(track: Any) -> None:
        try:
            while True:
                await track.recv()
                checked[0] += track.kind == "video"
        except MediaStreamError:
            return

    async def join(i: int | None, http: aiohttp.ClientSession) -> RTCPeerConnection:
        pc = RTCPeerConnection(configuration())
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        if i is None:
            pc.on("track", lambda t: asyncio.ensure_future(consume(t)))
        await pc.setLocalDescription(await pc.createOffer())
        async with http.post(
            url, data=pc.localDescription.sdp, headers={"Content-Type": "application/sdp"}
        ) as resp:
            assert resp.status == 201, await resp.text()
            answer = await resp.text()
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        for t in pc.getTransceivers():
            passthrough.mark(t.receiver)
        if i is not None:
            ice = pc.getTransceivers()[0].receiver.transport.transport
            for protocol in ice._connection._protocols:  # its sockets, one per local candidate
                light[id(protocol)] = i
        return pc

    pcs: list[RTCPeerConnection] = []
    async with aiohttp.ClientSession() as http:
        pcs.append(await join(None, http))
        for first in range(0, count, 5):  # a few handshakes at a time on two shared cores
            pcs += await asyncio.gather(
                *(join(i, http) for i in range(first, min(count, first + 5)))
            )
    # Counters bumped per datagram: polling them is simpler than an event per viewer.
    waited = 0
    while not all(datagrams) or not checked[0]:
        await asyncio.sleep(0.1)
        waited += 1
        if waited % 50 == 0:
            print(f"waiting: {sum(map(bool, datagrams))} of {count} light viewers receive, "
                  f"checker frames {checked[0]}", file=sys.stderr, flush=True)  # fmt: skip
    print("ready", flush=True)
    # Every second, over the last `window` seconds: the slowest and the median light viewer's
    # bit rate, the checking viewer's frame rate, and how many connections are up.
    history = [(list(received), checked[0])]
    while True:
        await asyncio.sleep(1)
        history = [*history[-window:], (list(received), checked[0])]
        (old, old_frames), (new, new_frames) = history[0], history[-1]
        span = len(history) - 1
        rates = sorted((a - b) * 8 / 1000 / span for a, b in zip(new, old, strict=True))
        connected = sum(pc.connectionState == "connected" for pc in pcs)
        print(
            f"kbit/s min {rates[0]:.0f} median {rates[len(rates) // 2]:.0f} "
            f"checker fps {(new_frames - old_frames) / span:.1f} connected {connected}",
            flush=True,
        )


# ---- the worker (this process)
def encode_loop(width: int, height: int, fps: int, kbps: int, seconds: float) -> list[Pkt]:
    video: Any = av.CodecContext.create("libx264", "w")
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.time_base, video.framerate = Fraction(1, fps), Fraction(fps)
    video.bit_rate = kbps * 1000
    video.options = {"preset": "veryfast", "tune": "zerolatency", "profile": "baseline",
                     "g": str(2 * fps), "x264-params": "repeat-headers=1"}  # fmt: skip
    audio: Any = av.CodecContext.create("libopus", "w")
    audio.sample_rate, audio.layout, audio.format = 48_000, "stereo", "s16"
    audio.time_base = Fraction(1, 48_000)
    rng = np.random.default_rng(1)
    out: list[Pkt] = []
    n = int(seconds * fps)
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(n + 1):
        frame = None
        if i < n:
            y = ((xx + yy + i * 8) % 220 + rng.integers(0, 24, (height, width))).astype(np.uint8)
            buf = np.full((height * 3 // 2, width), 128, np.uint8)
            buf[:height] = y
            frame = av.VideoFrame.from_ndarray(buf, format="yuv420p")
            frame.pts = i
        for p in video.encode(frame):
            t = int(p.pts * 1_000_000 // fps)
            out.append(Pkt(FEED_VIDEO, t, t, bytes(p), p.is_keyframe))
    for i in range(int(seconds * 50)):
        a = av.AudioFrame.from_ndarray(np.zeros((1, 1920), np.int16), format="s16", layout="stereo")
        a.sample_rate, a.pts, a.time_base = 48_000, i * 960, Fraction(1, 48_000)
        for p in audio.encode(a):
            t = max(0, int(p.pts * 1_000_000 // 48_000))
            out.append(Pkt(FEED_AUDIO, t, t, bytes(p)))
    out.sort(key=lambda p: p.pts_us)
    return out


async def worker(media_port: int, loop: list[Pkt], seconds: float, width: int, height: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", media_port)
    writer.write(
        frames.encode_json(Kind.HELLO, {"v": 1, "stream": "bench", "epoch": 1, "node": "w"})
    )
    writer.write(
        frames.encode_codec(CodecConfig(FEED_VIDEO, "video", "h264", b"", "annexb", width, height))
    )
    writer.write(frames.encode_codec(CodecConfig(FEED_AUDIO, "audio", "opus", sample_rate=48_000, channels=2)))  # fmt: skip
    keyreq = asyncio.Event()

    async def read() -> None:
        parser = FrameReader()
        while data := await reader.read(65536):
            if any(f.kind is Kind.KEYREQ for f in parser.feed(data)):
                keyreq.set()

    reading = asyncio.ensure_future(read())
    start = time.monotonic()
    cycle = 0
    try:
        while True:
            base = int(cycle * seconds * 1_000_000)
            # A KEYREQ restarts the loop at its first packet (an IDR), as a worker forcing one would.
            for pkt in loop:
                if keyreq.is_set() and pkt.track == FEED_VIDEO and not pkt.keyframe:
                    continue
                if pkt.keyframe:
                    keyreq.clear()
                due = start + (base + pkt.pts_us) / 1e6
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(frames.encode_packet(Pkt(pkt.track, base + pkt.pts_us, base + pkt.pts_us, pkt.data, pkt.keyframe)))  # fmt: skip
            cycle += 1
    finally:
        reading.cancel()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def measure(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return cpu_seconds(pid) - before


async def wait_line(proc: asyncio.subprocess.Process, want: str, timeout: float) -> None:
    assert proc.stdout is not None
    async with asyncio.timeout(timeout):
        while True:
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise RuntimeError(f"child exited before {want!r}")
            if line.strip() == want:
                return


async def last_line(proc: asyncio.subprocess.Process) -> str:
    """The newest line the child printed (its stdout piles up while we measure)."""
    assert proc.stdout is not None
    line = b""
    while True:
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 0.05)
        except TimeoutError:
            return line.decode().strip()


async def main_async(args: argparse.Namespace) -> int:
    w, h = (int(x) for x in args.size.split("x"))
    loop = encode_loop(w, h, args.fps, args.kbps, 4.0)
    kbps = sum(len(p.data) for p in loop if p.track == FEED_VIDEO) * 8 / 4.0 / 1000
    # What every viewer must receive: all media bytes (RTP and SRTP headers come on top).
    need_kbps = sum(len(p.data) for p in loop) * 8 / 4.0 / 1000
    http_port, media_port = free_port(), free_port()
    me = [sys.executable, "-m", "bench.whep_fanout"]
    edge = await asyncio.create_subprocess_exec(
        *me, "edge", str(http_port), str(media_port), stdout=subprocess.PIPE
    )
    if args.pin:
        # The edge alone on core 0; this process (the worker) and the viewers on core 1.
        os.sched_setaffinity(edge.pid, {0})
        os.sched_setaffinity(0, {1})
    try:
        await wait_line(edge, "ready", 30)
        sending = asyncio.ensure_future(worker(media_port, loop, 4.0, w, h))
        await asyncio.sleep(2)
        base = await measure(edge.pid, args.seconds)
        print(f"stream {w}x{h} @ {args.fps} fps, video {kbps:.0f} kbit/s; "
              f"edge with no viewer: {base / args.seconds * 100:.1f} % of a core")  # fmt: skip
        costs: dict[int, float] = {}
        for n in args.viewers:
            viewers = await asyncio.create_subprocess_exec(  # pinned as this process is
                *me, "viewers", f"http://127.0.0.1:{http_port}/whep/bench", str(n),
                str(round(args.seconds)),
                stdout=subprocess.PIPE,
            )  # fmt: skip
            try:
                await wait_line(viewers, "ready", 60 + 2 * n)
                await asyncio.sleep(2)
                used = await measure(edge.pid, args.seconds)
                got = (await last_line(viewers)).split()
            finally:
                viewers.kill()
                await viewers.wait()
            per = (used - base) / (n + 1) / args.seconds
            costs[n] = per
            slowest, median, fps, connected = float(got[2]), float(got[4]), float(got[7]), got[9]
            valid = slowest >= need_kbps and fps >= 0.9 * args.fps
            print(f"N={n}: viewers' kbit/s slowest {slowest:.0f}, median {median:.0f} (media {need_kbps:.0f}); "
                  f"checking viewer {fps:.1f} fps; {connected} connected; "
                  f"edge {used / args.seconds * 100:.1f} % of a core; "
                  f"{per * 100:.3f} % per viewer -> {1 / per:.0f} viewers per core"
                  f" (x N={args.viewers[0]}: {per / costs[args.viewers[0]]:.2f})"
                  + ("" if valid else "  NOT VALID: viewers got less than the stream"), flush=True)  # fmt: skip
            await asyncio.sleep(3)  # sessions close
        sending.cancel()
    finally:
        edge.kill()
        await edge.wait()
    return 0


def main() -> int:
    if sys.argv[1:2] == ["edge"]:
        from cluster import runtime

        # On uvloop, as `zoocast edge` runs.
        runtime.run(edge_main(int(sys.argv[2]), int(sys.argv[3])), uvloop=True)
        return 0
    if sys.argv[1:2] == ["viewers"]:
        asyncio.run(viewers_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        return 0
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--viewers", type=int, nargs="+", default=[10, 30, 50])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--size", default="1280x720")
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--kbps", type=int, default=1500)
    p.add_argument("--pin", action="store_true", help="edge on core 0, worker and viewers on 1")
    return asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
