"""The stream registry in ZooKeeper: create, read, check keys, delete (ids and keys in, records out).

Only a SHA-256 of a stream key is stored; keys have 128 random bits, so a plain hash is enough
and comparing digests in constant time keeps the check free of timing leaks.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cluster.errors import Conflict, NotFound, Unauthorized, ZkNodeExists
from cluster.ids import new_stream_key, stream_id
from cluster.ladder import Ladder, ladder
from cluster.paths import Paths
from cluster.payloads import Placement, Publisher, StreamRecord
from cluster.zk.bridge import ZkBridge


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class StreamView:
    stream: str
    record: StreamRecord
    publisher: Publisher | None
    placement: Placement | None


class Registry:
    def __init__(self, zk: ZkBridge, paths: Paths) -> None:
        self.zk = zk
        self.paths = paths

    async def create(
        self,
        stream: str,
        profile: str = "default",
        custom: Ladder | None = None,
        epoch_base: int = 0,
    ) -> str:
        """Register a stream; returns its key, which is never stored or shown again. A built-in
        ladder is stored by name; a custom one whole, in the record."""
        stream = stream_id(stream)
        if custom is None:
            ladder(profile)
        key = new_stream_key()
        record = StreamRecord(
            key_digest(key),
            profile=profile if custom is None else custom.name,
            ladder=None if custom is None else custom.to_spec(),
            epoch_base=epoch_base,
        )
        try:
            await self.zk.create(self.paths.stream(stream), bytes(record))
        except ZkNodeExists:
            raise Conflict(f"stream {stream} already exists") from None
        return key

    async def record(self, stream: str) -> StreamRecord:
        got = await self.zk.get(self.paths.stream(stream))
        if got is None:
            raise NotFound(f"unknown stream {stream}")
        return StreamRecord.parse(got[0])

    async def check_key(self, stream: str, key: str) -> StreamRecord:
        """The registry entry if `key` is the stream's key; Unauthorized otherwise (also for unknown streams,
        so a publisher cannot probe which streams exist)."""
        try:
            record = await self.record(stream)
        except NotFound:
            raise Unauthorized("unknown stream or wrong key") from None
        if not key or not hmac.compare_digest(record.key_sha256, key_digest(key)):
            raise Unauthorized("unknown stream or wrong key")
        return record

    async def view(self, stream: str) -> StreamView:
        record = await self.record(stream)
        pub = await self.zk.get(self.paths.publisher(stream))
        place = await self.zk.get(self.paths.placement(stream))
        return StreamView(
            stream,
            record,
            Publisher.parse(pub[0]) if pub else None,
            Placement.parse(place[0]) if place else None,
        )

    async def list(self) -> list[str]:
        return sorted(await self.zk.children(self.paths.streams))

    async def delete(self, stream: str) -> None:
        stream = stream_id(stream)
        if await self.zk.get(self.paths.publisher(stream)) is not None:
            raise Conflict(f"stream {stream} is live; stop the publisher first")
        if await self.zk.get(self.paths.stream(stream)) is None:
            raise NotFound(f"unknown stream {stream}")
        await self.zk.delete(self.paths.stream(stream), recursive=True)
