"""The leader against a real ZooKeeper with simulated transcoders and publishers."""

from __future__ import annotations

import asyncio
import time

from cluster.payloads import DrainMarker, LeaderInfo
from coordinator.placement.standby import PLAN_AT
from tests.conftest import await_for
from tests.coordinator.conftest import SESSION_TIMEOUT, SimCluster

STREAMS = [f"s{i}" for i in range(12)]


async def _publish_all(sim: SimCluster, streams: list[str]) -> None:
    for stream in streams:
        await sim.stream(stream)
        await sim.publish(stream)


async def test_streams_get_placed_and_assigned(sim: SimCluster) -> None:
    await sim.transcoder("t1", capacity=10)
    await sim.transcoder("t2", capacity=20)
    await _publish_all(sim, STREAMS)
    leader = await sim.coordinator("c1")
    placements = await await_for(lambda: sim.settled(STREAMS), "every stream placed")
    per_node = {n: sum(p.transcoder == n for p in placements.values()) for n in ("t1", "t2")}
    assert per_node == {"t1": 4, "t2": 8}  # balanced by capacity
    assignments = await sim.assignments()
    assert {a.source for held in assignments.values() for a in held.values()} == {"e1:9000"}
    got = await sim.admin.get(sim.paths.leader)
    assert got is not None and LeaderInfo.parse(got[0]).node == "c1"
    assert leader.leading and leader.metrics()["coordinator_streams"] == len(STREAMS)

    # A stream published later is placed too; a joining node moves nothing.
    await sim.transcoder("t3", capacity=10)
    await _publish_all(sim, ["late"])
    after = await await_for(lambda: sim.settled([*STREAMS, "late"]), "the late stream placed")
    assert {s: after[s] for s in STREAMS} == placements


async def test_a_dead_transcoders_streams_move_once(sim: SimCluster) -> None:
    await sim.transcoder("t1", capacity=len(STREAMS))
    t2 = await sim.transcoder("t2", capacity=len(STREAMS))
    await sim.transcoder("t3", capacity=0.5)  # too small for any stream
    await _publish_all(sim, STREAMS)
    await sim.coordinator("c1")
    before = await await_for(lambda: sim.settled(STREAMS), "every stream placed")
    victims = sorted(s for s, p in before.items() if p.transcoder == "t2")
    assert victims

    sim.members["t2"].cancel()  # a dead process does not register again
    await sim.expire(t2)

    after = await await_for(
        lambda: _all_on(sim, STREAMS, "t1"), "t2's streams on t1", timeout=5 * SESSION_TIMEOUT
    )
    for stream in STREAMS:
        if stream in victims:
            assert after[stream].epoch == 2
            assert [m.src for m in after[stream].history] == ["t2", None]
        else:
            assert after[stream] == before[stream]

    async def pruned() -> bool:  # the departed node's empty directory is removed
        return "t2" not in await sim.admin.children(sim.paths.assignments)

    await await_for(pruned, "t2's assignment directory to go")


async def test_a_dead_transcoder_is_handled_by_its_standby_plan(sim: SimCluster) -> None:
    await sim.transcoder("t1", capacity=len(STREAMS))
    t2 = await sim.transcoder("t2", capacity=len(STREAMS))
    await _publish_all(sim, STREAMS)
    leader = await sim.coordinator("c1")
    before = await await_for(lambda: sim.settled(STREAMS), "every stream placed")
    victims = sorted(s for s, p in before.items() if p.transcoder == "t2")
    assert victims
    await await_for(
        lambda: leader.metrics()["coordinator_standby_plans"] == 2, "a plan for each carrier"
    )
    started = time.time()
    sim.members["t2"].cancel()
    await sim.expire(t2)

    after = await await_for(
        lambda: _all_on(sim, STREAMS, "t1"), "t2's streams on t1", timeout=5 * SESSION_TIMEOUT
    )
    assert leader.plans_followed == 1
    for stream in victims:
        p = after[stream]
        assert p.epoch == 2 and p.history[0].src == "t2" and p.reason == "transcoder t2 gone"
        # The prepared move carries the time it was written, not the placeholder.
        assert p.updated_at == p.history[0].at and started <= p.updated_at < PLAN_AT
    held = (await sim.assignments())["t1"]
    assert {s: a.epoch for s, a in held.items()} == {s: after[s].epoch for s in STREAMS}
    assert await sim.placed_twice() == []

    async def pruned() -> bool:  # the clean-up still runs after the prepared moves
        return "t2" not in await sim.admin.children(sim.paths.assignments)

    await await_for(pruned, "t2's assignment directory to go")


