"""The demo stream of `zoocast up`: create it through the admin API, publish a test pattern to it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoocast.local.up import Child, LocalCluster


def api(
    base: str, method: str, path: str, token: str = "", body: dict[str, Any] | None = None
) -> Any:
    """One JSON call to an edge's REST API; errors come back as RuntimeError with the server's words."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise RuntimeError(f"{method} {path}: {exc.code} {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RuntimeError(
            f"cannot reach the edge API at {base}: {reason} (is it running? --api)"
        ) from None
    return json.loads(raw) if raw else None


def create_stream(base: str, token: str, stream: str) -> str:
    try:
        created = api(base, "POST", "/api/streams", token, {"stream": stream})
    except RuntimeError as exc:
        if " 409 " not in str(exc):
            raise
        api(base, "DELETE", f"/api/streams/{stream}", token)
        created = api(base, "POST", "/api/streams", token, {"stream": stream})
    return str(created["key"])


def start_demo_publisher(
    cluster: LocalCluster, rtmp_url: str, size: str = "1280x720", fps: int = 30
) -> Child:
    from zoocast.local.up import Child

    log = cluster.logs / "publish-test.log"
    stream = rtmp_url.rsplit("/", 1)[1].split("?", 1)[0]
    proc = subprocess.Popen(
        # 720p so that the default ladder has both its rungs (it never upscales).
        [
            sys.executable,
            "-m",
            "zoocast.cli",
            "publish-test",
            stream,
            "--url",
            rtmp_url,
            "--size",
            size,
            "--fps",
            str(fps),
            "--bitrate",
            "2500",
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    child = Child("publish-test", proc, log)
    cluster.children.append(child)
    return child
