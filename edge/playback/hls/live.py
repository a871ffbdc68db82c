"""Each watched rendition read from Redis once per change, and rendered once per read.

Thousands of viewers ask for the same media playlist at the same moment (and one new part wakes
every held request at once). They share one read: a snapshot is kept per rendition with the
generation of its events channel when the read began, and a request takes the snapshot if no
message arrived on the channel since (the transcoder announces every part and segment), or
joins the read already under way. The rendered text is kept on the snapshot, one per variant
(full or delta update). While the pub/sub connection is down nothing announced can be trusted,
so snapshots then live only `UNWATCHED_TTL`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import redis.asyncio

from cluster.hot import keys
from edge.playback.hls.events import Events
from edge.playback.hls.playlist import LowLatency, Report, media
from edge.playback.hls.view import RenditionView, positions, read
from edge.playback.hls.wire import Reply

UNWATCHED_TTL = 0.1  # seconds; the playlists say max-age=1 anyway
MAX_SNAPSHOTS = 10_000


@dataclass
class Snapshot:
    view: RenditionView
    reports: list[Report]
    rendered: dict[bool, str] = field(default_factory=dict)  # skip? -> playlist text
    replies: dict[tuple[bool, bool], Reply] = field(default_factory=dict)  # (blocked, skip)

    def playlist(self, rendition: str, skip: bool) -> str:
        """The media playlist text, rendered once per snapshot and variant."""
        text = self.rendered.get(skip)
        if text is None:
            view, info = self.view, self.view.info(rendition)
            ll = None
            if info is not None and info.part_target > 0:
                ll = LowLatency(info.part_target, view.writer_epoch, view.open_parts, self.reports)
            text = media(view.entries, view.disc, ll, skip=skip and ll is not None)
            self.rendered[skip] = text
        return text


@dataclass
class _Entry:
    generation: tuple[int, int] | None
    started: float
    future: asyncio.Future[Snapshot]


class LiveRenditions:
    def __init__(self, client: redis.asyncio.Redis, window: int, events: Events) -> None:
        self._client = client
        self._window = window
        self._events = events
        self._entries: dict[tuple[str, str], _Entry] = {}
        self.reads = 0

    async def snapshot(
        self, stream: str, rendition: str, after: tuple[int, int] | None = None
    ) -> Snapshot:
        """The rendition as of now, or at least as of generation `after` of its channel."""
        channel = keys.events(stream, rendition)
        if not self._events.following(channel) and after is None:
            # Follow (subscribe, keep a snapshot) only what exists: a request for any made-up
            # name must not cost a subscription and a cache entry.
            snap = await self._read(stream, rendition)
            if snap.view.entries or snap.view.open_parts:
                await self._events.watch(channel)
            return snap
        generation = await self._events.watch(channel)
        key = (stream, rendition)
        entry = self._entries.get(key)
        if entry is not None and self._fresh(entry, generation, after):
            return await asyncio.shield(entry.future)
        # Its own task: a request that goes away must not take the read from those joining it.
        task = asyncio.ensure_future(self._read(stream, rendition))
        entry = _Entry(generation, time.monotonic(), task)
        if len(self._entries) >= MAX_SNAPSHOTS:
            self._entries.clear()
        self._entries[key] = entry
        try:
            snap = await asyncio.shield(task)
        except Exception:
            if self._entries.get(key) is entry:
                del self._entries[key]
            raise
        if not (snap.view.entries or snap.view.open_parts) and self._entries.get(key) is entry:
            del self._entries[key]  # nothing to keep for a rendition that does not exist
        return snap

    def peek(self, stream: str, rendition: str) -> Snapshot | None:
        """The snapshot `snapshot()` would answer at once, without waiting; None when it would
        have to read (or join a read), or the channel is not followed or the connection is down
        (the TTL rule is then left to `snapshot`)."""
        entry = self._entries.get((stream, rendition))
        if entry is None or entry.generation is None or not entry.future.done():
            return None
        if entry.generation != self._events.current(keys.events(stream, rendition)):
            return None
        if entry.future.cancelled() or entry.future.exception() is not None:
            return None
        return entry.future.result()

    @staticmethod
    def _fresh(entry: _Entry, now: tuple[int, int] | None, after: tuple[int, int] | None) -> bool:
        if entry.generation is None or now is None:
            return time.monotonic() - entry.started < UNWATCHED_TTL and after is None
        if after is not None and entry.generation < after:
            return False
        return entry.generation == now

    async def _read(self, stream: str, rendition: str) -> Snapshot:
        self.reads += 1
        view = await read(self._client, stream, rendition, self._window)
        others = [r.name for r in view.renditions if r.name != rendition]
        reports = [
            Report(name, last + 1, parts - 1) if parts else Report(name, last, -1)
            for name, (last, parts) in (await positions(self._client, stream, others)).items()
        ]
        return Snapshot(view, reports)
