"""The pure reconcile over snapshots: balance, stickiness, failover once, drain, fast path, idle,
waiting, reconnects and stray assignments."""

from __future__ import annotations

import dataclasses

from cluster.payloads import Publisher
from coordinator.placement.reconcile import reconcile, stale_dirs
from coordinator.placement.snapshot import Snapshot
from tests.coordinator.sim import (
    apply,
    cluster,
    counts,
    node,
    placed_on,
    publisher,
    with_stream,
    without_node,
)

STREAMS = [f"s{i:03d}" for i in range(60)]


def settled(snap: Snapshot) -> Snapshot:
    snap = apply(snap, reconcile(snap))
    assert reconcile(snap) == [], "a second pass over its own result must change nothing"
    return snap


def test_new_streams_are_balanced_by_capacity() -> None:
    snap = cluster([node("a", 10), node("b", 20), node("c", 30)], STREAMS)
    changes = reconcile(snap)
    assert len(changes) == 60
    for change in changes:
        assert change.version == -1 and change.src is None and not change.unassign
        assert change.placement is not None and change.placement.epoch == 1
        assert change.placement.state == "placed"
        assert change.assignment is not None
        assert change.assignment.epoch == 1 and change.assignment.source == "e1:9000"
    assert counts(settled(snap)) == {"a": 10, "b": 20, "c": 30}


def test_the_assignment_carries_the_profile() -> None:
    snap = cluster([node("a")], ["s1"])
    snap = with_stream(snap, "s1", profile="tiny", cost=0.5)
    (change,) = reconcile(snap)
    assert change.assignment is not None and change.assignment.profile == "tiny"
    assert change.assignment.ladder is None
    publisher = snap.streams["s1"].publisher
    assert publisher is not None and change.assignment.session == publisher.session


def test_a_stream_created_again_starts_past_its_old_epochs() -> None:
    snap = with_stream(cluster([node("a")], ["s1"]), "s1", epoch_base=7)
    (change,) = reconcile(snap)
    assert change.placement is not None and change.placement.epoch == 8
    assert change.assignment is not None and change.assignment.epoch == 8


def test_the_assignment_carries_a_custom_ladder_whole() -> None:
    spec = {"name": "event", "rungs": [{"name": "480p", "height": 480, "video_kbps": 1200}]}
    snap = with_stream(cluster([node("a")], ["s1"]), "s1", profile="event", ladder=spec)
    (change,) = reconcile(snap)
    assert change.assignment is not None
    assert (change.assignment.profile, change.assignment.ladder) == ("event", spec)


def test_a_joining_node_moves_nothing() -> None:
    snap = settled(cluster([node("a"), node("b")], STREAMS[:12]))
    joined = dataclasses.replace(snap, transcoders={**snap.transcoders, "c": node("c")})
    assert reconcile(joined) == []


def test_every_stream_of_a_dead_node_moves_exactly_once() -> None:
    snap = settled(cluster([node("a", 40), node("b", 40), node("c", 40)], STREAMS))
    before = placed_on(snap)
    victims = {s for s, n in before.items() if n == "b"}
    assert len(victims) == 20

    dead = without_node(snap, "b")
    changes = reconcile(dead)
    moves, cleanup = changes[: len(victims)], changes[len(victims) :]
    assert sorted(c.stream for c in moves) == sorted(victims)
    # The dead node's assignments are deleted after every move, not as part of one.
    assert sorted(c.stream for c in cleanup) == sorted(victims)
    assert all(c.placement is None and c.unassign == ("b",) for c in cleanup)
    for change in moves:
        assert change.src == "b" and change.dst in {"a", "c"}
        assert change.unassign == ()
        assert change.placement is not None and change.placement.epoch == 2
        assert change.placement.history[0].src == "b"
        assert change.placement.reason == "transcoder b gone"
    after = settled(dead)
    assert counts(after) == {"a": 30, "c": 30}
    assert {s: n for s, n in placed_on(after).items() if s not in victims} == {
        s: n for s, n in before.items() if s not in victims
    }


def test_dead_node_without_room_elsewhere_waits_then_is_placed() -> None:
    snap = settled(cluster([node("a", 1), node("b", 1)], ["s1", "s2"]))
    dead = without_node(snap, "a")
    change, cleanup = reconcile(dead)
    assert change.placement is not None
    assert change.placement.state == "waiting" and change.dst is None
    assert change.unassign == () and (cleanup.placement, cleanup.unassign) == (None, ("a",))
    waiting = settled(dead)
    grown = dataclasses.replace(waiting, transcoders={**waiting.transcoders, "c": node("c", 1)})
    (change,) = reconcile(grown)
    assert change.dst == "c" and change.placement is not None
    assert change.placement.state == "placed" and change.placement.epoch == 3


def test_drain_moves_streams_to_nodes_with_room_or_keeps_them() -> None:
    snap = settled(cluster([node("a", 10), node("b", 10)], STREAMS[:10]))
    on_a = {s for s, n in placed_on(snap).items() if n == "a"}
    drained = dataclasses.replace(snap, drains=frozenset({"a"}))
    changes = reconcile(drained)
    assert {c.stream for c in changes} == on_a
    assert all(c.dst == "b" and c.unassign == ("a",) for c in changes)
    assert counts(settled(drained)) == {"a": 0, "b": 10}

    full = settled(cluster([node("a", 5), node("b", 5)], STREAMS[:10]))
    assert reconcile(dataclasses.replace(full, drains=frozenset({"a"}))) == []
    draining = dict(full.transcoders, a=node("a", 5, state="draining"))
    assert reconcile(dataclasses.replace(full, transcoders=draining)) == []


