"""Standby plans (pure): what each transcoder's death would call for, decided before it happens.

When a loaded transcoder dies, deciding where a thousand streams go and encoding a thousand
placements takes longer than ZooKeeper takes to write them. So while the cluster is settled the
leader decides it ahead, for every transcoder that carries streams: the moves reconcile would
make if that transcoder vanished now. A plan holds for as long as nothing it was decided from
has changed; `fingerprint` sums that up (every other transcoder's capacity and state, drains,
every stream's placement version, cost and publisher, the assignments), so at detection one
comparison says whether the plan may be written as it is. Anything else (a report of a broken
link, a drain, a stream that came or went) falls back to reconciling afresh.

Prepared moves carry the stamp `PLAN_AT` until they are written; the leader puts the real time
in then.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from coordinator.placement.reconcile import placed_on, reconcile
from coordinator.placement.snapshot import Change, Snapshot

PLAN_AT = 4102444800.0  # 2100-01-01T00:00:00Z: never the time of a real move


@dataclass(frozen=True)
class Plan:
    node: str
    fingerprint: int
    moves: list[Change]


def plan(snap: Snapshot, node: str) -> Plan:
    """The moves of `node`'s streams if `node` vanished from `snap` (a settled snapshot)."""
    others = {n: info for n, info in snap.transcoders.items() if n != node}
    theirs = frozenset(s for s, v in snap.streams.items() if placed_on(v) == node)
    changes = reconcile(dataclasses.replace(snap, transcoders=others), only=theirs, at=PLAN_AT)
    moves = [c for c in changes if c.placement is not None]
    return Plan(node, fingerprint(snap, node), moves)


def fingerprint(snap: Snapshot, without: str) -> int:
    """Everything a plan for `without`'s death depends on, hashed; `without` itself left out."""
    transcoders = tuple(
        sorted((n, i.capacity, i.state) for n, i in snap.transcoders.items() if n != without)
    )
    streams = tuple(
        (
            n,
            v.cost,
            v.profile,
            v.placement_version,
            v.publisher_czxid,
            None if v.publisher is None else (v.publisher.media_addr, v.publisher.broken_epoch),
        )
        for n, v in sorted(snap.streams.items())
    )
    assignments = tuple(sorted((n, hash(s)) for n, s in snap.assignments.items()))
    return hash((transcoders, snap.drains, streams, assignments, snap.registered))


def carriers(snap: Snapshot) -> set[str]:
    """Transcoders that carry at least one stream: the ones worth a plan."""
    return {node for v in snap.streams.values() if (node := placed_on(v)) is not None}
