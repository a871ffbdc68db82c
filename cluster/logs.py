"""Logging with role/node/stream context bound to every record.

`setup(role, node)` once per process; `stream_logger(logger, stream)` for per-stream lines.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

_ROLE = "-"
_NODE = "-"


class _Context(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.role = _ROLE
        record.node = _NODE
        if not hasattr(record, "stream"):
            record.stream = "-"
        return True


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "t": round(record.created, 3),
            "level": record.levelname,
            "role": getattr(record, "role", "-"),
            "node": getattr(record, "node", "-"),
            "stream": getattr(record, "stream", "-"),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body)


def setup(role: str, node: str, level: str = "INFO", as_json: bool = False) -> None:
    global _ROLE, _NODE
    _ROLE, _NODE = role, node
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Context())
    if as_json:
        handler.setFormatter(_Json())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname).1s %(role)s/%(node)s [%(stream)s] %(name)s: %(message)s"
            )
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kazoo narrates every connection attempt at INFO.
    logging.getLogger("kazoo").setLevel(logging.WARNING)


class StreamLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs.setdefault("extra", {})["stream"] = self.extra["stream"] if self.extra else "-"
        return msg, kwargs


def stream_logger(logger: logging.Logger, stream: str) -> StreamLogger:
    return StreamLogger(logger, {"stream": stream})
