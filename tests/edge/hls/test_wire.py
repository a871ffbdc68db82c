"""The fast path's HTTP/1.1 parser and router (pure): what it answers itself, what it leaves to
aiohttp, and the bytes of its answers."""

from __future__ import annotations

import pytest

from edge.playback.hls import wire
from edge.playback.hls.wire import FOREIGN, NEED_MORE, Kind, Request, Target, parse, route

HOST = b"Host: edge\r\n"


def _get(target: bytes, fields: bytes = HOST, method: bytes = b"GET") -> bytes:
    return method + b" " + target + b" HTTP/1.1\r\n" + fields + b"\r\n"


def _ours(data: bytes, start: int = 0) -> Request:
    got = parse(data, start)
    assert isinstance(got, Request), got
    return got


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/hls/s/index.m3u8", Target(Kind.MULTIVARIANT, "s")),
        ("/hls/s/720p/index.m3u8", Target(Kind.MEDIA, "s", "720p")),
        ("/hls/s/720p/12.m4s", Target(Kind.SEGMENT, "s", "720p", msn="12")),
        ("/hls/s/720p/x.m4s", Target(Kind.SEGMENT, "s", "720p", msn="x")),  # the service: 400
        ("/hls/s/720p/init/3.mp4", Target(Kind.INIT, "s", "720p", epoch="3")),
        ("/hls/s/720p/part/3/12.1.m4s", Target(Kind.PART, "s", "720p", "3", "12", "1")),
        ("/hls/s/part/1.m4s", Target(Kind.SEGMENT, "s", "part", msn="1")),  # as aiohttp routes
        ("/hls/s-_9/a_1/index.m3u8", Target(Kind.MEDIA, "s-_9", "a_1")),
    ],
)
def test_routes_as_aiohttp_matches_them(path: str, target: Target) -> None:
    assert route(path) == target


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/hls",
        "/hls/s",
        "/api/streams",
        "/healthz",
        "/hlsx/s/index.m3u8",
        "/hls/s/720p/.m4s",  # no msn: aiohttp's 404
        "/hls/s/720p/index.m3u",
        "/hls/s/720p/init/.mp4",
        "/hls/s/720p/part/3/12.m4s",
        "/hls/s/720p/part/3/a.1.m4s",
        "/hls/s/720p/part//1.1.m4s",
        "/hls/s/720p/extra/deep/er/1.m4s",
        "/hls/../hls/s/index.m3u8",  # dot segments and empty ones: aiohttp's reading
        "/hls//s/index.m3u8",
    ],
)
def test_other_paths_are_not_routed(path: str) -> None:
    assert route(path) is None


def test_a_plain_get_is_ours_and_ends_after_its_head() -> None:
    data = _get(b"/hls/s/720p/index.m3u8?_HLS_msn=5&_HLS_part=1&_HLS_skip=YES")
    req = _ours(data + b"GET /next")
    assert req.end == len(data) and not req.head and req.keep_alive
    assert req.target == Target(Kind.MEDIA, "s", "720p")
    assert req.query == {"_HLS_msn": "5", "_HLS_part": "1", "_HLS_skip": "YES"}


def test_query_first_value_wins_and_bare_keys_are_empty() -> None:
    req = _ours(_get(b"/hls/s/r/index.m3u8?_HLS_msn=1&_HLS_msn=2&flag&&x="))
    assert req.query == {"_HLS_msn": "1", "flag": "", "x": ""}


def test_head_and_connection_close() -> None:
    req = _ours(_get(b"/hls/s/r/1.m4s", HOST + b"Connection: close\r\n", b"HEAD"))
    assert req.head and not req.keep_alive
    req = _ours(_get(b"/hls/s/r/1.m4s", b"connection: Keep-Alive\r\n" + HOST))
    assert req.keep_alive
    assert _ours(_get(b"/hls/s/r/1.m4s", HOST + b"Content-Length: 0\r\n")).keep_alive


def test_pipelined_requests_parse_one_after_the_other() -> None:
    a, b = _get(b"/hls/s/r/1.m4s"), _get(b"/hls/s/r/2.m4s", HOST + b"Accept: */*\r\n")
    first = _ours(a + b)
    second = _ours(a + b, first.end)
    assert second.target.msn == "2" and second.end == len(a + b)


@pytest.mark.parametrize(
    "partial",
    [b"", b"G", b"GET /hls/s/r/1.m4s HTTP/1.1\r\n", b"HEAD /hls", _get(b"/hls/s/r/1.m4s")[:-1]],
)
def test_an_incomplete_head_needs_more(partial: bytes) -> None:
    assert parse(partial) is NEED_MORE


