"""What each HLS route answers, apart from how it is served: aiohttp's handlers (routes.py) and
the fast path (fast.py) both ask `answer`, so both give the same statuses, bodies and headers.

LL-HLS playlists come from shared snapshots (live.py), media objects from the cache. Blocking
reloads (`_HLS_msn`, `_HLS_part`) and preload-hinted parts are held until Redis announces what
they wait for (events.py), at most three target durations, then answered 503 (playlists) or 404
(parts). Every media object is immutable once written, so it is read from Redis once per edge
and served from memory after that. `answer_now` is the part of it that needs no waiting (a
cached object, a fresh snapshot): the fast path answers those without a task.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping

import redis.asyncio

from cluster.errors import BadRequest, NotFound, Unavailable
from cluster.hot import keys
from cluster.hot.model import renditions_from_json
from cluster.ids import rendition_id, stream_id
from edge.playback.hls import blocking
from edge.playback.hls.cache import BlobCache
from edge.playback.hls.events import Events
from edge.playback.hls.live import LiveRenditions, Snapshot
from edge.playback.hls.playlist import multivariant
from edge.playback.hls.view import RenditionView
from edge.playback.hls.wire import Kind, Reply, Target

HOLD_TARGETS = 3  # RFC 8216bis: a blocked request is answered within three target durations
PLAYLIST = "application/vnd.apple.mpegurl; charset=utf-8"  # as aiohttp labels text= bodies
SEGMENT = "video/iso.segment"
INIT = "video/mp4"
# A plain live playlist changes with every part; a blocked one answers a URL that names the
# state it waited for, so a cache in front may keep it; media objects never change.
PLAYLIST_CACHE = "max-age=1"
BLOCKED_PLAYLIST_CACHE = "max-age=30"
SEGMENT_CACHE = "max-age=300, immutable"


class HlsService:
    def __init__(
        self, client: redis.asyncio.Redis, events: Events, cache: BlobCache, live: LiveRenditions
    ) -> None:
        self.client = client
        self.events = events
        self.cache = cache
        self.live = live

    def answer_now(self, t: Target, query: Mapping[str, str]) -> Reply | None:
        """The answer if it needs no waiting and no Redis; None otherwise (then `answer`)."""
        kind = t.kind
        if kind is Kind.SEGMENT:
            stream, rendition = _ids(t)
            msn = _int(t.msn, "media sequence number")
            data = self.cache.peek(keys.segment(stream, rendition, msn))
            return None if data is None else Reply(data, SEGMENT, SEGMENT_CACHE)
        if kind is Kind.PART:
            stream, rendition = _ids(t)
            key = keys.part(stream, rendition, *_part_numbers(t))
            data = self.cache.peek(key)
            return None if data is None else Reply(data, SEGMENT, SEGMENT_CACHE)
        if kind is Kind.MEDIA:
            stream, rendition = _ids(t)
            want = blocking.parse(query)
            snap = self.live.peek(stream, rendition)
            if snap is None:
                return None
            if want is not None:
                blocking.check(snap.view.position, want)
                if not blocking.ready(snap.view.position, want):
                    return None
            return _media(snap, stream, rendition, want is not None, _skip(query))
        return None

    async def answer(self, t: Target, query: Mapping[str, str]) -> Reply:
        try:
            return await self._answer(t, query)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # Redis away (restarting, unreachable, its pool exhausted) is 503, not a 500 with
            # a traceback per request: players retry, and HLS resumes when Redis is back.
            raise Unavailable(f"hot storage unavailable: {exc}") from None

    async def _answer(self, t: Target, query: Mapping[str, str]) -> Reply:
        kind = t.kind
        if kind is Kind.MULTIVARIANT:
            stream = stream_id(t.stream)
            raw = await self.client.get(keys.renditions(stream))
            if raw is None:
                raise NotFound(f"no HLS output for stream {stream} (not live, or not placed yet)")
            body = multivariant(renditions_from_json(raw)).encode()
            return Reply(body, PLAYLIST, PLAYLIST_CACHE)
        stream, rendition = _ids(t)
        if kind is Kind.MEDIA:
            want = blocking.parse(query)
            if want is None:
                snap = await self.live.snapshot(stream, rendition)
            else:
                snap = await self._held(stream, rendition, want)
            return _media(snap, stream, rendition, want is not None, _skip(query))
        if kind is Kind.PART:
            epoch, msn, index = _part_numbers(t)
            key = keys.part(stream, rendition, epoch, msn, index)
            data = await self.cache.get(key, self._fetch)
            if data is None:
                data = await self._hinted(stream, rendition, epoch, msn, index, key)
            return Reply(data, SEGMENT, SEGMENT_CACHE)
        if kind is Kind.INIT:
            epoch = _int(t.epoch, "epoch")
            data = await self.cache.get(keys.init(stream, rendition, epoch), self._fetch)
            if data is None:
                raise NotFound(f"no init segment {rendition}/{epoch} for {stream}")
            return Reply(data, INIT, SEGMENT_CACHE)
        msn = _int(t.msn, "media sequence number")
        data = await self.cache.get(keys.segment(stream, rendition, msn), self._fetch)
        if data is None:
            raise NotFound(
                f"segment {msn} of {stream}/{rendition} does not exist (expired or not yet written)"
            )
        return Reply(data, SEGMENT, SEGMENT_CACHE)

    async def _held(self, stream: str, rendition: str, want: blocking.Wanted) -> Snapshot:
        """The rendition once it holds what `want` names; 400 if too far ahead, 503 if too slow."""
        events, channel = self.events, keys.events(stream, rendition)
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while True:
            woken = await events.waiter(channel)  # before the read: nothing slips in between
            try:
                snap = await self.live.snapshot(stream, rendition, events.generation(channel))
                view = snap.view
                if not view.entries and not view.open_parts:
                    raise NotFound(f"no segments for {stream}/{rendition} yet")
                blocking.check(view.position, want)
                if blocking.ready(view.position, want):
                    return snap
                if deadline is None:
                    deadline = loop.time() + HOLD_TARGETS * _target(view)
                try:
                    await asyncio.wait_for(woken, max(0.0, deadline - loop.time()))
                except TimeoutError:
                    raise Unavailable(
                        f"{stream}/{rendition} did not reach segment {want.msn}"
                        + ("" if want.part is None else f" part {want.part}")
                        + " in time"
                    ) from None
            finally:
                events.discard(channel, woken)

    async def _hinted(
        self, stream: str, rendition: str, epoch: int, msn: int, index: int, key: str
    ) -> bytes:
        """A part named by a preload hint before it exists: hold until it is written, or 404
        once it cannot be (its segment closed without it, another writer took over, time ran
        out)."""
        events, channel = self.events, keys.events(stream, rendition)
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        missing = NotFound(
            f"part {msn}.{index} of {stream}/{rendition} (writer {epoch}) does not exist"
        )
        while True:
            woken = await events.waiter(channel)
            try:
                data = await self.cache.get(key, self._fetch)
                if data is not None:
                    return data
                snap = await self.live.snapshot(stream, rendition, events.generation(channel))
                view, pos = snap.view, snap.view.position
                if view.writer_epoch != epoch or msn <= pos.last_msn or msn > pos.open_msn + 1:
                    raise missing
                if deadline is None:
                    deadline = loop.time() + HOLD_TARGETS * _target(view)
                try:
                    await asyncio.wait_for(woken, max(0.0, deadline - loop.time()))
                except TimeoutError:
                    raise missing from None
            finally:
                events.discard(channel, woken)

    async def _fetch(self, key: str) -> bytes | None:
        data = await self.client.get(key)
        return data if isinstance(data, bytes) else None


def _media(snap: Snapshot, stream: str, rendition: str, blocked: bool, skip: bool) -> Reply:
    if not snap.view.entries:
        raise NotFound(f"no segments for {stream}/{rendition} yet")
    # One Reply per snapshot and variant, shared by every request: body encoded and head
    # rendered once.
    reply = snap.replies.get((blocked, skip))
    if reply is None:
        cache = BLOCKED_PLAYLIST_CACHE if blocked else PLAYLIST_CACHE
        reply = Reply(snap.playlist(rendition, skip).encode(), PLAYLIST, cache)
        snap.replies[(blocked, skip)] = reply
    return reply


def _ids(t: Target) -> tuple[str, str]:
    return stream_id(t.stream), rendition_id(t.rendition)


def _int(raw: str, what: str) -> int:
    if not raw.isdigit() or len(raw) > 15:
        raise BadRequest(f"bad {what} {raw!r}")
    return int(raw)


def _part_numbers(t: Target) -> tuple[int, int, int]:
    return (
        _int(t.epoch, "epoch"),
        _int(t.msn, "media sequence number"),
        _int(t.part, "part index"),
    )


def _skip(query: Mapping[str, str]) -> bool:
    return query.get("_HLS_skip") in {"YES", "v2"}


def _target(view: RenditionView) -> float:
    durations = [e.duration for e in view.entries] + [p.duration for p in view.open_parts]
    return float(max(1, math.ceil(max(durations, default=1.0))))
