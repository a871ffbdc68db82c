"""A simulated cluster on the real ZooKeeper: transcoders and edges are bare sessions writing the
znodes the real roles write, so the coordinator is tested without media."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from cluster.errors import TxnFailed, ZkNoNode
from cluster.paths import Paths
from cluster.payloads import Assignment, Placement, Publisher, StreamRecord, TranscoderInfo
from cluster.zk.bridge import ZkBridge
from cluster.zk.ephemeral import EphemeralNode
from cluster.zk.ops import Check
from coordinator.leader import Leader
from zoocast.local.servers import ZooKeeperServer

SESSION_TIMEOUT = 1.0


@dataclass
class SimCluster:
    hosts: str
    paths: Paths
    admin: ZkBridge  # writes what the REST API and the edges would
    bridges: list[ZkBridge] = field(default_factory=list)
    members: dict[str, EphemeralNode] = field(default_factory=dict)  # /transcoders/{name}
    publishers: dict[str, EphemeralNode] = field(default_factory=dict)
    leaders: list[Leader] = field(default_factory=list)

    async def bridge(self) -> ZkBridge:
        zk = ZkBridge(self.hosts, self.paths, SESSION_TIMEOUT, backoff_cap=0.2)
        self.bridges.append(zk)
        await zk.start()
        return zk

    async def transcoder(self, name: str, capacity: float = 10.0) -> ZkBridge:
        zk = await self.bridge()
        info = TranscoderInfo(name, f"http://{name}", f"{name}:9000", capacity)
        self.members[name] = await zk.ephemeral(self.paths.transcoder(name), bytes(info))
        return zk

    async def expire(self, zk: ZkBridge) -> None:
        """End `zk`'s session as the server would after a partition: a second client joins the
        session and closes it."""
        assert zk.client_id is not None
        thief = ZkBridge(self.hosts, self.paths, SESSION_TIMEOUT, client_id=zk.client_id)
        await thief.start()
        await thief.stop()

    async def coordinator(self, name: str) -> Leader:
        leader = Leader(await self.bridge(), name, f"http://{name}", prune_after=0.5)
        self.leaders.append(leader)
        leader.start()
        return leader

    async def stream(self, name: str, profile: str = "default") -> None:
        await self.admin.create(self.paths.stream(name), bytes(StreamRecord("k", profile=profile)))

    async def publish(self, stream: str, edge: str = "e1", broken_epoch: int = 0) -> Publisher:
        pub = Publisher(edge, f"{edge}-session", f"{edge}:9000", broken_epoch=broken_epoch)
        node = self.publishers.get(stream)
        if node is None:
            self.publishers[stream] = await self.admin.ephemeral(
                self.paths.publisher(stream), bytes(pub)
            )
        else:
            await node.update(bytes(pub))
        return pub

    async def unpublish(self, stream: str) -> None:
        await self.publishers.pop(stream).remove()

    async def placement(self, stream: str) -> Placement | None:
        got = await self.admin.get(self.paths.placement(stream))
        return None if got is None else Placement.parse(got[0])

    async def assignments(self) -> dict[str, dict[str, Assignment]]:
        """node -> stream -> assignment, read one directory after another (not atomically)."""
        out: dict[str, dict[str, Assignment]] = {}
        for node in await self.admin.children(self.paths.assignments):
            try:
                streams = await self.admin.children(self.paths.node_assignments(node))
            except ZkNoNode:
                continue  # the leader removed a departed node's empty directory
            out[node] = {}
            for stream in streams:
                got = await self.admin.get(self.paths.assignment(node, stream))
                if got is not None:
                    out[node][stream] = Assignment.parse(got[0])
        return out

    async def placed_twice(self) -> list[str]:
        """Streams with assignments on two nodes at one instant (checked atomically)."""
        seen: dict[str, list[str]] = {}
        for node, streams in (await self.assignments()).items():
            for stream in streams:
                seen.setdefault(stream, []).append(node)
        twice = []
        for stream, nodes in seen.items():
            if len(nodes) < 2:
                continue
            # The directories were read at different instants; a multi of checks is one instant.
            try:
                await self.admin.transaction(
                    [Check(self.paths.assignment(n, stream), -1) for n in nodes]
                )
                twice.append(stream)
            except TxnFailed:
                pass
        return twice

    async def settled(self, streams: list[str]) -> dict[str, Placement]:
        """Placements of `streams` once each is placed with exactly its matching assignment."""
        placements = {s: await self.placement(s) for s in streams}
        assignments = await self.assignments()
        for stream, p in placements.items():
            if p is None or p.state != "placed" or p.transcoder is None:
                return {}
            holders = [n for n, held in assignments.items() if stream in held]
            if holders != [p.transcoder] or assignments[p.transcoder][stream].epoch != p.epoch:
                return {}
        return placements  # type: ignore[return-value]

    async def close(self) -> None:
        for leader in self.leaders:
            await leader.stop()
        for zk in self.bridges:
            await zk.stop()
        await self.admin.stop()


@pytest.fixture
async def sim(zk_server: ZooKeeperServer, zk_root: str) -> AsyncIterator[SimCluster]:
    paths = Paths(zk_root)
    admin = ZkBridge(zk_server.hosts, paths, SESSION_TIMEOUT, backoff_cap=0.2)
    await admin.start()
    cluster = SimCluster(zk_server.hosts, paths, admin)
    yield cluster
    await cluster.close()
