"""Ladder CPU-seconds of the transcoder worker against the ffmpeg CLI encoding the same ladder, one run.

Input: 20 s of 720p30 H.264 + AAC (48 kHz stereo), made with ffmpeg lavfi testsrc2 + sine into
a temp file, demuxed into media-link packets as RTMP ingest yields them.

- worker: the real worker (`transcoder.pipeline.job.run_worker`, default ladder) in a process
  of its own, pulling the packets from a stand-in edge as fast as it takes them (pace 0),
  writing LL-HLS to a real Redis and its low-latency feed (720p Annex-B + Opus 96k) back
  to the stand-in edge. It imports its modules first and reports ready; its CPU time counts
  from then (the import cost, which a warm worker pool does not pay per stream, is printed
  apart) to its exit, after EOS, once everything is in Redis.
- ffmpeg CLI: one command producing the same ladder with the same settings into fMP4 HLS in a
  temp dir: 720p 2500k (the rung marked webrtc: profile baseline, repeat-headers) and 360p 800k
  (bicubic scale), x264 veryfast, tune zerolatency, no B-frames, no scene cuts, IDRs forced
  every 2 s and nowhere else, VBV maxrate = bufsize = 1.2x the bitrate; AAC 128k 48 kHz
  stereo; Opus 96k 20 ms from the same audio, because the worker also encodes Opus for WebRTC.

What differs, by design, is only the threading. The worker decodes once (slice threads, idle
on this single-slice input) and encodes each rung in a thread of its own, with x264 and swscale
single-threaded inside it (x264 threads=1, hence one slice per picture and no lookahead
thread); the ffmpeg CLI keeps its defaults: frame-threaded decoding, x264 sliced threads
(threads = slices = the CPU count, 2 here), swscale single-threaded. Both encoders' x264 settings are read back from the SEI x264
writes into the first frame of each rung and the differences printed, threading apart from
the rest (which must say none), so the comparison is checked, not assumed.

CPU-seconds are user + system time of each process (`os.wait4`), from which the ratio
worker/ffmpeg. Not counted: Redis' own CPU for the worker's writes (ffmpeg's file writes are in its
system time), and the stand-in edge.

    .venv/bin/python -m bench.ladder_cpu [--seconds 20] [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

import av
import redis

from cluster.hot import keys
from cluster.ladder import ladder
from cluster.medialink import frames
from cluster.medialink.frames import (
    FEED_AUDIO,
    FEED_VIDEO,
    CodecConfig,
    FrameReader,
    Kind,
    MediaPacket,
)
from transcoder.pipeline.job import Job
from transcoder.pipeline.opus import KBPS as OPUS_KBPS
from transcoder.pipeline.rendition import VBV_PEAK
from zoocast.local.servers import RedisServer

GOAL = 0.95
EOS_TIMEOUT = 300.0  # seconds the stand-in edge waits for the worker to encode the input
STREAM = "bench"


def make_input(path: Path, seconds: float) -> None:
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", f"{seconds:g}",
        "-c:v", "libx264", "-preset", "veryfast", "-b:v", "4000k", "-g", "60", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "160k", "-ac", "2", "-ar", "48000",
        str(path),
    ]  # fmt: skip
    subprocess.run(cmd, check=True)


def demux(path: Path) -> tuple[list[CodecConfig], list[MediaPacket]]:
    """What RTMP ingest yields: AVCC H.264 with its avcC, raw AAC with its AudioSpecificConfig."""
    codecs: list[CodecConfig] = []
    packets: list[MediaPacket] = []
    with av.open(str(path)) as container:
        for v in container.streams.video:
            c = v.codec_context
            codecs.append(
                CodecConfig(
                    v.index, "video", c.name, bytes(c.extradata or b""), "avcc", c.width, c.height
                )
            )
        for a in container.streams.audio:
            ac = a.codec_context
            codecs.append(
                CodecConfig(
                    a.index,
                    "audio",
                    ac.name,
                    bytes(ac.extradata or b""),
                    sample_rate=ac.sample_rate,
                    channels=ac.channels,
                )
            )
        for p in container.demux():
            if p.dts is None or p.pts is None or p.time_base is None:
                continue
            tb = p.time_base
            packets.append(
                MediaPacket(
                    p.stream.index,
                    int(p.pts * tb * 1_000_000),
                    int(p.dts * tb * 1_000_000),
                    bytes(p),
                    keyframe=p.is_keyframe,
                )
            )
    packets.sort(key=lambda p: p.dts_us)
    return codecs, packets


class StandInEdge:
    """The ingest edge's side of one media link: HELLO -> ACCEPT, codecs, every packet as fast as
    the worker reads them; what the worker sends back (its feed) is read and counted.

    EOS goes out once the feed shows that the worker has encoded the input (video up to its
    last frame, Opus up to the end of the audio), not right after the last packet: a worker
    whose audio chain is still holding packets for the video origin when EOS arrives drops
    them (transcoder/pipeline/audio.py returns on END without the held packets), and with a
    whole clip sent at once that is all of the audio.
    """

    def __init__(self, codecs: list[CodecConfig], packets: list[MediaPacket]) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.addr = f"127.0.0.1:{self.server.getsockname()[1]}"
        self.payload = b"".join(
            [frames.encode_codec(c) for c in codecs]
            + [frames.encode_packet(p, replay=False) for p in packets]
        )
        video = next(c.track for c in codecs if c.kind == "video")
        self.video_frames = sum(1 for p in packets if p.track == video)
        self.audio_end_us = max(p.pts_us for p in packets if p.track != video)
        self.feed_video = 0
        self.feed_audio_us = -1
        self.eos_wait = 0.0  # seconds between the last packet and EOS
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            parser = FrameReader()
            got: list[frames.Frame] = []
            while not got:
                data = conn.recv(4096)
                if not data:
                    return
                got = parser.feed(data)
            hello = got[0].json()
            accept = {"v": 1, "stream": hello["stream"], "epoch": hello["epoch"]}
            reader = threading.Thread(target=self._read, args=(conn, parser), daemon=True)
            reader.start()
            try:
                conn.sendall(frames.encode_json(Kind.ACCEPT, accept) + self.payload)
                t0 = time.monotonic()
                while time.monotonic() - t0 < EOS_TIMEOUT and not self._encoded():
                    time.sleep(0.01)
                self.eos_wait = time.monotonic() - t0
                conn.sendall(frames.encode(Kind.EOS))
            except OSError:
                return
            reader.join()

    def _encoded(self) -> bool:
        # The last video frame may stay in the encoder; AAC/Opus framing may leave ~40 ms out.
        return (
            self.feed_video >= self.video_frames - 2
            and self.feed_audio_us >= self.audio_end_us - 100_000
        )

    def _read(self, conn: socket.socket, parser: FrameReader) -> None:
        try:
            while data := conn.recv(1 << 16):
                for f in parser.feed(data):
                    if f.kind is not Kind.PACKET:
                        continue
                    p = f.packet()
                    if p.track == FEED_VIDEO:
                        self.feed_video += 1
                    elif p.track == FEED_AUDIO:
                        self.feed_audio_us = max(self.feed_audio_us, p.pts_us)
        except OSError:
            pass

    def close(self) -> None:
        self.server.close()


WORKER = """
import sys, json
from transcoder.pipeline.job import Job, run_worker
job = Job(**json.loads(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()
run_worker(job)
"""


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_worker(
    codecs: list[CodecConfig], packets: list[MediaPacket], redis_url: str, epoch: int
) -> tuple[float, float, float, StandInEdge]:
    """(CPU-s after imports, CPU-s of the imports, wall seconds, the edge with the feed)."""
    edge = StandInEdge(codecs, packets)
    job = Job(
        STREAM,
        epoch,
        "bench",
        edge.addr,
        profile="default",
        redis_url=redis_url,
        log_level="WARNING",
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, json.dumps(asdict(job))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )
    assert proc.stdin is not None and proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        raise RuntimeError("the worker did not start")
    imports = cpu_of(proc.pid)
    t0 = time.monotonic()
    proc.stdin.write(b"go\n")
    proc.stdin.flush()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"the worker exited with {proc.returncode}")
    edge.close()
    return usage.ru_utime + usage.ru_stime - imports, imports, wall, edge


def ffmpeg_command(src: Path, out: Path) -> list[str]:
    profile = ladder("default")
    webrtc = profile.webrtc_rung(profile.rungs_for(720))
    vf, vmaps, vopts = [], [], []
    for i, rung in enumerate(profile.rungs):
        w = rung.width_for(1280, 720)
        vf.append(
            f"[s{i}]scale={w}:{rung.height}:flags=bicubic[v{i}]"
            if rung.height != 720
            else f"[s{i}]null[v{i}]"
        )
        vmaps += ["-map", f"[v{i}]"]
        peak = int(rung.video_kbps * VBV_PEAK)
        params = f"scenecut=0:keyint=infinite:bframes=0:vbv-maxrate={peak}:vbv-bufsize={peak}"
        vopts += [f"-b:v:{i}", f"{rung.video_kbps}k"]
        if rung == webrtc:
            params += ":repeat-headers=1"
            vopts += [f"-profile:v:{i}", "baseline"]
        vopts += [f"-x264-params:v:{i}", params]
    n = len(profile.rungs)
    graph = (
        f"[0:v]split={n}"
        + "".join(f"[s{i}]" for i in range(n))
        + ";"
        + ";".join(vf)
        + ";[0:a]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo,asplit=2[a0][a1]"
    )
    streams = " ".join(f"v:{i},agroup:aud,name:{r.name}" for i, r in enumerate(profile.rungs))
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
        "-filter_complex", graph,
        *vmaps, "-map", "[a0]",
        "-c:v", "libx264", "-preset", profile.preset, "-tune", "zerolatency", "-forced-idr", "1",
        "-force_key_frames", f"expr:gte(t,n_forced*{profile.gop_seconds:g})",
        *vopts,
        "-c:a", "aac", "-b:a", f"{profile.audio_kbps}k",
        "-f", "hls", "-hls_time", f"{profile.gop_seconds:g}", "-hls_list_size", "0",
        "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments",
        "-var_stream_map", f"{streams} a:0,agroup:aud,name:audio",
        "-master_pl_name", "master.m3u8",
        "-hls_segment_filename", f"{out}/%v/%d.m4s", f"{out}/%v/index.m3u8",
        "-map", "[a1]", "-c:a", "libopus", "-b:a", f"{OPUS_KBPS}k", "-frame_duration", "20",
        f"{out}/feed.opus",
    ]  # fmt: skip


def run_ffmpeg(cmd: list[str]) -> tuple[float, float]:
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg exited with {proc.returncode}")
    return usage.ru_utime + usage.ru_stime, time.monotonic() - t0


# How x264 spreads its work, not what it encodes: the one thing the two sides may do differently.
THREADING = {"threads", "lookahead_threads", "sliced_threads", "slices"}
X264_SEI = re.compile(rb"x264 - core (\d+)[^\x00]*? - options: ([^\x00]*)")


def x264_options(data: bytes) -> tuple[str, dict[str, str]]:
    m = X264_SEI.search(data)
    if m is None:
        return "?", {}
    opts = dict(kv.split("=", 1) for kv in m.group(2).decode(errors="replace").split() if "=" in kv)
    return m.group(1).decode(), opts


def compare(name: str, ours: bytes, theirs: bytes) -> None:
    core_a, a = x264_options(ours)
    core_b, b = x264_options(theirs)
    if not a or not b:
        print(f"  {name}: x264 SEI not found (worker {bool(a)}, ffmpeg {bool(b)})")
        return
    diff = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
    same = "same" if core_a == core_b else "different"

    def text(keys: set[str]) -> str:
        return ", ".join(f"{k} {x}/{y}" for k, (x, y) in diff.items() if k in keys) or "none"

    print(
        f"  {name}: x264 core {core_a}/{core_b} ({same} build); options that differ "
        f"(worker/ffmpeg): threading: {text(THREADING)}; "
        f"encoding: {text(set(diff) - THREADING)}"
    )


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=20.0, help="length of the input")
    p.add_argument("--runs", type=int, default=1, help="worker/ffmpeg pairs, alternated")
    args = p.parse_args()
    if shutil.which("ffmpeg") is None:
        print("ladder_cpu needs the ffmpeg CLI (Debian package `ffmpeg`)", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="zoocast-bench-ladder-"))
    store = RedisServer(root / "redis").start()
    try:
        src = root / "input.mp4"
        make_input(src, args.seconds)
        codecs, packets = demux(src)
        client = redis.Redis.from_url(store.url)
        worker_cpu: list[float] = []
        ffmpeg_cpu: list[float] = []
        cmd: list[str] = []
        for run in range(args.runs):
            client.flushall()
            cpu, imports, wall, edge = run_worker(codecs, packets, store.url, epoch=1)
            worker_cpu.append(cpu)
            segs = {n: client.llen(keys.index(STREAM, n)) for n in ("720p", "360p", "audio")}
            print(
                f"run {run + 1}: worker  {cpu:6.2f} CPU-s (+ {imports:.2f} for its imports), "
                f"wall {wall:5.1f} s, segments in Redis {segs}, feed: {edge.feed_video} "
                f"video packets, Opus to {edge.feed_audio_us / 1e6:.2f} s"
            )
            out = root / f"ffmpeg-{run}"
            out.mkdir()
            cmd = ffmpeg_command(src, out)
            cpu_f, wall_f = run_ffmpeg(cmd)
            ffmpeg_cpu.append(cpu_f)
            made = {d.name: len(list(d.glob("*.m4s"))) for d in sorted(out.iterdir()) if d.is_dir()}
            print(
                f"run {run + 1}: ffmpeg  {cpu_f:6.2f} CPU-s, wall {wall_f:5.1f} s, segments {made}"
            )
        print("\nsettings read back from the first segment of each rung:")
        for name in ("720p", "360p"):
            ours = client.get(keys.segment(STREAM, name, 0))
            first = out / name / "0.m4s"
            theirs = first.read_bytes() if first.exists() else b""
            compare(name, ours if isinstance(ours, bytes) else b"", theirs)
        print("\nffmpeg command (the worker also encodes Opus 96k for WebRTC, so ffmpeg does too):")
        print("  " + " ".join(f"'{a}'" if any(c in a for c in " ;[]*,()") else a for a in cmd))
        w, f = statistics.median(worker_cpu), statistics.median(ffmpeg_cpu)
        ratio = w / f
        verdict = "met" if ratio <= GOAL else "NOT met"
        print(
            f"\n{args.seconds:g} s of 720p30, default ladder (720p 2500k + 360p 800k, AAC "
            f"128k, Opus {OPUS_KBPS}k)"
        )
        print(
            f"worker {w:.2f} CPU-s, ffmpeg CLI {f:.2f} CPU-s: worker/ffmpeg {ratio:.2f}x "
            f"(goal <= {GOAL}x: {verdict})"
        )
        return 0 if ratio <= GOAL else 1
    finally:
        store.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
