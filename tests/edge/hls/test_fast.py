"""The HLS fast path on a real socket: HLS GETs answered by it byte for byte as aiohttp answers
them, everything else (and the rest of its connection) reaching aiohttp, pipelining, bad and
broken clients. Two servers of the same app run side by side: `edge.http.serve` (the fast
path, as `zoocast edge` serves) and a plain aiohttp TCPSite (the reference)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio
from aiohttp import web

from cluster.hot import keys
from cluster.ops import make_app
from edge.http import serve
from edge.playback.hls import routes as hls
from edge.playback.hls.fast import HlsSite
from tests.conftest import await_for
from tests.edge.hls.test_serving import GOP, STREAM, R, Writer
from zoocast.local.servers import free_port

Servers = tuple[int, int, web.AppRunner]  # fast port, aiohttp port, the fast runner
BASE = f"/hls/{STREAM}/{R}"


def _app(client: redis.asyncio.Redis) -> web.Application:
    app = make_app(client_max_size=64 * 1024)  # as edge/http.py makes it
    app[hls.REDIS] = client
    app[hls.WINDOW] = 6
    hls.add_routes(app)
    return app


@pytest.fixture
async def servers(redis_async: redis.asyncio.Redis) -> AsyncIterator[Servers]:
    fast_port, ref_port = free_port(), free_port()
    fast = await serve(_app(redis_async), "127.0.0.1", fast_port)
    ref = web.AppRunner(_app(redis_async), access_log=None)
    await ref.setup()
    await web.TCPSite(ref, "127.0.0.1", ref_port).start()
    yield fast_port, ref_port, fast
    await fast.cleanup()
    await ref.cleanup()


def _site(runner: web.AppRunner) -> HlsSite:
    (site,) = runner.sites
    assert isinstance(site, HlsSite)
    return site


def _get(target: str, extra: str = "", method: str = "GET") -> bytes:
    return f"{method} {target} HTTP/1.1\r\nHost: edge\r\n{extra}\r\n".encode()


async def _exchange(port: int, data: bytes, answers: int, close: bool = True) -> list[bytes]:
    """Send `data` on one connection and read `answers` responses (heads and bodies)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        return [await _response(reader) for _ in range(answers)]
    finally:
        if close:
            writer.close()


