"""A measuring HLS viewer: a media playlist URL in, one FrameRecord per decoded frame out.

It polls the playlist, downloads each new segment once and in order (prefixed with the init
segment of the EXT-X-MAP in force), decodes it with PyAV and reads every frame's timecode. It
follows whole segments, as a plain HLS player does; blocking reloads and parts are not used.
Loopback only: stdlib urllib, one request at a time.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import av

from zoocast.harness import timecode
from zoocast.harness.analysis import (
    FrameRecord,
    Gaps,
    Latency,
    discontinuities,
    gaps,
    latency,
    msn_monotonic,
)
from zoocast.harness.frames import luma
from zoocast.harness.playlist import MediaPlaylist, PlaylistError, Segment, parse_media_playlist

__all__ = [
    "FrameRecord",
    "Gaps",
    "HlsFollower",
    "Latency",
    "decode_segment",
    "discontinuities",
    "follow",
    "gaps",
    "latency",
    "msn_monotonic",
]

log = logging.getLogger(__name__)


class HlsFollower:
    """Follows one media playlist; `records` grows as segments arrive (call poll() or start())."""

    def __init__(
        self,
        url: str,
        *,
        poll_interval: float = 0.1,
        live_edge_segments: int = 1,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.poll_interval = poll_interval
        self.live_edge_segments = live_edge_segments  # where to join: this many from the end
        self.timeout = timeout
        self.clock = clock
        self.records: list[FrameRecord] = []
        self.playlist_sequences: list[int] = []  # EXT-X-MEDIA-SEQUENCE of every playlist read
        self.sequence_rewinds: list[tuple[int, int]] = []  # (seen before, seen now) when it fell
        self.skipped: list[int] = []  # msns that left the window before they could be fetched
        self.errors: list[str] = []
        self.ended = False
        self._next_msn: int | None = None
        self._disc_seq: int | None = None
        self._http = Fetcher(timeout)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def poll(self) -> int:
        """Read the playlist once and fetch what is new; returns how many frames were added."""
        try:
            playlist = parse_media_playlist(self._http.get(self.url).decode(), base_url=self.url)
        except (OSError, PlaylistError, UnicodeDecodeError) as exc:
            self._error(f"playlist: {exc}")
            return 0
        self._check_sequence(playlist)
        self.ended = playlist.ended
        added = 0
        for seg in playlist.segments:
            assert self._next_msn is not None
            if seg.msn < self._next_msn:
                continue
            self.skipped.extend(range(self._next_msn, seg.msn))
            self._next_msn = seg.msn + 1
            if not seg.gap:
                added += self._fetch(seg)
        return added

    def run(self, stop: threading.Event, duration: float | None = None) -> None:
        """Poll until `stop` is set, `duration` s pass or the playlist ends and is fully read."""
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            started = time.monotonic()
            self.poll()
            if self.ended:
                return
            stop.wait(max(0.0, self.poll_interval - (time.monotonic() - started)))

    def start(self) -> HlsFollower:
        """Follow on a background thread until stop()."""
        self._thread = threading.Thread(target=self._run_guarded, name="hls-follower", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[FrameRecord]:
        """Stop the background thread; re-raises what killed it; returns the records."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 5)
        if self._failure is not None:
            raise self._failure
        return self.snapshot()

    def snapshot(self) -> list[FrameRecord]:
        with self._lock:
            return list(self.records)

    def _run_guarded(self) -> None:
        try:
            self.run(self._stop)
        except BaseException as exc:  # handed to stop(), which re-raises on the caller's thread
            self._failure = exc

    def _check_sequence(self, playlist: MediaPlaylist) -> None:
        sequences = self.playlist_sequences
        if sequences and playlist.media_sequence < sequences[-1]:
            # A broken contract, kept for the test to assert on; resync so following continues.
            self.sequence_rewinds.append((sequences[-1], playlist.media_sequence))
            self._next_msn = None
        sequences.append(playlist.media_sequence)
        if self._next_msn is None:
            back = min(self.live_edge_segments, len(playlist.segments))
            self._next_msn = playlist.media_sequence + len(playlist.segments) - back

    def _fetch(self, seg: Segment) -> int:
        try:
            init = b"" if seg.map_uri is None else self._http.init(seg.map_uri)
            data = self._http.get(seg.uri)
        except OSError as exc:
            self._error(f"segment {seg.msn}: {exc}")
            return 0
        arrival = self.clock()
        # A discontinuity is also one whose tagged segment we never fetched.
        jumped = self._disc_seq is not None and seg.discontinuity_seq != self._disc_seq
        self._disc_seq = seg.discontinuity_seq
        try:
            decoded = decode_segment(init + data)
        except av.FFmpegError as exc:
            self._error(f"segment {seg.msn}: decode: {exc}")
            return 0
        with self._lock:
            self.records += records(decoded, arrival, seg.msn, seg.discontinuity or jumped)
        return len(decoded)

    def _error(self, message: str) -> None:
        log.debug("hls follower %s: %s", self.url, message)
        self.errors.append(message)


class Fetcher:
    """GETs over loopback, with init segments (which never change) fetched once."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._inits: dict[str, bytes] = {}

    def get(self, url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=self.timeout) as response:
            body: bytes = response.read()
            return body

    def init(self, uri: str) -> bytes:
        if uri not in self._inits:
            self._inits[uri] = self.get(uri)
        return self._inits[uri]


def records(
    decoded: list[tuple[float | None, timecode.Timecode | None]],
    arrival: float,
    msn: int,
    discontinuity: bool,
) -> list[FrameRecord]:
    """One record per decoded frame that arrived at `arrival`; the first carries `discontinuity`."""
    return [
        FrameRecord(
            arrival=arrival,
            capture=None if code is None else code.capture_us / 1e6,
            counter=None if code is None else code.counter,
            msn=msn,
            discontinuity=i == 0 and discontinuity,
            pts=pts,
        )
        for i, (pts, code) in enumerate(decoded)
    ]


def decode_segment(data: bytes) -> list[tuple[float | None, timecode.Timecode | None]]:
    """(pts in seconds, timecode) of every video frame in an init+media fMP4 (or MPEG-TS) segment."""
    out: list[tuple[float | None, timecode.Timecode | None]] = []
    with av.open(io.BytesIO(data), "r") as container:
        if not container.streams.video:
            return out
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            pts = (
                None
                if frame.pts is None or frame.time_base is None
                else float(frame.pts * frame.time_base)
            )
            out.append((pts, timecode.read(luma(frame))))
    return out


def follow(url: str, duration: float, *, poll_interval: float = 0.1) -> HlsFollower:
    """Follow `url` on this thread for `duration` s; the returned follower holds the records."""
    follower = HlsFollower(url, poll_interval=poll_interval)
    follower.run(threading.Event(), duration)
    return follower
