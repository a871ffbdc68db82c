"""A synthetic RTMP publisher: stamped test pattern + tone in, a real-time H.264/AAC FLV push out.

It behaves like OBS where that matters to the cluster: one frame per tick of the wall clock (never
ahead of its capture time, frames skipped rather than bunched when the machine falls behind),
keyframes at a fixed interval, no B-frames, and a bounded reconnect with backoff when the
connection drops. The capture time stamped into a frame is read from the wall clock just before
the frame is encoded, so the viewer's arrival time minus that stamp is glass-to-glass latency.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any
from urllib.parse import quote

import av
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.stream import VideoStream

from cluster.errors import BadRequest
from cluster.ids import stream_id
from zoocast.harness.pattern import TestPattern, Tone

log = logging.getLogger(__name__)

# AAC holds back one frame (1024 samples) and the muxer interleaves by timestamp, so a video
# packet would wait for audio that is not there yet. Feeding the tone this far ahead of the video
# lets each video packet leave at once; the tone has no capture time to be honest about.
AUDIO_LEAD = 0.06


class PublishError(RuntimeError):
    """The publisher gave up: too many failed connection attempts in a row."""


@dataclass(frozen=True)
class PublishStats:
    frames: int  # video frames sent, over all connections
    connections: int  # successful connections (1 + reconnects)
    first_capture_us: int | None
    last_capture_us: int | None


@dataclass
class _Progress:
    frames: int = 0
    connections: int = 0
    first_capture_us: int | None = None
    last_capture_us: int | None = None
    next_slot: int = 0  # frame slots count from the start of publish(); slot k is due at k / fps


def publish(
    url: str,
    *,
    width: int = 320,
    height: int = 180,
    fps: int = 30,
    duration: float | None = None,
    gop: float = 1.0,
    bitrate: int = 400_000,
    audio: bool = True,
    preset: str = "veryfast",
    stop: threading.Event | None = None,
    retries: int = 5,
    backoff: float = 0.25,
    max_backoff: float = 4.0,
) -> PublishStats:
    """Push a stamped test stream to `url` in real time until `duration` s pass or `stop` is set.

    Reconnects after a dropped or refused connection, waiting `backoff` s and doubling up to
    `max_backoff`; raises PublishError after `retries` failed attempts in a row. A server that
    dies is noticed on the next write; one that stops reading (SIGSTOP) blocks the send until it
    reads again: PyAV 18 installs no interrupt callback on output containers and opens their
    URL without options, so neither its `timeout` nor FFmpeg's `rw_timeout` reaches the socket.
    """
    if fps < 1 or gop <= 0 or bitrate < 1000:
        raise ValueError(f"need fps >= 1, gop > 0 and bitrate >= 1000, not {fps}, {gop}, {bitrate}")
    stop = stop or threading.Event()
    pattern = TestPattern(width, height, fps)
    progress = _Progress()
    start = time.monotonic()
    deadline = None if duration is None else start + duration
    failures, delay = 0, backoff

    def done() -> bool:
        return stop.is_set() or (deadline is not None and time.monotonic() >= deadline)

    while not done():
        sent_before = progress.frames
        try:
            link = _connect(url, pattern, gop, bitrate, audio, preset)
        except (av.FFmpegError, OSError) as exc:
            log.warning("publish %s: connect failed: %s", url, exc)
        else:
            progress.connections += 1
            try:
                _stream(link, pattern, progress, start, deadline, stop)
            except (av.FFmpegError, OSError) as exc:
                log.warning(
                    "publish %s: connection lost after %d frames: %s", url, progress.frames, exc
                )
            finally:
                _close_quietly(link.container)
        if done():
            break
        if progress.frames > sent_before:
            failures, delay = 0, backoff
        else:
            failures += 1
            if failures > retries:
                raise PublishError(f"publish {url}: gave up after {failures} failed attempts")
        if stop.wait(delay):
            break
        delay = min(delay * 2, max_backoff)
    return PublishStats(
        progress.frames, progress.connections, progress.first_capture_us, progress.last_capture_us
    )


@dataclass
class _Link:
    container: OutputContainer
    video: VideoStream
    sound: AudioStream | None


def _connect(
    url: str,
    pattern: TestPattern,
    gop: float,
    bitrate: int,
    audio: bool,
    preset: str,
) -> _Link:
    container = av.open(
        url,
        "w",
        format="flv",
        container_options={"flvflags": "no_duration_filesize"},
    )
    try:
        video = _video_stream(container, pattern, gop, bitrate, preset)
        sound = container.add_stream("aac", rate=48_000, layout="mono") if audio else None
        # Connect (TCP, RTMP handshake, publish, FLV header) now rather than inside the first
        # mux(), so that time is not charged to the first frame and no slot is skipped for it.
        container.start_encoding()
    except BaseException:
        _close_quietly(container)
        raise
    return _Link(container, video, sound)


def _stream(
    link: _Link,
    pattern: TestPattern,
    progress: _Progress,
    start: float,
    deadline: float | None,
    stop: threading.Event,
) -> None:
    """One connection: encode and send frames on the wall clock until done or the link fails."""
    fps, mux = pattern.fps, link.container.mux
    tone = Tone()
    # Timestamps restart at zero on every connection, as OBS's do; the frame counter does not.
    first_slot = progress.next_slot
    while not stop.is_set():
        slot = max(progress.next_slot, int((time.monotonic() - start) * fps))
        due = start + slot / fps
        if deadline is not None and due >= deadline:
            break
        if stop.wait(max(0.0, due - time.monotonic())):
            break
        if link.sound is not None:
            while tone.next_time < (slot - first_slot) / fps + AUDIO_LEAD:
                mux(link.sound.encode(tone.frame()))
        capture_us = time.time_ns() // 1000
        frame = pattern.frame(slot, capture_us)
        frame.pts = slot - first_slot
        mux(link.video.encode(frame))
        progress.next_slot = slot + 1
        progress.frames += 1
        progress.last_capture_us = capture_us
        if progress.first_capture_us is None:
            progress.first_capture_us = capture_us
    # A clean end flushes the encoders, so the last frames are not lost.
    mux(link.video.encode(None))
    if link.sound is not None:
        mux(link.sound.encode(None))


def _video_stream(
    container: OutputContainer, pattern: TestPattern, gop: float, bitrate: int, preset: str
) -> VideoStream:
    keyint = max(1, round(gop * pattern.fps))
    kbps = max(1, bitrate // 1000)
    # A fixed GOP with no scene-cut keyframes, and a one-second VBV like OBS's CBR, so
    # segment boundaries and bitrate are predictable.
    params = f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes=0"
    params += f":vbv-maxrate={kbps}:vbv-bufsize={kbps}"
    options = {"preset": preset, "tune": "zerolatency", "x264-params": params}
    video = container.add_stream("libx264", rate=pattern.fps, options=options)
    video.width, video.height, video.pix_fmt = pattern.width, pattern.height, "yuv420p"
    video.bit_rate = bitrate
    return video


def _close_quietly(container: OutputContainer) -> None:
    try:
        container.close()
    except (av.FFmpegError, OSError) as exc:
        # Closing writes the FLV trailer; on a dead connection that fails, and that is expected.
        log.debug("publish: close failed: %s", exc)


def rtmp_url(stream: str, host: str = "127.0.0.1", port: int = 1935, key: str | None = None) -> str:
    """The URL OBS would use: app `live`, the stream key's query string part of the publish name."""
    url = f"rtmp://{host}:{port}/live/{stream_id(stream)}"
    return url if key is None else f"{url}?key={quote(key, safe='')}"


