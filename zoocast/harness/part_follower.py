"""A measuring LL-HLS viewer: follows a media playlist part by part with blocking reloads.

It asks for the next part it needs (`_HLS_msn`/`_HLS_part`), so the edge answers the moment that
part exists; it downloads each part once, appends it to the segment being assembled (init + the
parts so far) and decodes that, recording the frames the new part added with the time the part
arrived. That is how soon an LL-HLS player can show a frame; a player adds its PART-HOLD-BACK
on top. After a failover the successor rewrites the unfinished segment's parts under new URIs:
the follower notices URIs it did not fetch and restarts that segment from the new writer's
parts. Loopback only: stdlib urllib, one request at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import av

from zoocast.harness.analysis import FrameRecord
from zoocast.harness.playlist import MediaPlaylist, Part, PlaylistError, parse_media_playlist
from zoocast.harness.viewer import Fetcher, decode_segment, records

log = logging.getLogger(__name__)


class PartFollower:
    def __init__(
        self, url: str, *, timeout: float = 10.0, clock: Callable[[], float] = time.time
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.clock = clock
        self.records: list[FrameRecord] = []
        self.errors: list[str] = []
        self.parts_fetched = 0
        self.restarts = 0  # segments restarted because another writer rewrote their parts
        # (EXT-X-MEDIA-SEQUENCE, EXT-X-DISCONTINUITY-SEQUENCE) of every playlist read, in order
        self.sequences: list[tuple[int, int]] = []
        self._next: tuple[int, int] | None = None  # (msn, part) wanted next
        self._fetched: dict[tuple[int, int], str] = {}  # URIs of the current segment's parts
        self._buffer = b""  # init + the current segment's parts so far
        self._decoded = 0  # frames of _buffer already recorded
        self._disc_seq: int | None = None
        self._http = Fetcher(timeout)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- running ---------------------------------------------------------------------------------

    def start(self) -> PartFollower:
        self._thread = threading.Thread(target=self._run, name="part-follower", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[FrameRecord]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 5)
        return self.snapshot()

    def snapshot(self) -> list[FrameRecord]:
        with self._lock:
            return list(self.records)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.poll() == 0 and self._next is None:
                self._stop.wait(0.1)

    # -- one step --------------------------------------------------------------------------------

    def poll(self) -> int:
        """One (blocking) playlist request and the parts it made available; frames added."""
        url = self.url
        if self._next is not None:
            url += f"?_HLS_msn={self._next[0]}&_HLS_part={self._next[1]}"
        try:
            playlist = parse_media_playlist(self._http.get(url).decode(), base_url=self.url)
        except (OSError, PlaylistError, UnicodeDecodeError) as exc:
            self._error(f"playlist: {exc}")
            self._stop.wait(0.2)
            return 0
        self.sequences.append((playlist.media_sequence, playlist.discontinuity_sequence))
        if not playlist.parts:
            return 0
        if self._next is None:
            self._join(playlist)
        added = 0
        for part in self._wanted(playlist):
            added += self._take(part)
        return added

    def _join(self, playlist: MediaPlaylist) -> None:
        """Start at the newest independent part: the latest point a decoder can begin."""
        start = next(p for p in reversed(playlist.parts) if p.independent)
        self._reset(start)

    def _wanted(self, playlist: MediaPlaylist) -> list[Part]:
        """The listed parts from the one we want next on, in order."""
        assert self._next is not None
        msn, index = self._next
        had = [p for p in playlist.parts if p.msn == msn and p.index < index]
        if any(self._fetched.get((msn, p.index)) != p.uri for p in had):
            # Another writer took the unfinished segment over: its parts replace ours.
            restart = next((p for p in playlist.parts if p.msn == msn and p.independent), None)
            if restart is None:
                return []
            self.restarts += 1
            self._reset(restart)
        return [p for p in playlist.parts if (p.msn, p.index) >= self._next]

    def _reset(self, part: Part) -> None:
        self._next = (part.msn, part.index)
        self._fetched = {}
        self._buffer = b""
        self._decoded = 0

    def _take(self, part: Part) -> int:
        assert self._next is not None
        if part.msn != self._next[0]:
            if not part.independent:
                return 0
            self._reset(part)
        if part.index != self._next[1]:
            return 0  # a hole: wait for the next independent part
        try:
            if not self._buffer:
                self._buffer = b"" if part.map_uri is None else self._http.init(part.map_uri)
            data = self._http.get(part.uri)
        except OSError as exc:
            self._error(f"part {part.msn}.{part.index}: {exc}")
            return 0
        arrival = self.clock()
        self.parts_fetched += 1
        self._fetched[(part.msn, part.index)] = part.uri
        self._buffer += data
        self._next = (part.msn, part.index + 1)
        jumped = self._disc_seq is not None and part.discontinuity_seq != self._disc_seq
        self._disc_seq = part.discontinuity_seq
        try:
            decoded = decode_segment(self._buffer)
        except av.FFmpegError as exc:
            self._error(f"part {part.msn}.{part.index}: decode: {exc}")
            return 0
        new = decoded[self._decoded :]
        self._decoded = len(decoded)
        with self._lock:
            self.records += records(new, arrival, part.msn, jumped)
        return len(new)

    def _error(self, message: str) -> None:
        log.debug("part follower %s: %s", self.url, message)
        self.errors.append(message)
