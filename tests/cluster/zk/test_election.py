"""Election: exactly one leader; a closed, resigned or cut-off leader is replaced."""

from __future__ import annotations

import asyncio

from cluster.zk.bridge import ZkBridge
from cluster.zk.election import Election
from tests.cluster.zk.conftest import SESSION_TIMEOUT, BridgeFactory
from tests.cluster.zk.proxy import Proxy
from tests.conftest import await_for


def _join(zk: ZkBridge, name: str) -> tuple[Election, list[bool]]:
    changes: list[bool] = []
    return zk.election(name.encode(), changes.append), changes


async def test_one_leads_and_the_other_takes_over_when_it_closes(bridges: BridgeFactory) -> None:
    a, b = await bridges(), await bridges()
    ea, ca = _join(a, "a")
    await await_for(lambda: ea.leading, "a to lead")
    eb, cb = _join(b, "b")
    await await_for(lambda: eb.candidate is not None, "b to become a candidate")
    assert not eb.leading and cb == []

    await a.stop()  # closing the session removes a's candidate node at once
    assert ca == [True, False]
    await await_for(lambda: eb.leading, "b to take over", timeout=2)
    assert cb == [True]


async def test_resign_hands_over_in_order(bridges: BridgeFactory) -> None:
    a, b, c = await bridges(), await bridges(), await bridges()
    ea, _ = _join(a, "a")
    await await_for(lambda: ea.leading, "a to lead")
    eb, _ = _join(b, "b")
    await await_for(lambda: eb.candidate is not None, "b to queue")
    ec, _ = _join(c, "c")
    await await_for(lambda: ec.candidate is not None, "c to queue")
    await ea.resign()
    await await_for(lambda: eb.leading, "b, next in line, to lead")
    assert not ec.leading
    await eb.resign()
    await await_for(lambda: ec.leading, "c to lead")


async def test_a_cut_off_leader_steps_down_and_is_replaced(
    bridges: BridgeFactory, proxy: Proxy
) -> None:
    a, b = await bridges(proxy.hosts), await bridges()
    ea, ca = _join(a, "a")
    await await_for(lambda: ea.leading, "a to lead")
    eb, _ = _join(b, "b")
    await await_for(lambda: eb.candidate is not None, "b to queue")

    proxy.cut()
    await await_for(lambda: not ea.leading, "a to step down", timeout=3 * SESSION_TIMEOUT)
    await await_for(lambda: eb.leading, "b to take over", timeout=3 * SESSION_TIMEOUT)
    proxy.heal()

    async def rejoined() -> bool:  # a candidate node of a's new session, queued behind b
        stat = await b.exists(ea.candidate) if a.connected and ea.candidate else None
        return stat is not None and stat.ephemeral_owner == a.session_id

    await await_for(rejoined, "a to rejoin on a new session", timeout=5)
    await asyncio.sleep(0.3)
    assert eb.leading and not ea.leading
    assert ca == [True, False]
