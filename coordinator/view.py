"""The leader's mirror of the tree: watches in, a Snapshot for the pure reconcile out.

Built afresh for every term of leadership (from ZooKeeper, not from what a previous term
believed) and dropped when the term ends. Watches: /transcoders children and each transcoder's
data, /drain children, /streams children and each stream's record and publisher, /assignments
children and each node's children. A stream enters snapshots only once its record, publisher and
placement have been read, so a half-loaded stream is never mistaken for one without a publisher
or placement.

Placements are read once, not watched: the leader is their only writer, and it records its own
commits (`committed`). Watching them would echo every write back as an event and a re-read,
a thousand of them when a loaded transcoder dies, all competing with the pass that made them.
A placement changed behind our back (a predecessor's write still in flight, a stream deleted
and re-created) makes our next compare-and-set lose, and `refresh` re-reads it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from cluster.errors import BadRequest, ZkUnavailable
from cluster.ladder import ladder, resolve
from cluster.payloads import Placement, Publisher, StreamRecord, TranscoderInfo
from cluster.zk.bridge import ZkBridge
from cluster.zk.ops import Node
from coordinator.placement.snapshot import Change, Snapshot, StreamView

log = logging.getLogger(__name__)


class _Watch(Protocol):
    @property
    def is_ready(self) -> bool: ...
    async def ready(self) -> None: ...
    def cancel(self) -> None: ...


class _Read:
    """A one-time read that start() can wait for like a watch's first delivery."""

    def __init__(self, read: Coroutine[Any, Any, None]) -> None:
        self._task = asyncio.ensure_future(read)

    @property
    def is_ready(self) -> bool:
        return self._task.done()

    async def ready(self) -> None:
        await asyncio.wait([self._task])

    def cancel(self) -> None:
        self._task.cancel()


@dataclasses.dataclass
class _Stream:
    view: StreamView
    record: StreamRecord | None = None
    unread: set[str] = dataclasses.field(default_factory=lambda: {"record", "pub", "placement"})
    # Parts present but unreadable (say, a newer payload version during a rolling upgrade): the
    # stream is left alone rather than judged on a guess.
    unreadable: set[str] = dataclasses.field(default_factory=set)

    @property
    def known(self) -> bool:
        return not self.unread and not self.unreadable and self.record is not None


