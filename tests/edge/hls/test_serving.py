"""LL-HLS serving against a real Redis, fed by the transcoder's own writer (Output)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import m3u8
import pytest
import redis
import redis.asyncio
from aiohttp.test_utils import TestClient

from cluster.hot import keys
from cluster.hot.model import RenditionInfo, renditions_to_json
from cluster.ops import make_app
from edge.playback.hls import routes as hls
from tests.conftest import await_for
from transcoder.pipeline.output import Output, Resume, TrackOutput, _PartWrite
from transcoder.pipeline.segments import Mark, Segmenter
from zoocast.local.servers import free_port

Client = TestClient  # type: ignore[type-arg]
LOG = logging.LoggerAdapter(logging.getLogger("test"), {})
STREAM, R = "ll", "240p"
FPS, GOP = 10, 10  # 1 s segments of 10 frames, parts of 0.3 s (3 frames)


class Writer:
    """Drives a real TrackOutput frame by frame, doing the writer thread's work inline."""

    def __init__(self, client: redis.Redis, epoch: int = 1, window: int = 6) -> None:
        self.out = Output(client, STREAM, epoch, window, 60.0, LOG, gop_seconds=0.0)
        self.out.claim()
        info = RenditionInfo(
            R, "video", 500_000, "avc1.42c00d", 426, 240, FPS, part_target=0.3, window=window
        )
        client.set(keys.renditions(STREAM), renditions_to_json([info]))
        self.info = info
        self.track: TrackOutput = self.out.track(R, Resume())
        self.track.init = b"INIT"
        self.seg = Segmenter(part_ticks=27_000)
        self.frame = 0

    def step(self) -> None:
        """One frame; returns once whatever it completed is in Redis."""
        i, tick = self.frame, 9000
        mark = Mark(i * 100_000, 1.7e9 + i / FPS) if i % GOP == 0 else None
        closed = self.seg.add(i * tick, i * tick, bytes([i % 256]) * 50, i % GOP == 0, mark)
        for part in self.seg.take_parts():
            self.track.submit_part(part)
        if closed is not None:
            self.track.submit(closed, self.info)
        while not self.out._queue.empty():
            item = self.out._queue.get_nowait()
            if isinstance(item, _PartWrite):
                item.track.write_part(item.part, item.body)
            else:
                item.track.write(item.closed, item.info, item.body)
        self.frame += 1

    def until(self, cond: Callable[[], bool]) -> None:
        while not cond():
            self.step()


@pytest.fixture
async def client(
    redis_async: redis.asyncio.Redis, aiohttp_client: Callable[..., Awaitable[Client]]
) -> Client:
    app = make_app()
    app[hls.REDIS] = redis_async
    app[hls.WINDOW] = 6
    hls.add_routes(app)
    return await aiohttp_client(app)


def events(client: Client) -> hls.Events:
    return client.app[hls.EVENTS]


async def _playlist(client: Client, query: str = "") -> m3u8.M3U8:
    resp = await client.get(f"/hls/{STREAM}/{R}/index.m3u8{query}")
    assert resp.status == 200, await resp.text()
    return m3u8.loads(await resp.text())


async def test_playlist_lists_parts_and_a_segment_is_its_parts(
    client: Client, redis_sync: redis.Redis
) -> None:
    w = Writer(redis_sync)
    w.until(lambda: w.frame > 2 * GOP + 4)  # two segments done, the third has one part
    pl = await _playlist(client)
    *done, growing = pl.segments
    assert [s.uri for s in done] == ["0.m4s", "1.m4s"]
    assert [p.uri for p in growing.parts] == ["part/1/2.0.m4s"]
    assert pl.preload_hint.uri == "part/1/2.1.m4s"
    parts = done[1].parts
    assert [p.uri for p in parts] == [f"part/1/1.{i}.m4s" for i in range(4)]
    blobs = [await (await client.get(f"/hls/{STREAM}/{R}/{p.uri}")).read() for p in parts]
    segment = await (await client.get(f"/hls/{STREAM}/{R}/1.m4s")).read()
    assert segment == b"".join(blobs) and len(segment) > 0


async def test_a_blocked_reload_returns_when_the_part_exists_and_not_before(
    client: Client, redis_sync: redis.Redis
) -> None:
    w = Writer(redis_sync)
    w.until(lambda: w.frame > GOP + 1)  # segment 0 done; segment 1 has no part yet
    first = await _playlist(client)
    assert first.preload_hint.uri == "part/1/1.0.m4s"
    held = asyncio.create_task(client.get(f"/hls/{STREAM}/{R}/index.m3u8?_HLS_msn=1&_HLS_part=0"))
    hint = asyncio.create_task(client.get(f"/hls/{STREAM}/{R}/part/1/1.0.m4s"))
    await await_for(lambda: events(client).waiting == 2, "both requests held")
    assert not held.done() and not hint.done()
    w.until(lambda: redis_sync.llen(keys.parts(STREAM, R)) == 1)
    resp = await asyncio.wait_for(held, 10)
    assert resp.status == 200 and "max-age=30" in resp.headers["Cache-Control"]
    assert "part/1/1.0.m4s" in await resp.text()
    part = await asyncio.wait_for(hint, 10)
    assert part.status == 200 and await part.read() == redis_sync.get(keys.part(STREAM, R, 1, 1, 0))


