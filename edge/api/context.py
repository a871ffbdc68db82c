"""What the API handlers need from the edge, under one typed app key."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass

import redis.asyncio
from aiohttp import web

from cluster.config import Settings
from cluster.errors import BadRequest, TooLarge, Unauthorized
from cluster.paths import Paths
from cluster.registry import Registry
from cluster.zk.bridge import ZkBridge

MAX_JSON = 64 * 1024


@dataclass
class ApiContext:
    settings: Settings
    zk: ZkBridge
    paths: Paths
    redis: redis.asyncio.Redis
    registry: Registry


API = web.AppKey("api", ApiContext)


def require_admin(request: web.Request) -> None:
    token = request.app[API].settings.admin_token
    if not token:
        raise Unauthorized("the admin API is disabled: set ZOOCAST_ADMIN_TOKEN")
    given = request.headers.get("Authorization", "")
    if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].strip(), token):
        raise Unauthorized("admin token missing or wrong (Authorization: Bearer TOKEN)")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole request body, refused (413) past `limit` bytes, whether or not it says its
    length. `content.read(n)` returns what has arrived so far, so it is read to the end."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"body of {request.content_length} bytes (at most {limit})")
    body = bytearray()
    while chunk := await request.content.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"body over {limit} bytes")
    return bytes(body)


async def json_body(request: web.Request) -> dict[str, object]:
    raw = await read_body(request, MAX_JSON)
    if not raw:
        return {}

    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest("body must be a JSON object")
    return value
