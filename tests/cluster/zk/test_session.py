"""Session states, our own LOST timer, and ephemeral nodes that come back after expiry."""

from __future__ import annotations

import asyncio
import time

import pytest

from cluster.errors import ZkNodeExists
from cluster.paths import Paths
from cluster.zk.bridge import ZkBridge
from cluster.zk.state import ConnState
from tests.cluster.zk.conftest import SESSION_TIMEOUT, BridgeFactory
from tests.cluster.zk.proxy import Proxy
from tests.conftest import await_for
from zoocast.local.servers import ZooKeeperServer


async def test_suspended_beyond_the_timeout_becomes_lost(
    bridges: BridgeFactory, proxy: Proxy
) -> None:
    zk = await bridges(proxy.hosts)
    states: list[ConnState] = []
    zk.on_state(states.append)
    proxy.cut()
    await await_for(lambda: states == [ConnState.SUSPENDED], "SUSPENDED")
    suspended_at = time.monotonic()
    # Still cut off: kazoo alone would stay SUSPENDED forever; our timer says LOST.
    await await_for(lambda: ConnState.LOST in states, "LOST", timeout=3 * SESSION_TIMEOUT)
    assert time.monotonic() - suspended_at >= SESSION_TIMEOUT * 0.9
    proxy.heal()
    await await_for(lambda: states[-1] is ConnState.CONNECTED, "CONNECTED again", timeout=5)
    assert states == [ConnState.SUSPENDED, ConnState.LOST, ConnState.CONNECTED]


async def test_states_iterator_starts_with_the_current_state(
    bridges: BridgeFactory, proxy: Proxy
) -> None:
    zk = await bridges(proxy.hosts)
    changes = zk.states()
    assert await anext(changes) is ConnState.CONNECTED
    proxy.cut()
    assert await asyncio.wait_for(anext(changes), 5) is ConnState.SUSPENDED
    await changes.aclose()  # type: ignore[attr-defined]


async def test_ephemeral_comes_back_after_expiry_by_partition(
    bridges: BridgeFactory, paths: Paths, proxy: Proxy
) -> None:
    member = await bridges(proxy.hosts)
    observer = await bridges()
    path = paths.transcoder("t1")
    node = await member.ephemeral(path, b"v1")
    first = await observer.exists(path)
    assert first is not None and first.ephemeral_owner == member.session_id

    proxy.cut()
    # The server expires the session and drops the node while the member is still cut off.

    async def gone() -> bool:
        return await observer.exists(path) is None

    await await_for(gone, "the server to drop the node", timeout=5 * SESSION_TIMEOUT)
    await node.update(b"v2")  # while unregistered: published on re-registration
    proxy.heal()
    await await_for(lambda: node.is_registered, "re-registration", timeout=5 * SESSION_TIMEOUT)
    got = await observer.read(path)
    assert got is not None and got.data == b"v2"
    assert got.stat.ephemeral_owner == member.session_id != first.ephemeral_owner


async def test_ephemeral_comes_back_after_expiry_by_another_client(
    bridges: BridgeFactory, zk_server: ZooKeeperServer, paths: Paths
) -> None:
    member = await bridges()
    observer = await bridges()
    path = paths.edge("e1")
    node = await member.ephemeral(path, b"edge")
    states: list[ConnState] = []
    member.on_state(states.append)
    old = member.session_id

    # A second client joining the same session and closing it expires it for the first.
    assert member.client_id is not None
    thief = ZkBridge(zk_server.hosts, paths, SESSION_TIMEOUT, client_id=member.client_id)
    await thief.start()
    await thief.stop()

    await await_for(lambda: ConnState.LOST in states, "LOST", timeout=5 * SESSION_TIMEOUT)
    await await_for(
        lambda: member.connected and node.is_registered, "a new session and node", timeout=5
    )
    got = await observer.read(path)
    assert got is not None and got.data == b"edge"
    assert got.stat.ephemeral_owner == member.session_id != old
    await node.update(b"edge v2")
    got = await observer.read(path)
    assert got is not None and got.data == b"edge v2"


async def test_ephemeral_held_elsewhere(bridges: BridgeFactory, paths: Paths) -> None:
    first = await bridges()
    second = await bridges()
    path = paths.publisher("s1")
    held = await first.ephemeral(path, b"edge-a")
    with pytest.raises(ZkNodeExists):
        await second.ephemeral(path, b"edge-b")
    waiting = asyncio.create_task(second.ephemeral(path, b"edge-b", wait=True))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await held.remove()
    taken = await asyncio.wait_for(waiting, 5)
    assert taken.is_registered
    assert await first.get(path) == (b"edge-b", 0)
    await taken.remove()
    assert await first.exists(path) is None
