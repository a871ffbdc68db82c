"""The one error hierarchy of zoocast.

    ZoocastError                 any error we raise on purpose; carries an HTTP status
    ├── BadRequest        400    malformed input: ids, SDP, RTMP chunks, JSON bodies, media frames
    ├── Unauthorized      401    wrong or missing stream key / admin token
    ├── NotFound          404    unknown stream, node or object
    ├── Conflict          409    stream already published, already exists
    ├── TooLarge          413    body or frame over the limit
    ├── UnsupportedMedia  415    wrong content type
    ├── Unavailable       503    no transcoder capacity, ZooKeeper or Redis out of reach
    │   └── ZkUnavailable        the ZooKeeper session is suspended or lost
    ├── ZkNoNode / ZkNodeExists / ZkBadVersion
    │                            kazoo's exceptions, translated at the bridge
    ├── TxnFailed         409    a multi() lost its compare-and-set
    └── Fenced            409    a Redis write refused because a newer epoch owns the stream

The HTTP middleware (cluster.ops) maps these to `{"error", "detail"}` JSON bodies; anything
else becomes a 500 logged once with its traceback.
"""

from __future__ import annotations


class ZoocastError(Exception):
    status = 500
    code = "internal"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(ZoocastError):
    status = 400
    code = "bad_request"


class Unauthorized(ZoocastError):
    status = 401
    code = "unauthorized"


class NotFound(ZoocastError):
    status = 404
    code = "not_found"


class Conflict(ZoocastError):
    status = 409
    code = "conflict"


class TooLarge(ZoocastError):
    status = 413
    code = "too_large"


class UnsupportedMedia(ZoocastError):
    status = 415
    code = "unsupported_media_type"


class Unavailable(ZoocastError):
    status = 503
    code = "unavailable"


class ZkUnavailable(Unavailable):
    code = "zookeeper_unavailable"


class ZkNoNode(ZoocastError):
    status = 404
    code = "no_node"


class ZkNodeExists(ZoocastError):
    status = 409
    code = "node_exists"


class ZkBadVersion(ZoocastError):
    status = 409
    code = "bad_version"


class TxnFailed(ZoocastError):
    status = 409
    code = "transaction_failed"


class Fenced(ZoocastError):
    """A newer writer epoch owns the stream; the caller must stop writing."""

    status = 409
    code = "fenced"

    def __init__(self, stored_epoch: int, detail: str = "") -> None:
        super().__init__(detail or f"stream owned by epoch {stored_epoch}")
        self.stored_epoch = stored_epoch
