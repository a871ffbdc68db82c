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


async def json_body(request: web.Request) -> dict[str, object]:
    if request.content_length and request.content_length > MAX_JSON:
        raise TooLarge(f"body over {MAX_JSON} bytes")
    raw = await request.content.read(MAX_JSON + 1)
    if len(raw) > MAX_JSON:
        raise TooLarge(f"body over {MAX_JSON} bytes")
    if not raw:
        return {}

    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest("body must be a JSON object")
    return value
