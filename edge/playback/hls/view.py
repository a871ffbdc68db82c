"""What a media playlist is rendered from, read from Redis in one round trip per rendition."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import redis.asyncio

from cluster.errors import BadRequest
from cluster.hot import keys
from cluster.hot.model import PartEntry, RenditionInfo, SegmentEntry, renditions_from_json
from edge.playback.hls.blocking import Position
from edge.playback.hls.playlist import next_part


@dataclass(frozen=True)
class RenditionView:
    entries: list[SegmentEntry]  # the playlist window, oldest first
    disc: int
    open_parts: list[PartEntry]  # parts of the segment being written
    writer_epoch: int  # the stream's current writer (it writes the next part)
    renditions: list[RenditionInfo]

    @property
    def position(self) -> Position:
        last = self.entries[-1].msn if self.entries else -1
        return Position(last, next_part(self.open_parts))

    def info(self, name: str) -> RenditionInfo | None:
        return next((r for r in self.renditions if r.name == name), None)


async def read(
    client: redis.asyncio.Redis, stream: str, rendition: str, window: int
) -> RenditionView:
    async with client.pipeline(transaction=True) as pipe:
        # The whole index (the writer trims it): a DVR stream lists more than `window`.
        pipe.lrange(keys.index(stream, rendition), 0, -1)
        pipe.hget(keys.state(stream, rendition), "disc")
        pipe.lrange(keys.parts(stream, rendition), 0, -1)
        pipe.get(keys.epoch(stream))
        pipe.get(keys.renditions(stream))
        raw_entries, disc, raw_parts, epoch, raw_renditions = await pipe.execute()
    try:
        renditions = renditions_from_json(raw_renditions) if raw_renditions else []
    except (BadRequest, ValueError):
        renditions = []
    info = next((r for r in renditions if r.name == rendition), None)
    listed = info.window if info is not None and info.window > 0 else window
    entries = [_entry(x) for x in raw_entries[-listed:]]
    last = entries[-1].msn if entries else -1
    # Parts of the open segment only: a list left by a writer that died is for the same msn.
    parts = [p for p in map(PartEntry.from_json, raw_parts) if p.msn == last + 1]
    return RenditionView(entries, int(disc or 0), parts, int(epoch or 0), renditions)


_PARSED: OrderedDict[bytes, SegmentEntry] = OrderedDict()
_PARSED_MAX = 50_000


def _entry(raw: bytes) -> SegmentEntry:
    """An index entry, parsed once: entries never change, and a DVR window holds thousands of
    them, read again at every part."""
    entry = _PARSED.get(raw)
    if entry is None:
        entry = _PARSED[raw] = SegmentEntry.from_json(raw)
        if len(_PARSED) > _PARSED_MAX:
            _PARSED.popitem(last=False)
    return entry


async def positions(
    client: redis.asyncio.Redis, stream: str, names: list[str]
) -> dict[str, tuple[int, int]]:
    """(last msn, parts of the next one) of other renditions, for EXT-X-RENDITION-REPORT."""
    if not names:
        return {}
    async with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hget(keys.state(stream, name), "msn")
            pipe.lrange(keys.parts(stream, name), 0, -1)
        raw = await pipe.execute()
    out: dict[str, tuple[int, int]] = {}
    for i, name in enumerate(names):
        msn, parts = raw[2 * i], raw[2 * i + 1]
        if msn is None:
            continue
        last = int(msn)
        n = next_part([p for p in map(PartEntry.from_json, parts) if p.msn == last + 1])
        out[name] = (last, n)
    return out
