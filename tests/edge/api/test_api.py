"""REST and HLS handlers through pytest-aiohttp's client, on a real ZooKeeper and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio
from aiohttp.test_utils import TestClient

from cluster.config import Settings
from cluster.hot import keys
from cluster.hot.fence import FencedBatch, run_async
from cluster.hot.model import RenditionInfo, SegmentEntry, renditions_to_json
from cluster.paths import Paths
from cluster.payloads import Move, Placement, TranscoderInfo
from cluster.registry import Registry
from cluster.zk.bridge import ZkBridge
from edge.api.context import ApiContext
from edge.http import build_http_app
from zoocast.local.servers import RedisServer, ZooKeeperServer

TOKEN = "admin-secret"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
Client = TestClient  # type: ignore[type-arg]


@pytest.fixture
async def zk(zk_server: ZooKeeperServer, zk_root: str) -> AsyncIterator[ZkBridge]:
    bridge = ZkBridge(zk_server.hosts, Paths(zk_root), session_timeout=2.0)
    await bridge.start()
    yield bridge
    await bridge.stop()


@pytest.fixture
async def client(
    zk: ZkBridge,
    redis_async: redis.asyncio.Redis,
    redis_server: RedisServer,
    aiohttp_client: Callable[..., Awaitable[Client]],
) -> Client:
    settings = Settings(node_id="edge-t", admin_token=TOKEN, redis=redis_server.url)
    ctx = ApiContext(settings, zk, zk.paths, redis_async, Registry(zk, zk.paths))
    return await aiohttp_client(build_http_app(ctx))


async def _json(resp: Any, status: int) -> Any:
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_create_returns_key_once_and_get_hides_it(client: Client) -> None:
    body = await _json(
        await client.post("/api/streams", json={"stream": "cam1"}, headers=ADMIN), 201
    )
    assert body["stream"] == "cam1" and len(body["key"]) >= 16
    assert body["rtmp_url"].endswith(f"/live/cam1?key={body['key']}")
    got = await _json(await client.get("/api/streams/cam1"), 200)
    assert body["key"] not in str(got)
    assert got["live"] is False and got["placement"] is None
    listed = await _json(await client.get("/api/streams"), 200)
    assert [s["stream"] for s in listed["streams"]] == ["cam1"]
    dup = await _json(
        await client.post("/api/streams", json={"stream": "cam1"}, headers=ADMIN), 409
    )
    assert dup["error"] == "conflict"


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, {"stream": "a"}, 401),
        ({"Authorization": "Bearer nope"}, {"stream": "a"}, 401),
        (ADMIN, {"stream": "../etc"}, 400),
        (ADMIN, {"stream": "x" * 65}, 400),
        (ADMIN, {"stream": "a", "profile": "8k"}, 400),
    ],
)
async def test_create_refuses_bad_input(
    client: Client, headers: dict[str, str], body: dict[str, str], status: int
) -> None:
    got = await _json(await client.post("/api/streams", json=body, headers=headers), status)
    assert set(got) == {"error", "detail"} and got["detail"]


async def test_bad_json_and_big_bodies(client: Client) -> None:
    await _json(await client.post("/api/streams", data=b"{nope", headers=ADMIN), 400)
    await _json(await client.post("/api/streams", data=b"[1]", headers=ADMIN), 400)
    resp = await client.post("/api/streams", data=b"x" * 200_000, headers=ADMIN)
    assert resp.status == 413


async def test_unknown_stream_is_404(client: Client) -> None:
    await _json(await client.get("/api/streams/ghost"), 404)
    await _json(await client.get("/hls/ghost/index.m3u8"), 404)
    await _json(await client.get("/hls/ghost/240p/index.m3u8"), 404)
    await _json(await client.get("/hls/bad!id/index.m3u8"), 400)
    await _json(await client.get("/hls/s/240p/abc.m4s"), 400)


async def test_stream_shows_placement_and_moves(client: Client, zk: ZkBridge) -> None:
    await client.post("/api/streams", json={"stream": "cam2"}, headers=ADMIN)
    placement = Placement(
        "t2",
        2,
        "placed",
        "transcoder t1 died",
        history=[
            Move(1.0, 2, "t1", "t2", "transcoder t1 died"),
            Move(0.5, 1, None, "t1", "new publisher"),
        ],
    )
    await zk.create(zk.paths.placement("cam2"), bytes(placement))
    got = await _json(await client.get("/api/streams/cam2"), 200)
    assert got["placement"]["transcoder"] == "t2" and got["placement"]["epoch"] == 2
    assert [m["dst"] for m in got["placement"]["moves"]] == ["t2", "t1"]


async def test_cluster_lists_transcoders_with_load(client: Client, zk: ZkBridge) -> None:
    info = TranscoderInfo(
        "t1", "http://127.0.0.1:1", "127.0.0.1:2", capacity=4.0, load=1.0, streams=["a"]
    )
    await zk.create(zk.paths.transcoder("t1"), bytes(info), ephemeral=True)
    got = await _json(await client.get("/api/cluster"), 200)
    assert got["transcoders"][0]["node"] == "t1"
    assert got["transcoders"][0]["utilisation"] == 0.25
    assert got["leader"] is None
    await _json(await client.post("/api/transcoders/t1/drain", headers=ADMIN), 202)
    await _json(await client.post("/api/transcoders/t9/drain", headers=ADMIN), 404)
    got = await _json(await client.get("/api/cluster"), 200)
    assert got["drains"] == ["t1"] and got["transcoders"][0]["drain_requested"] is True


async def test_delete_removes_registry_and_hot_data(
    client: Client, redis_async: redis.asyncio.Redis
) -> None:
    await client.post("/api/streams", json={"stream": "cam3"}, headers=ADMIN)
    await redis_async.set(keys.segment("cam3", "240p", 1), b"x")
    await _json(await client.delete("/api/streams/cam3"), 401)
    resp = await client.delete("/api/streams/cam3", headers=ADMIN)
    assert resp.status == 204
    assert await redis_async.get(keys.segment("cam3", "240p", 1)) is None
    await _json(await client.get("/api/streams/cam3"), 404)


async def test_hls_serves_playlists_and_segments(
    client: Client, redis_async: redis.asyncio.Redis
) -> None:
    r = "240p"
    batch = (
        FencedBatch()
        .set(
            keys.renditions("s"),
            renditions_to_json([RenditionInfo(r, "video", 500_000, "avc1.42c015", 426, 240, 15)]),
        )
        .set(keys.init("s", r, 1), b"INIT")
        .set(keys.segment("s", r, 7), b"SEG7")
        .rpush(keys.index("s", r), SegmentEntry(7, 2.0, 1, 0, 2_000_000, 1.7e9).to_json())
        .hset(keys.state("s", r), {"msn": 7, "disc": 0})
    )
    await run_async(redis_async, batch, keys.epoch("s"), 1)
    resp = await client.get("/hls/s/index.m3u8")
    assert resp.status == 200 and resp.content_type == "application/vnd.apple.mpegurl"
    assert "240p/index.m3u8" in await resp.text()
    media = await (await client.get(f"/hls/s/{r}/index.m3u8")).text()
    assert "#EXT-X-MEDIA-SEQUENCE:7" in media and "7.m4s" in media
    seg = await client.get(f"/hls/s/{r}/7.m4s")
    assert await seg.read() == b"SEG7" and "max-age" in seg.headers["Cache-Control"]
    assert await (await client.get(f"/hls/s/{r}/init/1.mp4")).read() == b"INIT"
    await _json(await client.get(f"/hls/s/{r}/8.m4s"), 404)


async def test_ops_endpoints(client: Client) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await _json(await client.get("/readyz"), 200))["ready"] is True
    assert (await client.get("/metrics")).status == 200


async def test_a_stream_with_its_own_ladder_shows_it(client: Client, zk: ZkBridge) -> None:
    spec = {
        "name": "event",
        "rungs": [{"height": 1080, "video_kbps": 5000}, {"height": 480, "video_kbps": 1200}],
        "gop_seconds": 3,
    }
    got = await _json(
        await client.post("/api/streams", json={"stream": "ev", "ladder": spec}, headers=ADMIN),
        201,
    )
    assert got["profile"] == "event"
    shown = await _json(await client.get("/api/streams/ev"), 200)
    assert [r["name"] for r in shown["ladder"]["rungs"]] == ["1080p", "480p"]
    assert shown["ladder"]["gop_seconds"] == 3.0 and shown["ladder"]["preset"] == "veryfast"
    record = await Registry(zk, zk.paths).record("ev")
    assert record.ladder == shown["ladder"]  # what the leader hands to the transcoder
    named = await _json(await client.get("/api/streams"), 200)
    assert {s["stream"]: s["ladder"]["name"] for s in named["streams"]}["ev"] == "event"
    bad = {"stream": "ev2", "ladder": {"rungs": [{"height": 100, "video_kbps": 1}], "fps": 500}}
    refused = await _json(await client.post("/api/streams", json=bad, headers=ADMIN), 400)
    assert "fps" in refused["detail"]
    await _json(await client.get("/api/streams/ev2"), 404)  # nothing was written


async def test_a_stream_created_again_continues_where_the_deleted_one_stopped(
    client: Client, redis_async: redis.asyncio.Redis, zk: ZkBridge
) -> None:
    await _json(await client.post("/api/streams", json={"stream": "again"}, headers=ADMIN), 201)
    await redis_async.set(keys.epoch("again"), 7)
    await redis_async.hset(keys.state("again", "240p"), mapping={"msn": 41, "disc": 2})
    await redis_async.set(keys.init("again", "240p", 7), b"old init")
    assert (await client.delete("/api/streams/again", headers=ADMIN)).status == 204
    # The media goes; the writer epoch and the sequence state stay.
    assert await redis_async.get(keys.init("again", "240p", 7)) is None
    assert int(await redis_async.get(keys.epoch("again"))) == 7
    assert int(await redis_async.hget(keys.state("again", "240p"), "msn")) == 41
    await _json(await client.post("/api/streams", json={"stream": "again"}, headers=ADMIN), 201)
    record = await Registry(zk, zk.paths).record("again")
    assert record.epoch_base == 7  # its first placement is epoch 8: init/8.mp4, never init/7
