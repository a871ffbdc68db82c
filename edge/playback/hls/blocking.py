"""Blocking playlist reload (pure): where a rendition stands, and whether a request can be answered.

RFC 8216bis: a request with `_HLS_msn=M` waits until the playlist holds segment M (complete) or a
later one; with `_HLS_part=P` too, until it holds part P of segment M, or anything later. A
request too far ahead (more than two segments past the last one, or more than three parts past
the last part) is answered 400 at once instead of being held.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cluster.errors import BadRequest

MAX_SEGMENTS_AHEAD = 2
MAX_PARTS_AHEAD = 3


@dataclass(frozen=True)
class Position:
    """The last complete segment (-1: none yet) and how many parts of the next one exist."""

    last_msn: int
    parts: int = 0

    @property
    def open_msn(self) -> int:
        return self.last_msn + 1


@dataclass(frozen=True)
class Wanted:
    msn: int
    part: int | None = None


def parse(query: Mapping[str, str]) -> Wanted | None:
    """The blocking directives of a playlist request, validated; None for a plain request."""
    raw_msn, raw_part = query.get("_HLS_msn"), query.get("_HLS_part")
    if raw_msn is None:
        if raw_part is not None:
            raise BadRequest("_HLS_part needs _HLS_msn")
        return None
    msn = _number(raw_msn, "_HLS_msn")
    part = None if raw_part is None else _number(raw_part, "_HLS_part")
    return Wanted(msn, part)


def check(pos: Position, want: Wanted) -> None:
    """Refuse a request the playlist cannot reach soon (400 rather than holding it)."""
    if want.msn > pos.last_msn + MAX_SEGMENTS_AHEAD:
        raise BadRequest(
            f"_HLS_msn={want.msn} is too far ahead: the last segment is {pos.last_msn}"
        )
    if (
        want.part is not None
        and want.msn == pos.open_msn
        and want.part > pos.parts + MAX_PARTS_AHEAD
    ):
        raise BadRequest(
            f"_HLS_part={want.part} is too far ahead: segment {want.msn} has {pos.parts} parts"
        )


def ready(pos: Position, want: Wanted) -> bool:
    if want.msn <= pos.last_msn:
        return True
    if want.part is None or want.msn > pos.open_msn:
        return False
    return want.part < pos.parts


def _number(raw: str, name: str) -> int:
    if not raw.isdigit() or len(raw) > 15:
        raise BadRequest(f"{name} must be a non-negative integer, not {raw!r}")
    return int(raw)
