"""Writing renditions to Redis, only through the epoch fence (closed segments in, fenced batches out).

Per rendition: the init segment of this writer, each LL-HLS part and each segment with a TTL,
the parts of the segment being written, the playlist window (index) and the state hash that lets
a successor continue the media sequence. Every write is one fenced batch, so a writer whose epoch
was superseded gets `Fenced` instead of writing anything.

A part's fMP4 fragment is built once, on the encoder's thread, and the segment it belongs to is
those fragments joined: a segment is byte for byte its parts.

Encoders hand segments to one writer thread and never wait on Redis: a slow or restarting Redis
costs segments (the next one that lands carries a discontinuity), never the encoders' real-time
pace, which the low-latency feed and the edge's back-pressure limit depend on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from cluster.hot import keys
from cluster.hot.fence import FencedBatch, run_sync
from cluster.hot.model import PartEntry, RenditionInfo, SegmentEntry
from transcoder.pipeline import fmp4
from transcoder.pipeline.catalog import Catalog
from transcoder.pipeline.control import Control, spawn
from transcoder.pipeline.segments import Closed, Part

WRITE_QUEUE = 64  # segments of all renditions waiting for Redis; beyond this they are dropped
PART_TTL_GOPS = 6  # a part lives this many segment durations...
PART_TTL_MIN = 10.0  # ...and at least this many seconds
# Entries kept in the index beyond the playlist window, for players a little behind the edge.
INDEX_SLACK = 4


@dataclass(frozen=True)
class Resume:
    """Where the previous writer of a rendition left off (from its state hash)."""

    msn: int = 0  # the next media sequence number to write
    disc: int = 0  # discontinuities written so far
    end_us: int | None = None  # publisher time the previous writer's last segment ended at
    session: str = ""  # the publisher session whose clock `end_us` is on

    @property
    def continues(self) -> bool:
        return self.end_us is not None

    def same_clock(self, session: str) -> bool:
        """Whether `end_us` is on the clock of publisher session `session`. A publisher that
        reconnected starts its clock again, so where the last one stopped means nothing."""
        return not self.session or not session or self.session == session

    @classmethod
    def parse(cls, raw: dict[bytes, bytes]) -> Resume:
        if b"msn" not in raw:
            return cls()
        end = raw.get(b"end_us")
        session = raw.get(b"session", b"").decode(errors="replace")
        return cls(
            int(raw[b"msn"]) + 1, int(raw.get(b"disc", b"0")), int(end) if end else 0, session
        )


def resume_point(resume: dict[str, Resume], audio: str, session: str = "") -> int:
    """Publisher time from which a successor outputs: where the previous writer stopped, if it
    carried the same publisher session (else from the start of the new session's clock).

    Taken from the video renditions when there are any (audio segments end up to an AAC frame
    off the grid); never before zero, where publishers start their clocks (earlier timestamps
    are encoder priming).
    """
    same = {n: r for n, r in resume.items() if r.end_us is not None and r.same_clock(session)}
    video = [r.end_us for n, r in same.items() if n != audio and r.end_us is not None]
    ends = video or [r.end_us for n, r in same.items() if n == audio and r.end_us is not None]
    return max([0, *ends])


class Output:
    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        epoch: int,
        hls_window: int,
        segment_ttl: float,
        log: logging.LoggerAdapter[Any],
        gop_seconds: float = 2.0,
        session: str = "",
    ) -> None:
        self.client = client
        self.session = session  # the publisher session this writer carries
        self.stream = stream
        self.epoch = epoch
        self.window = hls_window  # segments a playlist lists
        self.keep = hls_window + INDEX_SLACK
        self.ttl_ms = max(1, int(segment_ttl * 1000))
        # Parts are listed for the last three target durations only; the segment that joins
        # them lives on, so the parts need not (they would double the media kept in Redis).
        self.part_ttl_ms = min(
            self.ttl_ms, int(max(PART_TTL_MIN, PART_TTL_GOPS * gop_seconds) * 1000)
        )
        self.log = log
        self.catalog = Catalog(stream, self.ttl_ms, gop_seconds, self.run, log)
        self._queue: queue.Queue[_Write] = queue.Queue(WRITE_QUEUE)

    def start(self, control: Control) -> threading.Thread:
        """Start the writer thread that `TrackOutput.submit` feeds."""

        def loop() -> None:
            while (item := control.get(self._queue)) is not None:
                try:
                    if isinstance(item, _PartWrite):
                        item.track.write_part(item.part, item.body)
                    else:
                        item.track.write(item.closed, item.info, item.body)
                finally:
                    self._queue.task_done()

        return spawn("redis-writer", control, self.log, loop)

    def enqueue(self, item: _Write) -> bool:
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            return False

    def idle(self) -> bool:
        return self._queue.unfinished_tasks == 0

    def run(self, batch: FencedBatch) -> None:
        run_sync(self.client, batch, keys.epoch(self.stream), self.epoch)

    def claim(self) -> None:
        """Raise the stored epoch to ours with no other write: from this moment on any older
        writer (a paused predecessor) is fenced, even before we have media to write."""
        self.run(FencedBatch())

    def resume(self, names: list[str]) -> dict[str, Resume]:
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(keys.state(self.stream, name))
        return {name: Resume.parse(raw) for name, raw in zip(names, pipe.execute(), strict=True)}

    def track(self, name: str, resume: Resume, timescale: int = 90_000) -> TrackOutput:
        return TrackOutput(self, name, resume, timescale)


@dataclass(frozen=True)
class _PartWrite:
    track: TrackOutput
    part: Part
    body: bytes


@dataclass(frozen=True)
class _SegmentWrite:
    track: TrackOutput
    closed: Closed
    info: RenditionInfo
    body: bytes | None  # the parts' fragments joined; None: build it from the samples


_Write = _PartWrite | _SegmentWrite


class TrackOutput:
    """One rendition's writer: numbering, discontinuities, and the batch per part and segment."""

    def __init__(self, out: Output, name: str, resume: Resume, timescale: int = 90_000) -> None:
        self.out = out
        self.name = name
        self.timescale = timescale
        # Encoder thread only: fragment numbering and the fragments of the segment in progress.
        self._fragments = 0
        self._open: list[bytes] = []
        self.msn = resume.msn
        self.disc = resume.disc
        # The first segment after another writer (or after a lost write) is a discontinuity.
        self.disc_pending = resume.continues
        self.init: bytes | None = None
        self.init_written = False
        self.dropped = 0  # segments the writer could not take; counted by the encoder thread
        self._dropped_seen = 0
        # Writer thread: parts published for the open msn, gaps not yet written, last entry.
        self._open_parts: list[PartEntry] = []
        self._gaps: list[SegmentEntry] = []
        self._last: SegmentEntry | None = None
        s = out.stream
        self.k_init = keys.init(s, name, out.epoch)
        self.k_index = keys.index(s, name)
        self.k_state = keys.state(s, name)
        self.k_parts = keys.parts(s, name)

    def submit_part(self, part: Part) -> None:
        """Hand a part to the writer thread without waiting (encoder threads)."""
        self._fragments += 1
        body = fmp4.media_segment(self._fragments, part.base_dts, part.samples)
        self._open.append(body)
        if not self.out.enqueue(_PartWrite(self, part, body)):
            self.out.log.warning("%s: redis writes backed up; part dropped", self.name)

    def submit(self, closed: Closed, info: RenditionInfo) -> None:
        """Hand a segment to the writer thread without waiting (encoder threads)."""
        fragments, self._open = self._open, []
        body = b"".join(fragments) if closed.parts and len(fragments) == len(closed.parts) else None
        if not self.out.enqueue(_SegmentWrite(self, closed, info, body)):
            self.dropped += 1
            self.out.log.warning("%s: redis writes backed up; segment dropped", self.name)

    def write_part(self, part: Part, body: bytes) -> None:
        """Publish one part of the segment being written; a part that cannot be written is
        skipped (its segment will still be whole)."""
        out = self.out
        if part.index == 0 and self._open_parts:
            # The segment those parts belong to was never written (dropped, or its write
            # failed). Their URIs are out: its msn is spent, and it becomes a gap.
            self._spend_open_msn()
        entry = PartEntry(
            msn=self.msn,
            index=part.index,
            duration=round(part.ticks / self.timescale, 6),
            independent=part.independent,
            epoch=out.epoch,
            disc=self.disc_pending and part.index == 0,
        )
        batch = self._batch()
        if part.index == 0:
            batch.delete(self.k_parts)  # any predecessor's unfinished parts go
        self._init_into(batch)
        (
            batch.set(
                keys.part(out.stream, self.name, out.epoch, self.msn, part.index),
                body,
                out.part_ttl_ms,
            )
            .rpush(self.k_parts, entry.to_json())
            .pexpire(self.k_parts, out.part_ttl_ms)
            .publish(keys.events(out.stream, self.name), f"{self.msn}.{part.index}")
        )
        try:
            out.run(batch)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            out.log.warning("%s: part %d.%d not written: %s", self.name, self.msn, part.index, exc)
            return
        self.init_written = True
        self._gaps = []
        self._open_parts.append(entry)

    def _spend_open_msn(self) -> None:
        published = self._open_parts
        duration = max(0.001, round(sum(p.duration for p in published), 6))
        last = self._last
        start = last.end_us if last else 0
        gap = SegmentEntry(
            msn=self.msn,
            duration=duration,
            epoch=self.out.epoch,
            start_us=start,
            end_us=start + int(duration * 1_000_000),
            pdt=round(last.pdt + last.duration, 3) if last else round(time.time(), 3),
            disc=published[0].disc,
            gap=True,
        )
        self.out.log.warning("%s: segment %d was never written; it is a gap", self.name, self.msn)
        self._gaps.append(gap)
        self._last = gap
        self._open_parts = []
        self.msn += 1
        if gap.disc:  # the gap carries the discontinuity its parts announced
            self.disc += 1
            self.disc_pending = False

    def _batch(self) -> FencedBatch:
        """A batch that first writes any gaps still pending; guarded so msns never go back."""
        first = self._gaps[0].msn if self._gaps else self.msn
        batch = FencedBatch().guard_hash_below(self.k_state, "msn", first)
        if self._gaps:
            for gap in self._gaps:
                batch.rpush(self.k_index, gap.to_json())
            batch.ltrim(self.k_index, -self.out.keep, -1)
            state: dict[str, str | int | float] = {
                "msn": self._gaps[-1].msn,
                "disc": self.disc,
                "epoch": self.out.epoch,
                "session": self.out.session,
            }
            batch.hset(self.k_state, state)
        return batch

    def _init_into(self, batch: FencedBatch) -> None:
        if not self.init_written:
            assert self.init is not None, "the init segment precedes the first media"
            batch.set(self.k_init, self.init, self.out.ttl_ms)

    def write(self, closed: Closed, info: RenditionInfo, body: bytes | None = None) -> None:
        """Write one segment now; raises Fenced or Stale, survives Redis being away."""
        out = self.out
        if self.dropped != self._dropped_seen:
            self._dropped_seen = self.dropped
            self.disc_pending = True
        if body is None:
            body = fmp4.media_segment(self.msn + 1, closed.base_dts, closed.samples)
        disc = self.disc + (1 if self.disc_pending else 0)
        entry = SegmentEntry(
            msn=self.msn,
            duration=round(closed.duration, 6),
            epoch=out.epoch,
            start_us=closed.start.t_us,
            end_us=closed.end.t_us,
            pdt=round(closed.start.wall, 3),
            disc=self.disc_pending,
            parts=[[round(p.ticks / self.timescale, 6), p.independent] for p in closed.parts],
        )
        assert self.init is not None, "the init segment precedes the first segment"
        # The init goes with every segment, not only the first: it is small, and a Redis that
        # restarted empty gets it back with the next segment instead of never.
        batch = self._batch()
        batch.set(self.k_init, self.init, out.ttl_ms)
        state: dict[str, str | int | float] = {
            "msn": self.msn,
            "disc": disc,
            "epoch": out.epoch,
            "end_us": closed.end.t_us,
            "session": out.session,
        }
        (
            batch.set(keys.segment(out.stream, self.name, self.msn), body, out.ttl_ms)
            .rpush(self.k_index, entry.to_json())
            .ltrim(self.k_index, -out.keep, -1)
            .delete(self.k_parts)  # its parts are listed in its entry now
            .hset(self.k_state, state)
            # The rendition list must outlive the newest segment that needs it.
            .pexpire(keys.renditions(out.stream), out.ttl_ms)
            .publish(keys.events(out.stream, self.name), str(self.msn))
        )
        try:
            out.run(batch)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # Keep encoding: the segment is lost, and the next one that lands marks the hole.
            out.log.warning("%s: segment %d not written: %s", self.name, self.msn, exc)
            self.disc_pending = True
            return
        self.msn += 1
        self.disc = disc
        self.disc_pending = False
        self.init_written = True
        self._gaps, self._open_parts, self._last = [], [], entry
        out.catalog.ready(info)
