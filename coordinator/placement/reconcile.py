"""Reconcile: a snapshot of the cluster in, the placement changes to write out. Pure.

Sticky by design: a valid placement is never touched, so a joining transcoder moves nothing and
a dying one moves exactly its own streams. A placed stream moves only when

    its transcoder's znode is gone                   anywhere with room
    the edge reported the link of this epoch broken  anywhere else with room, else anywhere
    its publisher reconnected (a newer znode)        the same transcoder, at a new epoch
    its transcoder is draining                       anywhere with room, else it stays
    its assignment znode is missing                  the same transcoder, at a new epoch

Deleting a dead transcoder's assignments is not part of a move: nobody reads them, and leaving
them out takes a third of the ZooKeeper operations off the failover's critical path. They come
back as separate clean-up changes at the end of the list, for the leader to write after the moves.

A stream whose publisher left goes "idle" (transcoder None, assignment removed); one that finds
no room is "waiting" and is tried again on every pass, so new capacity picks it up. Every move is
Placement.moved(): epoch + 1, recorded in the history.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import NamedTuple

from cluster.payloads import Assignment, Placement
from coordinator.placement.policy import NodeLoad, select
from coordinator.placement.snapshot import Change, Snapshot, StreamView


def reconcile(
    snap: Snapshot, only: frozenset[str] | None = None, at: float | None = None
) -> list[Change]:
    """The changes that bring placements in line with `snap`. With `only`, just those streams
    are looked at (the others still count towards the load); `at` stamps the moves (default:
    now)."""
    planner = _Planner(snap, at)
    changes: list[Change] = []
    live: list[StreamView] = []
    # Streams leaving first, so the capacity they free is there for the streams placed after.
    for name in sorted(snap.streams if only is None else only & snap.streams.keys()):
        stream = snap.streams[name]
        if stream.publisher is None:
            changes.extend(planner.release(stream))
        else:
            live.append(stream)
    for stream in live:
        changes.extend(planner.place(stream))
    if only is None:
        changes.extend(_orphans(snap))
    return changes + planner.later


class _Why(NamedTuple):
    """Why a placed stream must move, and where it may go."""

    reason: str
    avoid: tuple[str, ...] = ()  # nodes to leave out if any other has room
    same_node: bool = False  # re-assign in place when its node still serves
    stay_if_full: bool = False  # no room elsewhere: keep it as it is


class _Planner:
    def __init__(self, snap: Snapshot, at: float | None = None) -> None:
        self.snap = snap
        self.at = at
        self.later: list[Change] = []  # clean-up to write after every move
        committed: dict[str, float] = dict.fromkeys(snap.transcoders, 0.0)
        for stream in snap.streams.values():
            node = placed_on(stream)
            if node in committed:
                committed[node] += stream.cost
        # Built once and replaced per change: select() runs for every stream that moves.
        self.loads = {
            name: NodeLoad(name, info.capacity, committed[name], snap.serving(name))
            for name, info in snap.transcoders.items()
        }

    def select(self, cost: float, exclude: tuple[str, ...] = ()) -> str | None:
        return select(self.loads.values(), cost, exclude)

    def alive(self, node: str | None) -> bool:
        return node in self.loads

    def commit(self, node: str | None, cost: float) -> None:
        """Account `cost` more (or less) on `node`, if it is alive."""
        load = self.loads.get(node) if node else None
        if load is not None:
            self.loads[load.name] = dataclasses.replace(load, committed=load.committed + cost)

    def release(self, stream: StreamView) -> list[Change]:
        """A stream without a publisher: idle, nothing assigned anywhere."""
        holders = self.snap.holders(stream.name)
        placement = stream.placement
        if placement is None or placement.state == "idle":
            return _tidy(stream, holders, keep=None)
        node = placed_on(stream)
        self.commit(node, -stream.cost)
        new = placement.moved(None, "idle", "publisher gone", self.at)
        return [
            Change(stream.name, new, stream.placement_version, unassign=_sorted(holders), src=node)
        ]

    def place(self, stream: StreamView) -> list[Change]:
        """A stream with a publisher: placed where it is, moved, placed anew or waiting."""
        holders = self.snap.holders(stream.name)
        current = placed_on(stream)
        if current is not None:
            return self._move(stream, current, holders)
        dst = self.select(stream.cost)
        if dst is None:
            if stream.placement is not None and stream.placement.state == "waiting":
                return _tidy(stream, holders, keep=None)
            return [self._write(stream, None, "no transcoder has room", holders)]
        first = stream.placement is None or stream.placement.state == "idle"
        return [self._write(stream, dst, "new publisher" if first else "room found", holders)]

    def _move(self, stream: StreamView, current: str, holders: set[str]) -> list[Change]:
        why = self._why_move(stream, current, holders)
        if why is None:
            return _tidy(stream, holders, keep=current)
        alive = self.alive(current)
        self.commit(current, -stream.cost)
        if why.same_node and self.snap.serving(current):
            dst: str | None = current
        else:
            dst = self.select(stream.cost, why.avoid)
        if dst is None and why.avoid:
            dst = self.select(stream.cost)  # the reported node is the only one left
        if dst is None and alive:
            if why.stay_if_full:
                self.commit(current, stream.cost)
                return _tidy(stream, holders, keep=current)
            dst = current  # it must restart at a new epoch, and its node is alive
        reason = why.reason if dst else f"{why.reason}; no transcoder has room"
        return [self._write(stream, dst, reason, holders)]

    def _why_move(self, stream: StreamView, current: str, holders: set[str]) -> _Why | None:
        placement, publisher = stream.placement, stream.publisher
        assert placement is not None and publisher is not None
        if current not in self.snap.transcoders:
            return _Why(f"transcoder {current} gone")
        if publisher.broken_epoch == placement.epoch:
            return _Why(f"edge reported the link to {current} broken", avoid=(current,))
        if stream.publisher_czxid > stream.placement_mzxid:
            # The publisher znode is newer than the placement: a new session, maybe a new edge,
            # so the transcoder must pull from the new Publisher.media_addr at a new epoch.
            return _Why("publisher reconnected", same_node=True)
        if self.snap.draining(current):
            return _Why(f"draining {current}", stay_if_full=True)
        if current not in holders:
            return _Why("assignment missing", same_node=True)
        return None

    def _write(self, stream: StreamView, dst: str | None, reason: str, holders: set[str]) -> Change:
        # A stream's first placement is epoch_base + 1 (1 for a name never used before).
        base = stream.placement or Placement(None, stream.epoch_base, "idle", "registered")
        new = base.moved(dst, "placed" if dst else "waiting", reason, self.at)
        assignment = None
        if dst is not None:
            assert stream.publisher is not None
            self.commit(dst, stream.cost)
            assignment = Assignment(
                stream.name,
                new.epoch,
                stream.publisher.media_addr,
                stream.profile,
                stream.ladder,
                stream.publisher.session,
            )
        stale = holders - {dst} if dst else holders
        dead = {node for node in stale if node not in self.snap.transcoders}
        if dead:
            self.later.append(Change(stream.name, None, unassign=_sorted(dead)))
        return Change(
            stream.name,
            new,
            stream.placement_version,
            assignment,
            overwrite=dst in holders,
            unassign=_sorted(stale - dead),
            src=placed_on(stream),
        )


def stale_dirs(snap: Snapshot) -> list[str]:
    """Assignment directories of transcoders that are gone and hold nothing.

    Transcoders that come back after a session loss register under a new node id, so without
    this the leader would watch one more empty directory for every such restart, forever.
    """
    return sorted(
        n for n, held in snap.assignments.items() if not held and n not in snap.transcoders
    )


def placed_on(stream: StreamView) -> str | None:
    placement = stream.placement
    if placement is None or placement.state != "placed":
        return None
    return placement.transcoder


def _tidy(stream: StreamView, holders: set[str], keep: str | None) -> list[Change]:
    """Remove assignments the placement does not account for (nothing else changes)."""
    stray = holders - {keep} if keep else holders
    return [Change(stream.name, None, unassign=_sorted(stray))] if stray else []


def _orphans(snap: Snapshot) -> list[Change]:
    """Assignments of streams that were deleted from the registry."""
    gone: defaultdict[str, set[str]] = defaultdict(set)
    for node, streams in snap.assignments.items():
        for stream in streams - snap.registered:
            gone[stream].add(node)
    return [Change(stream, None, unassign=_sorted(nodes)) for stream, nodes in sorted(gone.items())]


def _sorted(nodes: set[str]) -> tuple[str, ...]:
    return tuple(sorted(nodes))
