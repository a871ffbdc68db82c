"""`/api/cluster` and drains: transcoders with load and capacity, edges, the coordinator leader."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from cluster.errors import BadRequest, NotFound, ZkNodeExists
from cluster.ids import node_id
from cluster.payloads import DrainMarker, EdgeInfo, LeaderInfo, Payload, TranscoderInfo
from edge.api.context import API, require_admin


async def _read_all(request: web.Request, parent: str, kind: type[Payload]) -> list[dict[str, Any]]:
    zk = request.app[API].zk
    names = sorted(await zk.children(parent))
    got = await asyncio.gather(*(zk.get(f"{parent}/{n}") for n in names))
    out = []
    for name, item in zip(names, got, strict=True):
        if item is None:
            continue  # gone between listing and reading: an ephemeral node just died
        try:
            out.append({"node": name, **kind.parse(item[0]).__dict__})
        except BadRequest:
            out.append({"node": name, "error": "unreadable payload"})
    return out


async def get_cluster(request: web.Request) -> web.Response:
    ctx = request.app[API]
    paths = ctx.paths
    transcoders, edges, drains, leader = await asyncio.gather(
        _read_all(request, paths.transcoders, TranscoderInfo),
        _read_all(request, paths.edges, EdgeInfo),
        ctx.zk.children(paths.drains),
        ctx.zk.get(paths.leader),
    )
    draining = set(drains)
    for t in transcoders:
        t["drain_requested"] = t["node"] in draining
        cap = t.get("capacity") or 0
        t["utilisation"] = round(t.get("load", 0) / cap, 3) if cap else None
    return web.json_response(
        {
            "leader": LeaderInfo.parse(leader[0]).__dict__ if leader else None,
            "transcoders": transcoders,
            "edges": edges,
            "drains": sorted(draining),
        }
    )


async def drain(request: web.Request) -> web.Response:
    require_admin(request)
    ctx = request.app[API]
    node = node_id(request.match_info["node"])
    if await ctx.zk.get(ctx.paths.transcoder(node)) is None:
        raise NotFound(f"no live transcoder {node}")
    try:
        await ctx.zk.create(ctx.paths.drain(node), bytes(DrainMarker()))
    except ZkNodeExists:
        pass  # draining twice is draining
    return web.json_response({"node": node, "draining": True}, status=202)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/cluster", get_cluster)
    app.router.add_post("/api/transcoders/{node}/drain", drain)
