"""HLS media playlist parsing: playlist text in, segments with their sequence numbers and maps out.

Only what a measuring viewer needs (RFC 8216bis): media sequence, discontinuity sequence,
EXT-X-MAP, EXTINF + URI, EXT-X-DISCONTINUITY, EXT-X-GAP, EXT-X-ENDLIST, and the LL-HLS parts
(EXT-X-PART, with the segment they belong to; those after the last segment belong to the one
being written). Other tags (preload hints, server control, reports) are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin


class PlaylistError(ValueError):
    """The text is not a media playlist this parser understands."""


@dataclass(frozen=True)
class Segment:
    msn: int
    uri: str
    duration: float
    discontinuity: bool  # an EXT-X-DISCONTINUITY tag precedes this segment
    discontinuity_seq: int
    map_uri: str | None  # the EXT-X-MAP in force: the init segment to decode this one with
    gap: bool = False


@dataclass(frozen=True)
class Part:
    msn: int  # the segment it belongs to
    index: int
    uri: str
    duration: float
    independent: bool
    discontinuity_seq: int
    map_uri: str | None


@dataclass(frozen=True)
class MediaPlaylist:
    media_sequence: int
    discontinuity_sequence: int
    target_duration: float
    segments: tuple[Segment, ...]
    ended: bool
    parts: tuple[Part, ...] = ()  # every part listed, in order

    @property
    def last_msn(self) -> int | None:
        return self.segments[-1].msn if self.segments else None


# An attribute value is a quoted string (which may hold commas) or anything up to the next comma.
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def parse_attributes(text: str) -> dict[str, str]:
    """An attribute list (`URI="init.mp4",BYTERANGE="720@0"`) as a dict, quotes removed."""
    return {m.group(1): m.group(2).strip('"') for m in _ATTRIBUTE.finditer(text)}


def parse_media_playlist(text: str, base_url: str = "") -> MediaPlaylist:
    """Parse a media playlist; segment and map URIs are resolved against `base_url` if given."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines or lines[0] != "#EXTM3U":
        raise PlaylistError("not an M3U8 playlist: first line is not #EXTM3U")
    media_sequence = disc_sequence = 0
    target = 0.0
    ended = False
    # Per-segment state, reset by each URI line.
    duration: float | None = None
    discontinuity = gap = False
    disc_count = 0
    map_uri: str | None = None
    segments: list[Segment] = []
    pending: list[tuple[str, float, bool, int, str | None]] = []  # parts before their segment
    parts: list[Part] = []
    for line in lines[1:]:
        tag, _, value = line.partition(":")
        if tag == "#EXT-X-STREAM-INF":
            raise PlaylistError("a multivariant playlist, not a media playlist")
        if tag == "#EXT-X-MEDIA-SEQUENCE":
            media_sequence = _int(tag, value)
        elif tag == "#EXT-X-DISCONTINUITY-SEQUENCE":
            disc_sequence = _int(tag, value)
        elif tag == "#EXT-X-TARGETDURATION":
            target = _float(tag, value)
        elif tag == "#EXT-X-MAP":
            uri = parse_attributes(value).get("URI")
            if uri is None:
                raise PlaylistError("EXT-X-MAP without URI")
            map_uri = urljoin(base_url, uri)
        elif tag == "#EXTINF":
            duration = _float(tag, value.split(",", 1)[0])
        elif tag == "#EXT-X-DISCONTINUITY":
            discontinuity = True
            disc_count += 1
        elif tag == "#EXT-X-GAP":
            gap = True
        elif tag == "#EXT-X-ENDLIST":
            ended = True
        elif tag == "#EXT-X-PART":
            attrs = parse_attributes(value)
            if "URI" not in attrs or "DURATION" not in attrs:
                raise PlaylistError("EXT-X-PART needs URI and DURATION")
            independent = attrs.get("INDEPENDENT") == "YES"
            uri = urljoin(base_url, attrs["URI"])
            duration_s = _float(tag, attrs["DURATION"])
            pending.append((uri, duration_s, independent, disc_sequence + disc_count, map_uri))
        elif not line.startswith("#"):
            if duration is None:
                raise PlaylistError(f"segment {line!r} has no EXTINF")
            msn = media_sequence + len(segments)
            disc_seq = disc_sequence + disc_count
            seg = Segment(
                msn, urljoin(base_url, line), duration, discontinuity, disc_seq, map_uri, gap
            )
            segments.append(seg)
            parts += [Part(msn, i, *p) for i, p in enumerate(pending)]
            pending = []
            duration, discontinuity, gap = None, False, False
        # Anything else (EXT-X-PART, EXT-X-PRELOAD-HINT, EXT-X-PROGRAM-DATE-TIME, ...) is skipped.
    open_msn = media_sequence + len(segments)
    parts += [Part(open_msn, i, *p) for i, p in enumerate(pending)]
    return MediaPlaylist(
        media_sequence, disc_sequence, target, tuple(segments), ended, tuple(parts)
    )


def _int(tag: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise PlaylistError(f"{tag}: not an integer: {value!r}") from None


def _float(tag: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise PlaylistError(f"{tag}: not a number: {value!r}") from None
