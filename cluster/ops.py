"""HTTP plumbing every role shares: the error middleware and /healthz, /readyz, /metrics.

Errors from the cluster.errors tree become `{"error", "detail"}` JSON with their status; any
other exception is logged once with its traceback and answered as a 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from cluster.errors import ZoocastError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ReadyCheck = Callable[[], str | None]  # None when ready, else the reason it is not
MetricsFn = Callable[[], dict[str, float]]

READY_CHECKS = web.AppKey("ready_checks", list[ReadyCheck])
METRICS = web.AppKey("metrics", list[MetricsFn])


def error_response(status: int, error: str, detail: str = "") -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps({"error": error, "detail": detail}),
        content_type="application/json",
    )


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ZoocastError as exc:
        return error_response(exc.status, exc.code, exc.detail)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or "")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "unexpected server error; see the server log")


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _readyz(request: web.Request) -> web.Response:
    reasons = [r for check in request.app[READY_CHECKS] if (r := check()) is not None]
    if reasons:
        return web.json_response({"ready": False, "reasons": reasons}, status=503)
    return web.json_response({"ready": True})


async def _metrics(request: web.Request) -> web.Response:
    lines: list[str] = []
    for fn in request.app[METRICS]:
        for name, value in sorted(fn().items()):
            lines.append(f"zoocast_{name} {value}")
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


def make_app(**kwargs: Any) -> web.Application:
    """An aiohttp app with the error middleware and the ops endpoints already routed."""
    app = web.Application(middlewares=[errors_middleware], **kwargs)
    app[READY_CHECKS] = []
    app[METRICS] = []
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    return app
