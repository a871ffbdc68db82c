"""What the transcoder writes to Redis and the edge reads back: segment entries and renditions.

Both are JSON; `to_json`/`from_json` are the only (de)serialisers. Bump V on incompatible change.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Self

from cluster.errors import BadRequest

V = 1


def _load(cls: type[Any], data: bytes | str) -> Any:
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise BadRequest(f"{cls.__name__}: not JSON") from exc
    return _build(cls, raw)


def _build(cls: type[Any], raw: Any) -> Any:
    if not isinstance(raw, dict) or raw.get("v") != V:
        raise BadRequest(f"{cls.__name__}: unsupported payload")
    names = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in raw.items() if k in names})
    except TypeError as exc:
        raise BadRequest(f"{cls.__name__}: {exc}") from exc


@dataclass(frozen=True)
class SegmentEntry:
    """One segment in a rendition's playlist window (`zc:{s}:{r}:index`).

    `disc` marks a discontinuity before this segment (a new writer took over); `epoch` names the
    writer, whose init segment is `zc:{s}:{r}:init:{epoch}`. `start_us`/`end_us` are publisher
    time, so a successor knows where its predecessor stopped. `pdt` is wall-clock seconds of the
    first frame (EXT-X-PROGRAM-DATE-TIME).
    """

    msn: int
    duration: float
    epoch: int
    start_us: int
    end_us: int
    pdt: float
    disc: bool = False
    # LL-HLS: the segment's partial segments, in order, as [duration seconds, independent].
    # Empty for a writer that cuts no parts; the segment's bytes are these parts joined.
    parts: list[list[float | bool]] = field(default_factory=list)
    # A segment whose parts went out but which was never completed (its write was lost): its
    # msn stays spent, so no URI ever names other bytes; players skip it (EXT-X-GAP).
    gap: bool = False

    def part_list(self) -> list[PartEntry]:
        return [
            PartEntry(self.msn, i, float(d), bool(ind), self.epoch)
            for i, (d, ind) in enumerate(self.parts)
        ]

    def to_json(self) -> str:
        return json.dumps({"v": V, **asdict(self)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        entry: Self = _load(cls, data)
        return entry


@dataclass(frozen=True)
class PartEntry:
    """A partial segment of the segment still being written (`zc:{s}:{r}:parts`).

    `independent`: it starts with a keyframe. `epoch` names the writer (and its init segment).
    `disc`: the first part after a new writer took over, before its segment is complete.
    """

    msn: int
    index: int
    duration: float
    independent: bool
    epoch: int
    disc: bool = False

    def to_json(self) -> str:
        return json.dumps({"v": V, **asdict(self)}, separators=(",", ":"))

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        entry: Self = _load(cls, data)
        return entry


@dataclass(frozen=True)
class RenditionInfo:
    """One rendition of a stream (`zc:{s}:renditions` holds a JSON list of these)."""

    name: str
    kind: str  # video | audio
    bandwidth: int  # peak bits/s, for the multivariant playlist
    codecs: str  # RFC 6381, e.g. "avc1.64001f" or "mp4a.40.2"
    width: int = 0
    height: int = 0
    fps: float = 0.0
    part_target: float = 0.0  # LL-HLS part target in seconds; 0: the writer cuts no parts
    window: int = 0  # segments a media playlist lists (longer with a DVR window); 0: the edge's

    def to_dict(self) -> dict[str, Any]:
        return {"v": V, **asdict(self)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        info: Self = _build(cls, raw)
        return info


def renditions_to_json(items: list[RenditionInfo]) -> str:
    return json.dumps([r.to_dict() for r in items], separators=(",", ":"))


def renditions_from_json(data: bytes | str) -> list[RenditionInfo]:
    raw = json.loads(data)
    if not isinstance(raw, list):
        raise BadRequest("renditions: expected a list")
    return [RenditionInfo.from_dict(r) for r in raw]