async def test_idle_fast_path_and_drain(sim: SimCluster) -> None:
    await sim.transcoder("t1")
    await sim.transcoder("t2")
    await _publish_all(sim, ["a", "b"])
    await sim.coordinator("c1")
    placed = await await_for(lambda: sim.settled(["a", "b"]), "both placed")

    await sim.unpublish("b")

    async def idle() -> bool:
        p = await sim.placement("b")
        return p is not None and p.state == "idle" and p.transcoder is None

    await await_for(idle, "b idle")
    assert all("b" not in held for held in (await sim.assignments()).values())

    src = placed["a"].transcoder
    await sim.publish("a", broken_epoch=placed["a"].epoch)
    moved = await await_for(lambda: _moved(sim, "a", placed["a"].epoch), "the fast path to move a")
    assert moved.transcoder != src and "broken" in moved.reason

    await sim.admin.create(sim.paths.drain(moved.transcoder or ""), bytes(DrainMarker()))
    drained = await await_for(lambda: _moved(sim, "a", moved.epoch), "the drain to move a")
    assert drained.transcoder == src


async def test_no_capacity_waits_until_a_transcoder_joins(sim: SimCluster) -> None:
    await _publish_all(sim, ["a"])
    await sim.coordinator("c1")

    async def waiting() -> bool:
        p = await sim.placement("a")
        return p is not None and p.state == "waiting"

    await await_for(waiting, "a waiting")
    await sim.transcoder("t1")
    await await_for(lambda: sim.settled(["a"]), "a placed on the new transcoder")


async def test_standby_takes_over_and_nothing_is_ever_placed_twice(sim: SimCluster) -> None:
    await sim.transcoder("t1")
    t2 = await sim.transcoder("t2")
    await sim.transcoder("t3")
    await _publish_all(sim, STREAMS)
    first = await sim.coordinator("c1")
    first_zk = sim.bridges[-1]
    await await_for(lambda: first.leading, "c1 to lead")
    second = await sim.coordinator("c2")
    placed = await await_for(lambda: sim.settled(STREAMS), "every stream placed")
    versions = {s: (await sim.admin.get(sim.paths.placement(s)) or (b"", -1))[1] for s in STREAMS}

    violations: list[str] = []
    epochs: dict[str, int] = {}

    async def sample() -> None:
        while True:
            violations.extend(await sim.placed_twice())
            for stream in STREAMS:
                p = await sim.placement(stream)
                if p is not None:
                    if p.epoch < epochs.get(stream, 0):
                        violations.append(f"{stream} epoch went back")
                    epochs[stream] = p.epoch
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    try:
        await first.stop()
        await first_zk.stop()
        await await_for(lambda: second.leading, "c2 to take over", timeout=2)
        got = await await_for(lambda: sim.admin.get(sim.paths.leader), "the new leader's znode")
        assert LeaderInfo.parse(got[0]).node == "c2"
        await asyncio.sleep(0.3)
        # The new leader touched nothing that needed no change.
        for stream in STREAMS:
            assert (await sim.admin.get(sim.paths.placement(stream)) or (b"", -1))[1] == versions[
                stream
            ]

        await t2.stop()  # a transcoder dies under the new leader
        after = await await_for(
            lambda: _none_on(sim, STREAMS, "t2"), "t2's streams moved by c2", timeout=5
        )
        for stream, p in after.items():
            assert p.epoch == placed[stream].epoch + (placed[stream].transcoder == "t2")
    finally:
        sampler.cancel()
        await asyncio.wait([sampler])
    assert violations == []


async def _all_on(sim: SimCluster, streams: list[str], node: str):  # type: ignore[no-untyped-def]
    placements = await sim.settled(streams)
    return (
        placements if placements and all(p.transcoder == node for p in placements.values()) else {}
    )


async def _none_on(sim: SimCluster, streams: list[str], node: str):  # type: ignore[no-untyped-def]
    placements = await sim.settled(streams)
    return (
        placements if placements and all(p.transcoder != node for p in placements.values()) else {}
    )


async def _moved(sim: SimCluster, stream: str, past_epoch: int):  # type: ignore[no-untyped-def]
    placements = await sim.settled([stream])
    p = placements.get(stream)
    return p if p is not None and p.epoch > past_epoch else None


async def test_unreadable_payloads_are_left_alone(sim: SimCluster) -> None:
    await sim.transcoder("t1")
    await _publish_all(sim, ["a"])
    await sim.coordinator("c1")
    placed = await await_for(lambda: sim.settled(["a"]), "a placed")
    assert placed["a"].transcoder == "t1"

    # A payload version we do not know (a rolling upgrade): t1 keeps its stream, gets no new one.
    await sim.members["t1"].update(b'{"v": 99}')
    await sim.transcoder("t2")
    await _publish_all(sim, ["b"])
    later = await await_for(lambda: sim.settled(["a", "b"]), "b placed")
    assert later["a"] == placed["a"] and later["b"].transcoder == "t2"

    # An unreadable publisher does not make its stream idle.
    await sim.publishers["a"].update(b"garbage")
    await asyncio.sleep(0.3)
    assert await sim.placement("a") == placed["a"]