def main_publish_test(argv: list[str]) -> int:
    """`zoocast publish-test STREAM [options]`: publish until --duration passes or SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="zoocast publish-test", description=main_publish_test.__doc__
    )
    parser.add_argument("stream")
    parser.add_argument("--url", help="full rtmp:// URL; overrides --host, --port and --key")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1935)
    parser.add_argument("--key", help="stream key (secret), sent as ?key=")
    parser.add_argument("--size", default="640x360", type=_size, help="WIDTHxHEIGHT, even numbers")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--duration", type=float, help="seconds; default: until stopped")
    parser.add_argument("--gop", type=float, default=2.0, help="keyframe interval in seconds")
    parser.add_argument("--bitrate", type=int, default=1000, help="video kbit/s")
    parser.add_argument("--no-audio", action="store_true")
    args = parser.parse_args(argv)
    try:
        url = args.url or rtmp_url(args.stream, args.host, args.port, args.key)
    except BadRequest as exc:
        parser.error(str(exc))
    width, height = args.size
    stop = threading.Event()
    previous = _stop_on_signals(stop)
    try:
        stats = publish(
            url,
            width=width,
            height=height,
            fps=args.fps,
            duration=args.duration,
            gop=args.gop,
            bitrate=args.bitrate * 1000,
            audio=not args.no_audio,
            stop=stop,
        )
    except (PublishError, ValueError) as exc:
        print(f"publish-test: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stats.frames == 0 and not stop.is_set():
        print(f"publish-test: never connected to {url} within the duration", file=sys.stderr)
        return 1
    print(f"publish-test: sent {stats.frames} frames over {stats.connections} connection(s)")
    return 0


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, not {text!r}") from None
    return w, h


_SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def _stop_on_signals(stop: threading.Event) -> dict[signal.Signals, _SignalHandler]:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