async def test_requests_too_far_ahead_and_timeouts(client: Client, redis_sync: redis.Redis) -> None:
    w = Writer(redis_sync)
    w.until(lambda: w.frame > GOP + 1)
    resp = await client.get(f"/hls/{STREAM}/{R}/index.m3u8?_HLS_msn=9")
    assert resp.status == 400 and "too far ahead" in (await resp.json())["detail"]
    resp = await client.get(f"/hls/{STREAM}/{R}/index.m3u8?_HLS_part=1")
    assert resp.status == 400
    # Nothing is written any more: the hold ends after three target durations with a 503.
    resp = await client.get(f"/hls/{STREAM}/{R}/index.m3u8?_HLS_msn=2")
    assert resp.status == 503
    # A part of a writer that is not the current one will never be written.
    resp = await client.get(f"/hls/{STREAM}/{R}/part/7/1.0.m4s")
    assert resp.status == 404
    assert (await client.get("/hls/nope/240p/index.m3u8")).status == 404


async def test_each_object_is_read_from_redis_once(client: Client, redis_sync: redis.Redis) -> None:
    w = Writer(redis_sync)
    w.until(lambda: w.frame > GOP + 1)
    cache = client.app[hls.CACHE]
    got = await asyncio.gather(*(client.get(f"/hls/{STREAM}/{R}/0.m4s") for _ in range(20)))
    assert {r.status for r in got} == {200}
    assert cache.misses == 1 and cache.hits == 19


async def test_a_dvr_window_lists_more_segments_and_delta_updates_skip_them(
    client: Client, redis_sync: redis.Redis
) -> None:
    w = Writer(redis_sync, window=20)  # the edge's own window is 6
    w.until(lambda: w.frame > 25 * GOP)
    full = await _playlist(client)
    done = [s for s in full.segments if s.uri]
    assert len(done) == 20 and done[-1].uri == "24.m4s"
    delta = await _playlist(client, "?_HLS_skip=YES")
    assert delta.skip.skipped_segments == 20 - 6  # 1 s segments: older than 6 s are skipped
    assert [s.uri for s in delta.segments if s.uri] == [s.uri for s in done[-6:]]
    first = await client.get(f"/hls/{STREAM}/{R}/5.m4s")  # 20 s back: still there to rewind to
    assert first.status == 200


async def test_held_requests_share_one_read_and_one_render(
    client: Client, redis_sync: redis.Redis
) -> None:
    w = Writer(redis_sync)
    w.until(lambda: w.frame > GOP + 1)
    live = client.app[hls.LIVE]
    query = "?_HLS_msn=1&_HLS_part=0"
    held = [
        asyncio.create_task(client.get(f"/hls/{STREAM}/{R}/index.m3u8{query}")) for _ in range(50)
    ]
    await await_for(lambda: events(client).waiting == 50, "50 requests held")
    await asyncio.sleep(0.2)  # let the last of them finish reading (a count, not a timing)
    before = live.reads
    w.until(lambda: redis_sync.llen(keys.parts(STREAM, R)) == 1)
    answers = await asyncio.gather(*held)
    bodies = {await a.text() for a in answers}
    assert {a.status for a in answers} == {200} and len(bodies) == 1
    assert "part/1/1.0.m4s" in bodies.pop()
    # One part announced: one read of the rendition for all fifty, not fifty (one more if the
    # last request to be held was still reading when we counted).
    assert live.reads - before <= 2
    # Plain requests after it reuse the same snapshot while nothing new is announced.
    reads = live.reads
    for _ in range(5):
        assert (await client.get(f"/hls/{STREAM}/{R}/index.m3u8")).status == 200
    assert live.reads == reads


async def test_redis_away_is_503_not_500(
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> None:
    away = redis.asyncio.Redis(port=free_port(), socket_connect_timeout=0.5)
    app = make_app()
    app[hls.REDIS] = away
    app[hls.WINDOW] = 6
    hls.add_routes(app)
    client = await aiohttp_client(app)
    for path in (f"{R}/index.m3u8", f"{R}/0.m4s"):
        resp = await client.get(f"/hls/{STREAM}/{path}")
        assert resp.status == 503, (path, await resp.text())
        assert "hot storage unavailable" in (await resp.json())["detail"]
    await away.aclose()


async def test_made_up_names_cost_no_subscription_and_no_snapshot(client: Client) -> None:
    for i in range(100):
        resp = await client.get(f"/hls/nobody{i}/{R}/index.m3u8")
        assert resp.status == 404
    assert not events(client)._subscribed
    assert not client.app[hls.LIVE]._entries