def test_drained_nodes_get_no_new_streams() -> None:
    snap = cluster([node("a"), node("b")], STREAMS[:4], drains=frozenset({"a"}))
    assert counts(settled(snap)) == {"a": 0, "b": 4}


def test_fast_path_moves_off_the_reported_node() -> None:
    snap = settled(cluster([node("a"), node("b")], ["s1"]))
    src = placed_on(snap)["s1"]
    assert src is not None
    epoch = snap.streams["s1"].placement.epoch  # type: ignore[union-attr]
    broken = with_stream(snap, "s1", publisher=publisher(broken_epoch=epoch))
    (change,) = reconcile(broken)
    assert change.src == src and change.dst not in {src, None}
    assert change.unassign == (src,)
    assert change.placement is not None and change.placement.epoch == epoch + 1
    assert "broken" in change.placement.reason
    # The report names the old epoch now: nothing more happens.
    assert reconcile(apply(broken, [change])) == []


def test_fast_path_with_one_node_restarts_in_place() -> None:
    snap = settled(cluster([node("a")], ["s1"]))
    broken = with_stream(snap, "s1", publisher=publisher(broken_epoch=1))
    (change,) = reconcile(broken)
    assert change.dst == "a" and change.overwrite and change.unassign == ()
    assert change.placement is not None and change.placement.epoch == 2
    stale = with_stream(snap, "s1", publisher=publisher(broken_epoch=0))
    assert reconcile(stale) == []


def test_publisher_gone_goes_idle_and_back() -> None:
    snap = settled(cluster([node("a")], ["s1", "s2"]))
    gone = with_stream(snap, "s1", publisher=None)
    (change,) = reconcile(gone)
    assert change.placement is not None
    assert (change.placement.state, change.dst, change.unassign) == ("idle", None, ("a",))
    idle = settled(gone)
    assert idle.assignments["a"] == {"s2"}
    back = with_stream(idle, "s1", publisher=publisher("e2"), publisher_czxid=10**9)
    (change,) = reconcile(back)
    assert change.dst == "a" and change.placement is not None
    assert change.placement.epoch == 3 and change.placement.reason == "new publisher"
    assert change.assignment is not None and change.assignment.source == "e2:9000"


def test_no_capacity_waits_and_is_retried() -> None:
    snap = cluster([node("a", 1)], ["s1", "s2"])
    snap = settled(snap)
    states = {s: v.placement.state for s, v in snap.streams.items()}  # type: ignore[union-attr]
    assert states == {"s1": "placed", "s2": "waiting"}
    assert snap.streams["s2"].placement.transcoder is None  # type: ignore[union-attr]
    freed = settled(with_stream(snap, "s1", publisher=None))
    assert freed.streams["s2"].placement.state == "placed"  # type: ignore[union-attr]


def test_reconnected_publisher_gets_a_new_epoch_on_the_same_node() -> None:
    snap = settled(cluster([node("a"), node("b")], STREAMS[:4]))
    view = snap.streams["s000"]
    moved = Publisher("e9", "new-session", "e9:9000")
    again = with_stream(snap, "s000", publisher=moved, publisher_czxid=view.placement_mzxid + 1)
    (change,) = reconcile(again)
    assert change.dst == view.placement.transcoder and change.overwrite  # type: ignore[union-attr]
    assert change.assignment is not None and change.assignment.source == "e9:9000"
    assert change.assignment.epoch == view.placement.epoch + 1  # type: ignore[union-attr]
    assert reconcile(apply(again, [change])) == []


def test_stray_and_orphan_assignments_are_removed() -> None:
    snap = settled(cluster([node("a"), node("b")], ["s1"]))
    home = placed_on(snap)["s1"]
    other = "b" if home == "a" else "a"
    stray = dataclasses.replace(
        snap,
        assignments={home: frozenset({"s1"}), other: frozenset({"s1", "deleted"})},  # type: ignore[dict-item]
    )
    changes = reconcile(stray)
    assert {(c.stream, c.placement, c.unassign) for c in changes} == {
        ("s1", None, (other,)),
        ("deleted", None, (other,)),
    }


def test_missing_assignment_is_restored_in_place() -> None:
    snap = settled(cluster([node("a")], ["s1"]))
    lost = dataclasses.replace(snap, assignments={"a": frozenset()})
    (change,) = reconcile(lost)
    assert change.dst == "a" and not change.overwrite
    assert change.placement is not None and change.placement.reason == "assignment missing"


def test_only_empty_directories_of_departed_nodes_are_stale() -> None:
    snap = settled(cluster([node("a")], ["s1"]))
    snap = dataclasses.replace(
        snap,
        assignments={
            **snap.assignments,
            "gone": frozenset(),
            "gone-busy": frozenset({"x"}),
            "b": frozenset(),
        },
        transcoders={**snap.transcoders, "b": node("b")},
    )
    assert stale_dirs(snap) == ["gone"]
