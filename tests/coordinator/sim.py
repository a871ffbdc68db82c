"""Builders for pure reconcile tests: snapshots, and applying changes the way ZooKeeper would."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable

from cluster.payloads import Publisher, TranscoderInfo
from coordinator.placement.snapshot import Change, Snapshot, StreamView

_zxid = itertools.count(1000)


def node(name: str, capacity: float = 10.0, state: str = "serving") -> TranscoderInfo:
    return TranscoderInfo(name, f"http://{name}", f"{name}:9000", capacity, state=state)


def publisher(edge: str = "e1", broken_epoch: int = 0) -> Publisher:
    return Publisher(edge, f"{edge}-session", f"{edge}:9000", broken_epoch=broken_epoch)


def cluster(nodes: Iterable[TranscoderInfo], streams: Iterable[str], **kw: object) -> Snapshot:
    """Registered streams, each with a fresh publisher and no placement yet."""
    views = {s: StreamView(s, publisher=publisher(), publisher_czxid=next(_zxid)) for s in streams}
    return Snapshot(
        transcoders={n.node: n for n in nodes},
        streams=views,
        registered=frozenset(views),
        **kw,  # type: ignore[arg-type]
    )


def apply(snap: Snapshot, changes: Iterable[Change]) -> Snapshot:
    """The snapshot after `changes` commit (one zxid, as one multi())."""
    zxid = next(_zxid)
    streams = dict(snap.streams)
    assignments = {n: set(s) for n, s in snap.assignments.items()}
    for change in changes:
        for n in change.unassign:
            assignments[n].discard(change.stream)
        if change.placement is None:
            continue
        view = streams[change.stream]
        assert change.version == view.placement_version, "compare-and-set would lose"
        streams[change.stream] = dataclasses.replace(
            view,
            placement=change.placement,
            placement_version=view.placement_version + 1,
            placement_mzxid=zxid,
        )
        if change.dst is not None:
            assert change.overwrite == (change.stream in assignments.get(change.dst, set()))
            assignments.setdefault(change.dst, set()).add(change.stream)
    return dataclasses.replace(
        snap,
        streams=streams,
        assignments={n: frozenset(s) for n, s in assignments.items()},
    )


def placed_on(snap: Snapshot) -> dict[str, str | None]:
    return {
        s: v.placement.transcoder if v.placement else None for s, v in sorted(snap.streams.items())
    }


def counts(snap: Snapshot) -> dict[str, int]:
    out = dict.fromkeys(snap.transcoders, 0)
    for dst in placed_on(snap).values():
        if dst is not None:
            out[dst] = out.get(dst, 0) + 1
    return out


def without_node(snap: Snapshot, name: str) -> Snapshot:
    return dataclasses.replace(
        snap, transcoders={n: i for n, i in snap.transcoders.items() if n != name}
    )


def with_stream(snap: Snapshot, name: str, **changes: object) -> Snapshot:
    streams = dict(snap.streams)
    streams[name] = dataclasses.replace(streams[name], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(snap, streams=streams)
