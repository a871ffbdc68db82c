"""Watches deliver on the loop, dedupe, stop on cancel, and keep firing across drops and expiry."""

from __future__ import annotations

import asyncio

from cluster.paths import Paths
from cluster.zk.ops import Node
from cluster.zk.state import ConnState
from tests.cluster.zk.conftest import SESSION_TIMEOUT, BridgeFactory
from tests.cluster.zk.proxy import Proxy
from tests.conftest import await_for


async def test_data_watch_follows_create_set_delete(bridges: BridgeFactory, paths: Paths) -> None:
    zk = await bridges()
    path = f"{paths.root}/w"
    seen: list[bytes | None] = []
    watch = zk.watch_data(path, seen.append)
    await watch.ready()
    assert seen == [None]
    await zk.create(path, b"a")
    await await_for(lambda: seen[-1] == b"a", "the create")
    await zk.set(path, b"b")
    await await_for(lambda: seen[-1] == b"b", "the set")
    await zk.delete(path)
    await await_for(lambda: seen[-1] is None and len(seen) == 4, "the delete")
    watch.cancel()
    await zk.create(path, b"after")
    await asyncio.sleep(0.2)
    assert seen == [None, b"a", b"b", None]


async def test_node_watch_carries_the_stat(bridges: BridgeFactory, paths: Paths) -> None:
    zk = await bridges()
    path = f"{paths.root}/n"
    await zk.create(path, b"x")
    versions: list[int] = []

    def record(node: Node | None) -> None:
        assert node is not None
        versions.append(node.stat.version)

    watch = zk.watch_node(path, record)
    await watch.ready()
    await zk.set(path, b"y")
    await await_for(lambda: versions == [0, 1], "versions 0 then 1")


async def test_children_watch_and_missing_parent(bridges: BridgeFactory, paths: Paths) -> None:
    zk = await bridges()
    parent = f"{paths.root}/p"
    seen: list[list[str] | None] = []
    watch = zk.watch_children(parent, seen.append)
    await watch.ready()
    assert seen == [None]
    await zk.create(parent)
    await await_for(lambda: seen[-1] == [], "the parent's creation")
    await zk.create(f"{parent}/b")
    await zk.create(f"{parent}/a")
    await await_for(lambda: seen[-1] == ["a", "b"], "two children, sorted")
    await zk.delete(f"{parent}/a")
    await await_for(lambda: seen[-1] == ["b"], "one child left")
    watch.cancel()


async def test_watches_keep_firing_after_a_dropped_connection(
    bridges: BridgeFactory, paths: Paths, proxy: Proxy
) -> None:
    watcher = await bridges(proxy.hosts)
    writer = await bridges()
    path = f"{paths.root}/w"
    await writer.create(path, b"0")
    seen: list[bytes | None] = []
    kids: list[list[str] | None] = []
    await watcher.watch_data(path, seen.append).ready()
    await watcher.watch_children(paths.streams, kids.append).ready()
    states: list[ConnState] = []
    watcher.on_state(states.append)
    session = watcher.session_id

    proxy.cut()
    await await_for(lambda: ConnState.SUSPENDED in states, "SUSPENDED after the cut")
    await writer.set(path, b"changed while cut")
    proxy.heal()
    await await_for(lambda: watcher.connected, "reconnection")
    assert watcher.session_id == session and ConnState.LOST not in states
    await await_for(lambda: seen[-1] == b"changed while cut", "the change made while cut")

    await writer.set(path, b"after")
    await writer.create(f"{paths.streams}/s1")
    await await_for(lambda: seen[-1] == b"after", "a change after reconnecting")
    await await_for(lambda: kids[-1] == ["s1"], "a child added after reconnecting")


async def test_watches_keep_firing_after_session_expiry(
    bridges: BridgeFactory, paths: Paths, proxy: Proxy
) -> None:
    watcher = await bridges(proxy.hosts)
    writer = await bridges()
    path = f"{paths.root}/w"
    seen: list[bytes | None] = []
    await watcher.watch_data(path, seen.append).ready()
    old_session = watcher.session_id
    marker = await watcher.create(f"{paths.root}/marker", ephemeral=True)

    proxy.cut()
    await await_for(lambda: watcher.state is ConnState.LOST, "LOST", timeout=3 * SESSION_TIMEOUT)

    async def expired() -> bool:  # our LOST may come a tick before the server's expiry
        return await writer.exists(marker) is None

    await await_for(expired, "the server to expire the session", timeout=3 * SESSION_TIMEOUT)
    await writer.create(path, b"made during the outage")
    proxy.heal()
    await await_for(lambda: watcher.connected, "a new session", timeout=5 * SESSION_TIMEOUT)
    assert watcher.session_id != old_session
    await await_for(
        lambda: seen[-1] == b"made during the outage", "the change made during the outage"
    )
    await writer.set(path, b"later")
    await await_for(lambda: seen[-1] == b"later", "a change on the new session")
