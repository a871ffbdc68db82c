"""Znode payloads: versioned JSON documents, each a frozen dataclass with `parse` and `__bytes__`.

Every payload carries `v`; a reader refuses a version it does not know instead of guessing.
Bump a class's VERSION when its format changes incompatibly.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from cluster.errors import BadRequest


class Payload:
    VERSION: ClassVar[int] = 1

    def __bytes__(self) -> bytes:
        body = _plain(self)
        body["v"] = self.VERSION
        return _ENCODE(body).encode()

    @classmethod
    def parse(cls, data: bytes) -> Self:
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"{cls.__name__}: not JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise BadRequest(f"{cls.__name__}: expected an object")
        if raw.get("v") != cls.VERSION:
            raise BadRequest(f"{cls.__name__}: unsupported version {raw.get('v')!r}")
        return cls._from_dict(raw)

    @classmethod
    def _from_dict(cls, raw: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        try:
            return cls(**{k: v for k, v in raw.items() if k in names})
        except TypeError as exc:
            raise BadRequest(f"{cls.__name__}: {exc}") from exc


# dataclasses.asdict deep-copies every value and dominated the leader's time when it rewrote a
# thousand placements at once; payloads hold only JSON scalars, lists and nested dataclasses.
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def _plain(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_plain(x) for x in obj]
    names = getattr(obj, "__dataclass_fields__", None)
    if names is None:
        return obj
    return {name: _plain(getattr(obj, name)) for name in names}


def now() -> float:
    return round(time.time(), 3)


@dataclass(frozen=True)
class TranscoderInfo(Payload):
    """`/transcoders/{node}`: a live transcoder, its capacity and what it carries."""

    node: str
    http_url: str
    media_addr: str
    capacity: float
    load: float = 0.0
    streams: list[str] = field(default_factory=list)
    state: str = "serving"  # serving | draining
    version: str = ""
    updated_at: float = field(default_factory=now)


@dataclass(frozen=True)
class EdgeInfo(Payload):
    """`/edges/{node}`: a live edge and where its public and media ports are."""

    node: str
    public_url: str
    rtmp_url: str
    media_addr: str
    viewers: int = 0
    publishers: int = 0
    updated_at: float = field(default_factory=now)


@dataclass(frozen=True)
class LeaderInfo(Payload):
    """`/coordinators/leader`: who leads and since when."""

    node: str
    api_url: str
    since: float = field(default_factory=now)


@dataclass(frozen=True)
class StreamRecord(Payload):
    """`/streams/{stream}`: the registry entry; only a hash of the key is stored."""

    key_sha256: str
    created_at: float = field(default_factory=now)
    profile: str = "default"
    ladder: dict[str, Any] | None = None  # the stream's own ladder (Ladder.to_spec), if any
    # The writer epoch an earlier stream of the same id reached: epochs continue from it, so
    # no URL of the earlier stream (init/{epoch}, parts) is ever reused for other bytes.
    epoch_base: int = 0


@dataclass(frozen=True)
class Publisher(Payload):
    """`/streams/{stream}/publisher` (ephemeral, by the ingest edge).

    `media_addr` is where transcoders pull the stream from. `broken_epoch` is the fast-path
    report: the edge saw the media link of that epoch break, so the leader may move the stream
    without waiting for the transcoder's session to expire.
    """

    edge: str
    session: str
    media_addr: str
    protocol: str = "rtmp"
    codecs: list[str] = field(default_factory=list)
    since: float = field(default_factory=now)
    broken_epoch: int = 0


@dataclass(frozen=True)
class Move:
    at: float
    epoch: int
    src: str | None
    dst: str | None
    reason: str


@dataclass(frozen=True)
class Placement(Payload):
    """`/streams/{stream}/placement`: written only by the leader, with the assignments, in one multi()."""

    HISTORY: ClassVar[int] = 10

    transcoder: str | None
    epoch: int
    state: str  # placed | waiting (no capacity) | idle (no publisher)
    reason: str
    updated_at: float = field(default_factory=now)
    history: list[Move] = field(default_factory=list)

    @classmethod
    def _from_dict(cls, raw: dict[str, Any]) -> Self:
        raw = dict(raw)
        try:
            raw["history"] = [Move(**m) for m in raw.get("history", [])]
        except TypeError as exc:
            raise BadRequest(f"Placement history: {exc}") from exc
        return super()._from_dict(raw)

    def moved(self, dst: str | None, state: str, reason: str, at: float | None = None) -> Placement:
        """The next placement: a new epoch, and this move at the head of the history."""
        epoch = self.epoch + 1
        at = now() if at is None else at
        move = Move(at=at, epoch=epoch, src=self.transcoder, dst=dst, reason=reason)
        history = [move, *self.history][: self.HISTORY]
        return Placement(dst, epoch, state, reason, at, history)

    def stamped(self, at: float) -> Placement:
        """The same move made at `at` (a prepared move is written later than it was decided)."""
        history = [dataclasses.replace(self.history[0], at=at), *self.history[1:]]
        return dataclasses.replace(self, updated_at=at, history=history)


@dataclass(frozen=True)
class Assignment(Payload):
    """`/assignments/{node}/{stream}`: work for one transcoder, written with the placement."""

    stream: str
    epoch: int
    source: str  # media address of the ingest edge to pull from
    profile: str = "default"
    ladder: dict[str, Any] | None = None  # copied from the stream's record: what to encode
    session: str = ""  # the publisher session to carry: a new one restarts the clock


@dataclass(frozen=True)
class DrainMarker(Payload):
    """`/drain/{node}`: move everything off this node and give it no new work."""

    requested_at: float = field(default_factory=now)
    reason: str = "drain"
