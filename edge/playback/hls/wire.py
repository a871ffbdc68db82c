"""HTTP/1.1 for the HLS fast path (pure): which requests it may answer itself, and the bytes of
its answers.

`parse(buf, start)` looks at one request head and decides: `NEED_MORE` (incomplete, keep
reading), `FOREIGN` (not for us: hand the connection, these bytes included, to aiohttp), or a
`Request` with a `Target` (one of the HLS routes of routes.py). Only plain, well-formed
`GET`/`HEAD` over HTTP/1.1 without a body, with a path of id characters and a query of plain
`key=value` pairs is ours; everything else (other methods and routes, HTTP/1.0, bodies,
`Expect`, `Upgrade`, percent-escapes, dot segments, malformed or oversized heads) goes to
aiohttp, whose answers (400, 404, 405, 413, 431, ...) then stay exactly what they were. So the
fast path never needs an error of its own for a broken request.
"""

from __future__ import annotations

import functools
import re
import time
from email.utils import formatdate
from enum import Enum
from http import HTTPStatus
from typing import NamedTuple

from aiohttp.http import SERVER_SOFTWARE

# aiohttp refuses a request line or a header line over 8190 bytes; a head that long never
# comes from a player, so past this size the bytes go to aiohttp to be refused there.
MAX_HEAD = 8190
MAX_TARGET = 2048

# One path segment as aiohttp's `{name}` matches it (`[^{}/]+`), narrowed to what ids, numbers
# and file names use; no leading dot, so no dot segments (aiohttp reads those its own way).
_SEG = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"
# The HLS routes of routes.py, in one pattern: which alternative matched names the route.
_ROUTE = (
    rf"/hls/(?P<stream>{_SEG})/(?:index\.m3u8(?P<mv>)|(?P<rendition>{_SEG})/(?:"
    rf"index\.m3u8(?P<media>)"
    rf"|init/(?P<epoch>{_SEG})\.mp4"
    rf"|part/(?P<pepoch>{_SEG})/(?P<pmsn>[0-9]+)\.(?P<part>[0-9]+)\.m4s"
    rf"|(?P<msn>{_SEG})\.m4s))"
)
_ROUTE_RE = re.compile(_ROUTE)
# Matched on the line decoded as latin-1 (one char per byte, so nothing outside the ASCII
# classes below can match).
_REQUEST_LINE = re.compile(
    r"(GET|HEAD) " + _ROUTE + r"(?:\?(?P<query>[A-Za-z0-9_.=&-]*))? HTTP/1\.1\r\n"
)
# Field lines as RFC 9112 has them: a token, a colon, visible characters and inner blanks. No
# obsolete line folding, no bare CR or LF, no control characters.
# A value of visible characters and blanks in any order is exactly that; one character class,
# so matching is linear (nested blank/visible repeats backtracked quadratically on long blanks).
_FIELDS = re.compile(rb"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\x21-\x7e\x80-\xff \t]*\r\n){0,100}")
# The fields that change how a request must be read or answered (in lowercased fields, each
# line preceded by CRLF).
_SPECIAL_NAME = re.compile(
    rb"\r\n(?:content-length|transfer-encoding|connection|upgrade|expect|te):"
)
_SPECIAL = re.compile(
    rb"\r\n(content-length|transfer-encoding|connection|upgrade|expect|te):([^\r]*)"
)
# Fields aiohttp refuses to see twice (400): such a request is left to it.
_SINGLE = tuple(
    b"\r\n" + name + b":"
    for name in (b"content-length", b"content-type", b"content-location", b"content-range",
                 b"etag", b"max-forwards", b"server", b"transfer-encoding", b"user-agent")
)  # fmt: skip


class Kind(Enum):
    MULTIVARIANT = "multivariant"
    MEDIA = "media"
    INIT = "init"
    PART = "part"
    SEGMENT = "segment"


class Target(NamedTuple):  # tuples: cheaper to make than frozen dataclasses, per request
    """One of the HLS routes, its fields as raw text: the service validates them, as it does
    for aiohttp's `match_info`, so both paths answer bad ids with the same 400."""

    kind: Kind
    stream: str
    rendition: str = ""
    epoch: str = ""
    msn: str = ""
    part: str = ""


class Request(NamedTuple):
    head: bool  # HEAD: the same answer without its body
    target: Target
    query: dict[str, str]  # first value of each key wins, as `dict(request.query)` in aiohttp
    keep_alive: bool
    end: int  # offset of the byte after the head


class Verdict(Enum):
    NEED_MORE = "need more"
    FOREIGN = "foreign"


NEED_MORE, FOREIGN = Verdict.NEED_MORE, Verdict.FOREIGN