async def _response(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    m = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
    body = b"" if m is None else await reader.readexactly(int(m.group(1)))
    return head + body


def _same(fast: bytes, ref: bytes) -> None:
    date = re.compile(rb"Date: [^\r]*\r\n")
    assert date.sub(b"", fast) == date.sub(b"", ref)


def _live(redis_sync: redis.Redis) -> Writer:
    w = Writer(redis_sync)
    w.until(lambda: w.frame > 2 * GOP + 4)  # two segments, the third with one part
    return w


async def test_hls_gets_are_answered_as_aiohttp_answers_them(
    servers: Servers, redis_sync: redis.Redis
) -> None:
    fast, ref, runner = servers
    _live(redis_sync)
    requests = [
        _get(f"{BASE}/index.m3u8"),
        _get(f"{BASE}/index.m3u8?_HLS_skip=YES"),
        _get(f"{BASE}/index.m3u8?_HLS_msn=1&_HLS_part=0"),  # already there: answered at once
        _get(f"{BASE}/index.m3u8?_HLS_msn=9"),  # too far ahead: 400
        _get(f"{BASE}/index.m3u8?_HLS_part=1"),  # 400
        _get(f"{BASE}/index.m3u8?_HLS_msn=x"),  # 400
        _get(f"/hls/{STREAM}/index.m3u8"),
        _get(f"{BASE}/0.m4s"),
        _get(f"{BASE}/1.m4s"),
        _get(f"{BASE}/99.m4s"),  # 404
        _get(f"{BASE}/x.m4s"),  # 400
        _get(f"{BASE}/part/1/1.2.m4s"),
        _get(f"{BASE}/part/x/1.2.m4s"),  # 400
        _get(f"{BASE}/init/1.mp4"),
        _get(f"{BASE}/init/7.mp4"),  # 404
        _get(f"/hls/bad.id/{R}/index.m3u8"),  # 400
        _get(f"/hls/{STREAM}/BAD/index.m3u8"),  # 400
        _get(f"/hls/nobody/{R}/index.m3u8"),  # 404
    ]
    for req in requests:
        # Twice each: the first fills the caches, the second is served from them.
        for _ in range(2):
            (got,) = await _exchange(fast, req, 1)
            (want,) = await _exchange(ref, req, 1)
            _same(got, want)
    # HEAD: the same head, no body (each on its own connection: nothing else follows).
    for target in (f"{BASE}/0.m4s", f"{BASE}/index.m3u8", f"{BASE}/99.m4s"):
        req = _get(target, method="HEAD")
        got = await _raw(fast, req)
        want = await _raw(ref, req)
        _same(got, want)
        assert got.endswith(b"\r\n\r\n")
    # All of them were answered on the fast path, none by aiohttp.
    assert _site(runner).served == 2 * len(requests) + 3
    assert _site(runner).connections == 0  # closed by now


async def _raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.close()
    return head


async def test_pipelined_requests_keep_their_order_across_the_hand_over(
    servers: Servers, redis_sync: redis.Redis
) -> None:
    fast, ref, _ = servers
    _live(redis_sync)
    batch = (
        _get(f"{BASE}/0.m4s")
        + _get(f"{BASE}/index.m3u8")
        + _get(f"/hls/{STREAM}/index.m3u8")  # read from Redis: a task, later ones wait
        + _get(f"{BASE}/99.m4s")
        + _get("/healthz")  # not ours: aiohttp takes the connection from here on
        + _get(f"{BASE}/1.m4s")
        + _get("/api/nothing")
    )
    got = await _exchange(fast, batch, 7)
    want = await _exchange(ref, batch, 7)
    for a, b in zip(got, want, strict=True):
        _same(a, b)
    assert [a.split(b" ", 2)[1] for a in got] == [
        b"200",
        b"200",
        b"200",
        b"404",
        b"200",
        b"200",
        b"404",
    ]


async def test_a_request_split_across_reads_and_a_close(
    servers: Servers, redis_sync: redis.Redis
) -> None:
    fast, _, _ = servers
    _live(redis_sync)
    reader, writer = await asyncio.open_connection("127.0.0.1", fast)
    data = _get(f"{BASE}/0.m4s", "Connection: close\r\n")
    for i in range(0, len(data), 7):
        writer.write(data[i : i + 7])
        await writer.drain()
        await asyncio.sleep(0.01)
    answer = await _response(reader)
    assert answer.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in answer
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed after it
    writer.close()


async def test_bad_requests_get_aiohttps_answers(servers: Servers) -> None:
    fast, ref, _ = servers
    for data in (
        b"GARBAGE\r\n\r\n",
        b"GET /hls/s/r/1.m4s HTTP/1.1\r\n\r\n",  # no Host
        _get(f"{BASE}/1.m4s", "X: " + "a" * 9000 + "\r\n"),  # oversized field
        _get(f"{BASE}/1.m4s", "Content-Length: 3\r\n")[:-2] + b"\r\nabc",  # GET with a body
        _get(f"{BASE}/0.m4s", method="POST"),  # 405
        _get(f"/hls/{STREAM}%2F/{R}/0.m4s"),
    ):
        got = await _raw(fast, data)
        want = await _raw(ref, data)
        _same(got, want)
        assert got.split(b" ")[1] in {b"400", b"404", b"405", b"431"}, got


async def test_a_blocked_reload_on_the_fast_path_and_a_broken_client_beside_it(
    servers: Servers, redis_sync: redis.Redis
) -> None:
    fast, _, runner = servers
    w = Writer(redis_sync)
    w.until(lambda: w.frame > GOP + 1)  # segment 0 done; segment 1 has no part yet
    await _exchange(fast, _get(f"{BASE}/index.m3u8"), 1)  # the rendition is followed from now
    events = runner.app[hls.EVENTS]
    # A held request whose client goes away: its waiter is dropped, nothing else minds.
    _, writer = await asyncio.open_connection("127.0.0.1", fast)
    writer.write(_get(f"{BASE}/index.m3u8?_HLS_msn=1&_HLS_part=0"))
    await await_for(lambda: events.waiting == 1, "the first request held")
    writer.close()
    await await_for(lambda: events.waiting == 0, "the gone client's waiter dropped")
    # A client sending garbage after a held request on the same connection: the held
    # request is still answered first, then aiohttp refuses the rest.
    held = asyncio.create_task(
        _exchange(fast, _get(f"{BASE}/index.m3u8?_HLS_msn=1&_HLS_part=0") + b"\x00junk\r\n\r\n", 2)
    )
    await await_for(lambda: events.waiting == 1, "the request held")
    w.until(lambda: redis_sync.llen(keys.parts(STREAM, R)) == 1)
    answer, refusal = await asyncio.wait_for(held, 10)
    assert answer.startswith(b"HTTP/1.1 200 OK") and b"max-age=30" in answer
    assert b"part/1/1.0.m4s" in answer
    assert refusal.split(b" ")[1] == b"400"


async def test_a_slow_reader_is_paused_not_buffered(
    servers: Servers, redis_sync: redis.Redis
) -> None:
    fast, _, runner = servers
    _live(redis_sync)
    big = b"x" * (4 * 1024 * 1024)
    redis_sync.set(keys.segment(STREAM, R, 0), big)  # 4 MiB, read once into the cache
    n = 40  # 160 MiB of answers asked for at once
    reader, writer = await asyncio.open_connection("127.0.0.1", fast, limit=1024 * 1024)
    writer.write(_get(f"{BASE}/0.m4s") * n)
    site = _site(runner)
    await await_for(
        lambda: any(c.write_paused for c in site._conns), "the edge stops writing to a slow reader"
    )
    (conn,) = (c for c in site._conns if c.write_paused)
    assert conn.transport is not None
    assert conn.transport.get_write_buffer_size() < len(big) + 64 * 1024  # one answer at most
    # Meanwhile another client is served at once.
    (other,) = await _exchange(fast, _get(f"{BASE}/index.m3u8"), 1)
    assert other.startswith(b"HTTP/1.1 200 OK")
    for _ in range(n):
        answer = await _response(reader)
        assert answer.endswith(big[:100]) and len(answer) > len(big)
    writer.close()


async def test_idle_connections_are_closed_and_held_ones_kept(
    redis_async: redis.asyncio.Redis, redis_sync: redis.Redis
) -> None:
    w = Writer(redis_sync)
    w.until(lambda: w.frame > GOP + 1)  # segment 0 done; segment 1 has no part yet
    runner = web.AppRunner(_app(redis_async), access_log=None)
    await runner.setup()
    port = free_port()
    site = HlsSite(runner, "127.0.0.1", port, keepalive=0.3, sweep=0.1)
    await site.start()
    try:
        (first,) = await _exchange(port, _get(f"{BASE}/index.m3u8"), 1)
        assert first.startswith(b"HTTP/1.1 200 OK")
        idle_r, idle_w = await asyncio.open_connection("127.0.0.1", port)
        held_r, held_w = await asyncio.open_connection("127.0.0.1", port)
        held_w.write(_get(f"{BASE}/index.m3u8?_HLS_msn=1&_HLS_part=0"))
        # Held three target durations (3 s) at most: well past the keep-alive limit.
        assert await asyncio.wait_for(idle_r.read(), 10) == b""  # closed by the sweep
        assert site.connections == 1
        w.until(lambda: redis_sync.llen(keys.parts(STREAM, R)) == 1)
        answer = await _response(held_r)
        assert answer.startswith(b"HTTP/1.1 200 OK") and b"part/1/1.0.m4s" in answer
        idle_w.close()
        held_w.close()
    finally:
        await runner.cleanup()