@pytest.mark.parametrize(
    "data",
    [
        _get(b"/healthz"),
        _get(b"/hls/s/r/1.m4s", method=b"POST"),
        _get(b"/hls/s/r/1.m4s", method=b"DELETE"),
        b"GET /hls/s/r/1.m4s HTTP/1.0\r\n\r\n",
        _get(b"/hls/s/r/1.m4s", b""),  # no Host: aiohttp's 400
        _get(b"/hls/s/r/1.m4s", HOST + HOST),
        _get(b"/hls/s/r/1.m4s", HOST + b"Content-Length: 3\r\n"),  # a body
        _get(b"/hls/s/r/1.m4s", HOST + b"Transfer-Encoding: chunked\r\n"),
        _get(b"/hls/s/r/1.m4s", HOST + b"Expect: 100-continue\r\n"),
        _get(b"/hls/s/r/1.m4s", HOST + b"Connection: Upgrade\r\nUpgrade: websocket\r\n"),
        _get(b"/hls/s%2Fx/r/1.m4s"),  # escapes: aiohttp decodes them
        _get(b"/hls/s/r/index.m3u8?_HLS_msn=%31"),
        _get(b"/hls/s/r/index.m3u8?a+b=1"),
        _get(b"/hls/s/r/index.m3u8?=1"),
        _get(b"http://edge/hls/s/r/1.m4s"),  # absolute form
        _get(b"/hls/s/r/1.m4s", HOST + b"Bad Field\r\n"),
        _get(b"/hls/s/r/1.m4s", HOST + b" folded\r\n"),
        _get(b"/hls/s/r/1.m4s", HOST + b"X: a\x01b\r\n"),
        _get(b"/hls/s/r/1.m4s", HOST + b"X: y\rz\r\n"),
        _get(b"/hls/s/r/1.m4s", HOST + b"X: y\r\n" * 101),  # too many fields
        b"GET /hls/s/r/1.m4s HTTP/1.1\nHost: edge\n\n",  # bare LF: aiohttp's call
        b"GET /hls/s/r/1.m4s  HTTP/1.1\r\n" + HOST + b"\r\n",
        b"GARBAGE\r\n\r\n",
        b"\x16\x03\x01\x02\x00",  # a TLS hello on the plain port
        b"PRI * HTTP/2.0\r\n",
        _get(b"/hls/s/r/1.m4s", HOST + b"X: " + b"a" * 9000 + b"\r\n"),  # oversized head
        b"GET /hls/s/r/1.m4s HTTP/1.1\r\nX: " + b"a" * 9000,  # ... before it is complete
        _get(b"/hls/s/r/" + b"1" * 3000 + b".m4s"),  # a long target
    ],
)
def test_everything_else_is_aiohttps(data: bytes) -> None:
    assert parse(data) is FOREIGN


def test_answer_heads() -> None:
    head = wire.head(200, "video/iso.segment", 7, "max-age=300, immutable")
    assert head == (
        b"HTTP/1.1 200 OK\r\nContent-Type: video/iso.segment\r\n"
        b"Cache-Control: max-age=300, immutable\r\nContent-Length: 7\r\n"
    )
    assert b"Cache-Control" not in wire.head(404, "application/json", 2, None)
    keep, close = wire.tail(True), wire.tail(False)
    assert keep.startswith(b"Date: ") and b" GMT\r\nServer: Python/" in keep
    assert keep.endswith(b"\r\n\r\n") and b"Connection" not in keep
    assert close.endswith(b"Connection: close\r\n\r\n")


@pytest.mark.parametrize(
    "name",
    [b"Content-Length", b"Content-Type", b"User-Agent", b"Max-Forwards", b"ETag", b"Server"],
)
def test_a_field_aiohttp_refuses_twice_is_left_to_it(name: bytes) -> None:
    once = HOST + name + b": 0\r\n"
    assert isinstance(parse(_get(b"/hls/s/index.m3u8", once)), Request)
    assert parse(_get(b"/hls/s/index.m3u8", once + name + b": 0\r\n")) is FOREIGN


@pytest.mark.timeout(10)  # a guard against a hang, not a figure: each parse is linear now
def test_long_runs_of_blanks_in_fields_parse_in_linear_time() -> None:
    # The old field patterns backtracked quadratically here (about 0.4 s a parse): 50 of these
    # pipelined stalled the edge's loop for everyone.
    blanks = b" " * 8000
    spaced = HOST + b"Connection: keep-alive" + blanks + b",keep-alive\r\n"
    for _ in range(50):
        got = _ours(_get(b"/hls/s/index.m3u8", spaced))
        assert got.keep_alive
        assert parse(_get(b"/hls/s/index.m3u8", HOST + b"X:" + blanks + b"\x01\r\n")) is FOREIGN
    trimmed = _ours(_get(b"/hls/s/index.m3u8", HOST + b"Connection:  close \t\r\n"))
    assert not trimmed.keep_alive
