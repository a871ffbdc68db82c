"""Standby plans (pure): the moves a transcoder's death calls for, decided ahead, and when they hold."""

from __future__ import annotations

import dataclasses

from coordinator.placement.reconcile import reconcile
from coordinator.placement.snapshot import Snapshot
from coordinator.placement.standby import PLAN_AT, carriers, fingerprint, plan
from tests.coordinator.sim import (
    apply,
    cluster,
    node,
    placed_on,
    publisher,
    with_stream,
    without_node,
)

STREAMS = [f"s{i:03d}" for i in range(40)]


def settled() -> Snapshot:
    snap = cluster([node("a", 30), node("b", 30), node("c", 30)], STREAMS)
    return apply(snap, reconcile(snap))


def test_a_plan_is_what_reconcile_decides_once_the_node_is_gone() -> None:
    snap = settled()
    assert carriers(snap) == {"a", "b", "c"}
    p = plan(snap, "b")
    live = [c for c in reconcile(without_node(snap, "b")) if c.placement is not None]
    assert [(c.stream, c.dst, c.version) for c in p.moves] == [
        (c.stream, c.dst, c.version) for c in live
    ]
    assert {c.stream for c in p.moves} == {s for s, n in placed_on(snap).items() if n == "b"}
    assert all(c.placement is not None and c.placement.updated_at == PLAN_AT for c in p.moves)
    # Prepared moves leave the dead node's assignments to the clean-up, as reconcile does.
    assert all(c.unassign == () for c in p.moves)


def test_the_fingerprint_holds_only_while_the_inputs_hold() -> None:
    snap = settled()
    base = fingerprint(snap, "b")
    assert fingerprint(without_node(snap, "b"), "b") == base  # the death itself changes nothing
    load_report = {**snap.transcoders, "a": dataclasses.replace(snap.transcoders["a"], load=7.0)}
    assert fingerprint(dataclasses.replace(snap, transcoders=load_report), "b") == base
    changed = [
        dataclasses.replace(snap, drains=frozenset({"a"})),
        with_stream(snap, "s001", placement_version=snap.streams["s001"].placement_version + 1),
        with_stream(snap, "s002", publisher=publisher(broken_epoch=1)),
        with_stream(snap, "s003", publisher=None),
        dataclasses.replace(snap, transcoders={**snap.transcoders, "a": node("a", 31)}),  # capacity
        dataclasses.replace(snap, transcoders={**snap.transcoders, "d": node("d", 30)}),
    ]
    for other in changed:
        assert fingerprint(other, "b") != base
