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
from typing import NamedTuple

from aiohttp.http import SERVER_SOFTWARE

# aiohttp refuses a request line or a header line over 8190 bytes; a head that long never
# comes from a player, so past this size the bytes go to aiohttp to be refused there.
MAX_HEAD = 8190
MAX_TARGET = 2048

_REQUEST_LINE = re.compile(
    rb"(GET|HEAD) (/[A-Za-z0-9_./-]*)(?:\?([A-Za-z0-9_.=&-]*))? HTTP/1\.1\r\n"
)
# Field lines as RFC 9112 has them: a token, a colon, visible characters and inner blanks. No
# obsolete line folding, no bare CR or LF, no control characters.
_FIELDS = re.compile(
    rb"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[ \t]*(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?[ \t]*\r\n){0,100}"
)
# The fields that change how a request must be read or answered.
_SPECIAL = re.compile(
    rb"^(host|content-length|transfer-encoding|connection|upgrade|expect|te):[ \t]*(.*?)[ \t]*\r?$",
    re.IGNORECASE | re.MULTILINE,
)


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
_PART = re.compile(r"([0-9]+)\.([0-9]+)\.m4s")


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
    line = _REQUEST_LINE.fullmatch(buf, start, line_end)
    if line is None or line_end - start > MAX_TARGET:
        return FOREIGN
    fields = bytes(buf[line_end : end + 2])
    if _FIELDS.fullmatch(fields) is None:
        return FOREIGN
    keep_alive, hosts = True, 0
    for name, value in _SPECIAL.findall(fields):
        name, value = name.lower(), value.lower()
        if name == b"host":
            hosts += 1  # HTTP/1.1 needs exactly one (aiohttp answers 400 otherwise)
        elif name == b"connection":
            options = {v.strip() for v in value.split(b",")}
            if options - {b"keep-alive", b"close"}:
                return FOREIGN  # upgrade or hop-by-hop fields: aiohttp's business
            keep_alive = keep_alive and b"close" not in options
        elif name == b"content-length" and value == b"0":
            continue
        else:
            return FOREIGN  # a body, Expect, Upgrade, TE
    if hosts != 1:
        return FOREIGN
    target = route(line.group(2).decode("ascii"))
    if target is None:
        return FOREIGN
    query = _query(line.group(3))
    if query is None:
        return FOREIGN
    return Request(line.group(1) == b"HEAD", target, query, keep_alive, end + 4)


def route(path: str) -> Target | None:
    """The HLS route `path` names, matched as aiohttp's router does (`{name}` is `[^{}/]+`);
    None for any other path, and for dot segments and empty segments, which aiohttp sees
    otherwise."""
    if "/." in path or "//" in path:
        return None
    seg = path.split("/")
    n = len(seg)
    if n < 4 or seg[1] != "hls":
        return None
    if n == 4:
        return Target(Kind.MULTIVARIANT, seg[2]) if seg[3] == "index.m3u8" else None
    stream, rendition, last = seg[2], seg[3], seg[-1]
    if n == 5:
        if last == "index.m3u8":
            return Target(Kind.MEDIA, stream, rendition)
        if last.endswith(".m4s") and len(last) > 4:
            return Target(Kind.SEGMENT, stream, rendition, msn=last[:-4])
        return None
    if n == 6 and seg[4] == "init" and last.endswith(".mp4") and len(last) > 4:
        return Target(Kind.INIT, stream, rendition, epoch=last[:-4])
    if n == 7 and seg[4] == "part" and seg[5] and (m := _PART.fullmatch(last)):
        return Target(Kind.PART, stream, rendition, seg[5], m.group(1), m.group(2))
    return None


def _query(raw: bytes | None) -> dict[str, str] | None:
    out: dict[str, str] = {}
    if not raw:
        return out
    for pair in raw.decode("ascii").split("&"):
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


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error",
           503: "Service Unavailable"}  # fmt: skip
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
    lines = [f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: {content_type}\r\n"]
    if cache is not None:
        lines.append(f"Cache-Control: {cache}\r\n")
    lines.append(f"Content-Length: {length}\r\n")
    return "".join(lines).encode("ascii")


def tail(keep_alive: bool) -> bytes:
    """The rest of the head: Date, Server, Connection when closing, the blank line."""
    return date_line() + (_SERVER if keep_alive else _SERVER_CLOSE)


_SERVER = f"Server: {SERVER_SOFTWARE}\r\n\r\n".encode()
_SERVER_CLOSE = f"Server: {SERVER_SOFTWARE}\r\nConnection: close\r\n\r\n".encode()
