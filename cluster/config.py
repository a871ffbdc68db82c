"""Settings: defaults, then an optional TOML file, then ZOOCAST_* environment, then flags; validated.

Every timeout is a setting, so tests shorten them instead of patching code. `zoocast.sample.toml`
in the repository lists every key with its default (a test loads it).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cluster.errors import BadRequest
from cluster.ids import node_id
from cluster.ladder import ladder


def _default_node() -> str:
    host = socket.gethostname().split(".")[0][:40] or "node"
    return f"{host}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Settings:
    zk: str = "127.0.0.1:2181"
    zk_root: str = "/zoocast"
    redis: str = "redis://127.0.0.1:6379/0"
    node_id: str = field(default_factory=_default_node)
    host: str = "127.0.0.1"  # the address others use to reach this node
    bind: str = "127.0.0.1"  # the address servers listen on
    http_port: int = 8080
    rtmp_port: int = 1935
    media_port: int = 9000
    admin_token: str = ""
    session_timeout: float = 4.0  # ZooKeeper session; the server clamps it to its own bounds
    zk_backoff_cap: float = 1.0  # kazoo's reconnect backoff grows to tens of seconds uncapped
    capacity: float = 2.0  # placement cost units a transcoder accepts (a default ladder costs 1)
    ladder: str = "default"  # cluster-wide ladder profile for new streams
    hls_window: int = 6  # segments in a media playlist
    segment_ttl: float = 120.0  # seconds a segment stays in Redis
    gop_cache_seconds: float = 30.0  # cap on what an edge replays to a new transcoder
    # What a successor may need: the frames its predecessor had not packaged yet, up to one
    # segment back, which can reach past the publisher's latest keyframe.
    gop_cache_min_seconds: float = 4.0
    gop_cache_bytes: int = 64 * 1024 * 1024
    placement_wait: float = 10.0  # how long a new publisher waits for a transcoder
    link_connect_timeout: float = 2.0  # transcoder -> edge media link
    rtmp_idle_timeout: float = 30.0  # an RTMP connection silent this long is closed
    rtmp_setup_timeout: float = 10.0  # handshake to publish must finish within this
    whip_connect_timeout: float = 10.0  # a WHIP publisher must connect (ICE, DTLS) within this
    # A WHIP publisher silent this long is gone (ICE consent alone takes about 30 s to tell).
    whip_idle_timeout: float = 5.0
    whep_connect_timeout: float = 15.0  # a WHEP viewer must connect (ICE, DTLS) within this
    # WHEP viewers stay connected this long after their publisher left, for it to come back.
    whep_grace: float = 30.0
    # The transcoder forces at most one keyframe this often on the WebRTC rung for KEYREQs.
    feed_key_interval: float = 0.5
    worker_pool: int = 2  # warm worker processes a transcoder keeps ready
    # Addresses an edge announces as ICE host candidates (comma-separated): its public address
    # behind NAT, 127.0.0.1 on one machine. aioice would otherwise skip loopback.
    webrtc_hosts: str = "127.0.0.1"
    stun: str = ""  # STUN servers (comma-separated stun:host:port); none by default
    log_level: str = "INFO"
    log_json: bool = False

    def __post_init__(self) -> None:
        node_id(self.node_id)
        ladder(self.ladder)
        for name in ("http_port", "rtmp_port", "media_port"):
            port = getattr(self, name)
            if not 0 <= port < 65536:
                raise BadRequest(f"{name} out of range: {port}")
        for name in (
            "session_timeout",
            "zk_backoff_cap",
            "placement_wait",
            "segment_ttl",
            "whip_connect_timeout",
            "whip_idle_timeout",
            "whep_connect_timeout",
            "whep_grace",
            "feed_key_interval",
        ):
            if getattr(self, name) <= 0:
                raise BadRequest(f"{name} must be positive")
        if self.capacity <= 0 or self.hls_window < 3:
            raise BadRequest("capacity must be positive and hls_window at least 3")

    @property
    def webrtc_host_list(self) -> list[str]:
        return [h.strip() for h in self.webrtc_hosts.split(",") if h.strip()]

    @property
    def stun_list(self) -> list[str]:
        return [s.strip() for s in self.stun.split(",") if s.strip()]

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def media_addr(self) -> str:
        return f"{self.host}:{self.media_port}"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _coerce(name: str, kind: Any, raw: Any) -> Any:
    try:
        if kind is bool or kind == "bool":
            if isinstance(raw, bool):
                return raw
            return str(raw).strip().lower() in {"1", "true", "yes", "on"}
        if kind is int or kind == "int":
            return int(raw)
        if kind is float or kind == "float":
            return float(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"setting {name}: cannot read {raw!r} as {kind}") from exc


def load(
    file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings: defaults -> TOML file -> ZOOCAST_* env -> overrides (flags); then validate."""
    env = os.environ if env is None else env
    kinds = {f.name: f.type for f in fields(Settings)}
    values: dict[str, Any] = {}
    file = file or env.get("ZOOCAST_CONFIG")
    if file:
        with open(file, "rb") as fh:
            data = tomllib.load(fh)
        unknown = set(data) - set(kinds)
        if unknown:
            raise BadRequest(f"{file}: unknown settings {sorted(unknown)}")
        values.update(data)
    for name in kinds:
        raw = env.get(f"ZOOCAST_{name.upper()}")
        if raw is not None:
            values[name] = raw
    for name, raw in (overrides or {}).items():
        if raw is None:
            continue
        if name not in kinds:
            raise BadRequest(f"unknown setting {name}")
        values[name] = raw
    return Settings(**{k: _coerce(k, kinds[k], v) for k, v in values.items()})