class View:
    def __init__(self, zk: ZkBridge, on_change: Callable[[], None]) -> None:
        self._zk = zk
        self._paths = zk.paths
        self._on_change = on_change
        # Watches by (kind, name): kind "root" for the parents, else the kind of child followed.
        self._watches: dict[tuple[str, str], list[_Watch]] = {}
        self._children: dict[str, set[str]] = {"transcoder": set(), "stream": set(), "node": set()}
        self._transcoders: dict[str, TranscoderInfo] = {}
        self._drains: frozenset[str] = frozenset()
        self._streams: dict[str, _Stream] = {}
        self._assignments: dict[str, set[str]] = {}

    async def start(self) -> None:
        """Watch the roots, then wait until every znode found so far has been read once."""
        p, zk = self._paths, self._zk
        self._watches[("root", "")] = [
            zk.watch_children(p.transcoders, self._on_transcoders),
            zk.watch_children(p.drains, self._on_drains),
            zk.watch_children(p.streams, self._on_streams),
            zk.watch_children(p.assignments, self._on_assignment_dirs),
        ]
        while pending := [w for ws in self._watches.values() for w in ws if not w.is_ready]:
            # Reading a parent starts watches on its children: loop until nothing new appears.
            await asyncio.gather(*(w.ready() for w in pending))

    def stop(self) -> None:
        for watches in self._watches.values():
            for watch in watches:
                watch.cancel()
        self._watches.clear()

    def snapshot(self) -> Snapshot:
        return Snapshot(
            transcoders=dict(self._transcoders),
            drains=self._drains,
            streams={n: s.view for n, s in self._streams.items() if s.known},
            registered=frozenset(self._children["stream"]),
            assignments={n: frozenset(s) for n, s in self._assignments.items()},
        )

    @property
    def assignment_dirs(self) -> frozenset[str]:
        return frozenset(self._assignments)

    # -- our own writes, known before the watches report them --------------------------------

    def committed(self, change: Change, zxid: int | None) -> None:
        """Account for a change that committed, so the next pass compares against it."""
        for node in change.unassign:
            self._assignments.get(node, set()).discard(change.stream)
        stream = self._streams.get(change.stream)
        if change.placement is None or stream is None:
            return
        if change.dst is not None:
            self._assignments.setdefault(change.dst, set()).add(change.stream)
        view = stream.view
        # Without the multi's zxid, the publisher's czxid is a sound lower bound: the placement
        # was written after that publisher was seen, which is all the reconnect check needs.
        mzxid = zxid if zxid is not None else max(view.placement_mzxid, view.publisher_czxid)
        stream.view = dataclasses.replace(
            view,
            placement=change.placement,
            placement_version=view.placement_version + 1,
            placement_mzxid=mzxid,
        )

    def forget_dir(self, node: str) -> None:
        """We deleted /assignments/{node}; its watch will say so too, a little later."""
        self._assignments.pop(node, None)

    async def refresh(self, change: Change) -> None:
        """Re-read what a failed change touched: our view of it was stale."""
        node = await self._zk.read(self._paths.placement(change.stream))
        self._set_placement(change.stream, node)
        for name in {*change.unassign, *([change.dst] if change.dst else [])}:
            path = self._paths.assignment(name, change.stream)
            exists = await self._zk.exists(path) is not None
            held = self._assignments.get(name)
            if held is None:
                # Not a directory we know of (maybe it was removed under us): the next apply
                # creates it if needed; inventing an entry here would stop it from doing so.
                if exists:
                    self._assignments[name] = {change.stream}
            elif exists:
                held.add(change.stream)
            else:
                held.discard(change.stream)

    # -- following children ----------------------------------------------------------------------

    def _follow(
        self, kind: str, names: list[str] | None, start: Callable[[str], list[_Watch]]
    ) -> set[str]:
        """Start watches for new children, cancel those of departed ones; returns the departed."""
        new, old = set(names or []), self._children[kind]
        for name in new - old:
            self._watches[(kind, name)] = start(name)
        for name in old - new:
            for watch in self._watches.pop((kind, name), []):
                watch.cancel()
        self._children[kind] = new
        return old - new

    def _on_transcoders(self, names: list[str] | None) -> None:
        for name in self._follow("transcoder", names, self._watch_transcoder):
            self._transcoders.pop(name, None)  # detection: gone before its data watch says so
        self._on_change()

    def _watch_transcoder(self, name: str) -> list[_Watch]:
        path = self._paths.transcoder(name)
        return [self._zk.watch_node(path, lambda n: self._on_transcoder(name, n))]

    def _on_transcoder(self, name: str, node: Node | None) -> None:
        try:
            info = _parse(TranscoderInfo, node, name)
        except _Unreadable:
            # Alive, but with no room we can trust: it keeps its streams and gets no new ones.
            info = TranscoderInfo(name, "", "", capacity=0.0, state="unreadable")
        if info is None:
            self._transcoders.pop(name, None)
        else:
            self._transcoders[name] = info
        self._on_change()

    def _on_drains(self, names: list[str] | None) -> None:
        self._drains = frozenset(names or [])
        self._on_change()

    def _on_streams(self, names: list[str] | None) -> None:
        for name in self._follow("stream", names, self._watch_stream):
            del self._streams[name]
        self._on_change()

    def _watch_stream(self, name: str) -> list[_Watch]:
        self._streams[name] = _Stream(StreamView(name))
        p, zk = self._paths, self._zk
        return [
            zk.watch_node(p.stream(name), lambda n: self._on_record(name, n)),
            zk.watch_node(p.publisher(name), lambda n: self._on_publisher(name, n)),
            _Read(self._read_placement(name)),
        ]

    def _on_assignment_dirs(self, names: list[str] | None) -> None:
        for name in self._follow("node", names, self._watch_assignments):
            self._assignments.pop(name, None)
        self._on_change()

    def _watch_assignments(self, node: str) -> list[_Watch]:
        path = self._paths.node_assignments(node)
        return [self._zk.watch_children(path, lambda s: self._on_assignments(node, s))]

    def _on_assignments(self, node: str, streams: list[str] | None) -> None:
        if streams is None:
            self._assignments.pop(node, None)
        else:
            self._assignments[node] = set(streams)
        self._on_change()

    # -- per-stream znodes -----------------------------------------------------------------------

    def _update(self, name: str, part: str, node: Node | None, kind: type[P]) -> P | None:
        """Record that `part` of stream `name` was read; returns its parsed payload."""
        stream = self._streams.get(name)
        try:
            value = _parse(kind, node, name)
        except _Unreadable:
            value = None
            if stream is not None:
                stream.unreadable.add(part)
        else:
            if stream is not None:
                stream.unreadable.discard(part)
        if stream is not None:
            stream.unread.discard(part)
        return value

    def _set(self, name: str, **fields: object) -> None:
        stream = self._streams.get(name)
        if stream is not None:
            stream.view = dataclasses.replace(stream.view, **fields)  # type: ignore[arg-type]
        self._on_change()

    def _on_record(self, name: str, node: Node | None) -> None:
        record = self._update(name, "record", node, StreamRecord)
        if name in self._streams:
            self._streams[name].record = record
        profile = record.profile if record else "default"
        spec = record.ladder if record else None
        base = record.epoch_base if record else 0
        self._set(name, profile=profile, cost=_cost(profile, spec), ladder=spec, epoch_base=base)

    def _on_publisher(self, name: str, node: Node | None) -> None:
        publisher = self._update(name, "pub", node, Publisher)
        self._set(name, publisher=publisher, publisher_czxid=node.stat.czxid if node else 0)

    async def _read_placement(self, name: str) -> None:
        while True:
            try:
                node = await self._zk.read(self._paths.placement(name))
            except ZkUnavailable:
                await self._zk.wait_connected()
                continue
            self._set_placement(name, node)
            return

    def _set_placement(self, name: str, node: Node | None) -> None:
        placement = self._update(name, "placement", node, Placement)
        self._set(
            name,
            placement=placement,
            placement_version=node.stat.version if node else -1,
            placement_mzxid=node.stat.mzxid if node else 0,
        )


def _cost(profile: str, spec: dict[str, Any] | None) -> float:
    try:
        return resolve(profile, spec).cost
    except BadRequest:
        return ladder("default").cost


P = TypeVar("P", TranscoderInfo, StreamRecord, Publisher, Placement)


class _Unreadable(Exception):
    pass


def _parse(kind: type[P], node: Node | None, name: str) -> P | None:
    """The payload, None if the znode is absent; raises _Unreadable if it cannot be parsed."""
    if node is None:
        return None
    try:
        return kind.parse(node.data)
    except BadRequest as exc:
        log.warning("leaving %s alone: unreadable %s: %s", name, kind.__name__, exc.detail)
        raise _Unreadable from exc