def parse(buf: bytes | bytearray, start: int = 0) -> Request | Verdict:
    """The request whose head starts at `start`, or what to do with the bytes instead."""
    end = buf.find(b"\r\n\r\n", start, start + MAX_HEAD + 4)
    if end < 0:
        # A head that can never be complete (too long, or lines ended by a bare LF, which
        # aiohttp may take) is aiohttp's to judge; so is one that cannot be ours from its
        # first bytes: no need to wait for the rest of it.
        chunk = bytes(buf[start:])
        if len(chunk) > MAX_HEAD or chunk.count(b"\n") != chunk.count(b"\r\n"):
            return FOREIGN
        first = chunk[:5]
        if first and not (b"GET /".startswith(first) or b"HEAD ".startswith(first)):
            return FOREIGN
        return NEED_MORE
    line_end = buf.find(b"\r\n", start) + 2
    if line_end - start > MAX_TARGET:
        return FOREIGN
    line = _REQUEST_LINE.fullmatch(buf[start:line_end].decode("latin-1"))
    if line is None:
        return FOREIGN  # not an HLS route, or not a plain GET/HEAD over HTTP/1.1
    fields = bytes(buf[line_end : end + 2])
    if _FIELDS.fullmatch(fields) is None:
        return FOREIGN
    low = b"\r\n" + fields.lower()
    if low.count(b"\r\nhost:") != 1:
        return FOREIGN  # HTTP/1.1 needs exactly one Host (aiohttp answers 400 otherwise)
    if any(low.count(name) > 1 for name in _SINGLE):
        return FOREIGN
    keep_alive = True
    if _SPECIAL_NAME.search(low) is not None:
        for name, raw in _SPECIAL.findall(low):
            value = raw.strip(b" \t")
            if name == b"connection":
                options = {v.strip() for v in value.split(b",")}
                if options - {b"keep-alive", b"close"}:
                    return FOREIGN  # upgrade or hop-by-hop fields: aiohttp's business
                keep_alive = keep_alive and b"close" not in options
            elif name != b"content-length" or value != b"0":
                return FOREIGN  # a body, Expect, Upgrade, TE
    query = _query(line.group("query"))
    if query is None:
        return FOREIGN
    return Request(line.group(1) == "HEAD", _target(line), query, keep_alive, end + 4)


def route(path: str) -> Target | None:
    """The HLS route `path` names, matched as aiohttp's router matches it; None for any other
    path (and for dot segments and empty ones, which aiohttp reads its own way)."""
    m = _ROUTE_RE.fullmatch(path)
    return None if m is None else _target(m)


def _target(m: re.Match[str]) -> Target:
    stream, mv, rendition, media, epoch, pepoch, pmsn, part, msn = m.group(
        "stream", "mv", "rendition", "media", "epoch", "pepoch", "pmsn", "part", "msn"
    )
    if mv is not None:
        return Target(Kind.MULTIVARIANT, stream)
    if media is not None:
        return Target(Kind.MEDIA, stream, rendition)
    if epoch is not None:
        return Target(Kind.INIT, stream, rendition, epoch=epoch)
    if part is not None:
        return Target(Kind.PART, stream, rendition, pepoch, pmsn, part)
    return Target(Kind.SEGMENT, stream, rendition, msn=msn)


def _query(raw: str | None) -> dict[str, str] | None:
    out: dict[str, str] = {}
    if not raw:
        return out
    for pair in raw.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        if not key:
            return None  # yarl's reading of `=x` is its own; let aiohttp have it
        out.setdefault(key, value)
    return out


# --- answers -------------------------------------------------------------------------------


class Reply(NamedTuple):
    """A 200 answer: its body and the two fields that differ between routes."""

    body: bytes
    content_type: str
    cache: str


_date = (0, b"")


def date_line() -> bytes:
    """`Date:` as aiohttp sends it, formatted once a second."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, f"Date: {formatdate(now, usegmt=True)}\r\n".encode("ascii"))
    return _date[1]


@functools.lru_cache(maxsize=4096)  # a few content types and caches; sizes repeat per object
def head(status: int, content_type: str, length: int, cache: str | None) -> bytes:
    """Status line and the fields that depend on the answer only (not Date, not Connection)."""
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: {content_type}\r\n"]
    if cache is not None:
        lines.append(f"Cache-Control: {cache}\r\n")
    lines.append(f"Content-Length: {length}\r\n")
    return "".join(lines).encode("ascii")


def tail(keep_alive: bool) -> bytes:
    """The rest of the head: Date, Server, Connection when closing, the blank line."""
    return date_line() + (_SERVER if keep_alive else _SERVER_CLOSE)


_SERVER = f"Server: {SERVER_SOFTWARE}\r\n\r\n".encode()
_SERVER_CLOSE = f"Server: {SERVER_SOFTWARE}\r\nConnection: close\r\n\r\n".encode()
