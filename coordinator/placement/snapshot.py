"""What the leader knows of the cluster at one instant, and the changes it decides on.

Plain frozen values, built by the view (coordinator/view.py) from its watches and consumed by
the pure reconcile; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from cluster.payloads import Assignment, Placement, Publisher, TranscoderInfo


@dataclass(frozen=True)
class StreamView:
    """One registered stream: its cost, its publisher (if any) and its placement (if any)."""

    name: str
    profile: str = "default"
    cost: float = 1.0
    ladder: dict[str, Any] | None = None  # the stream's own ladder spec, handed to its worker
    epoch_base: int = 0  # its first placement is epoch_base + 1
    publisher: Publisher | None = None
    # Creation zxid of the publisher znode: a publisher that reconnected has a newer one.
    publisher_czxid: int = 0
    placement: Placement | None = None
    placement_version: int = -1  # -1: no placement znode yet
    # zxid of the placement's last write (a lower bound right after our own write).
    placement_mzxid: int = 0


@dataclass(frozen=True)
class Snapshot:
    transcoders: Mapping[str, TranscoderInfo] = field(default_factory=dict)
    drains: frozenset[str] = frozenset()
    streams: Mapping[str, StreamView] = field(default_factory=dict)
    # Every name under /streams, loaded or not: an assignment for a name outside it is an orphan.
    registered: frozenset[str] = frozenset()
    # node -> streams that have an assignment znode under /assignments/{node}.
    assignments: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def serving(self, node: str) -> bool:
        """Alive and taking new streams."""
        info = self.transcoders.get(node)
        return info is not None and info.state == "serving" and node not in self.drains

    def draining(self, node: str) -> bool:
        """Asked to give its streams away (a drain marker, or the node says so itself)."""
        info = self.transcoders.get(node)
        return node in self.drains or (info is not None and info.state == "draining")

    def holders(self, stream: str) -> set[str]:
        """Nodes that hold an assignment for `stream`."""
        return set(self._holders.get(stream, ()))

    @cached_property
    def _holders(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for node, streams in self.assignments.items():
            for stream in streams:
                index.setdefault(stream, []).append(node)
        return index


@dataclass(frozen=True)
class Change:
    """One stream's step: a new placement (compare-and-set at `version`) and its assignments."""

    stream: str
    placement: Placement | None  # None: only stray assignments are removed
    version: int = -1  # the placement version this change expects; -1 creates the znode
    assignment: Assignment | None = None  # written under /assignments/{placement.transcoder}
    overwrite: bool = False  # that node already holds an assignment for the stream: set it
    unassign: tuple[str, ...] = ()  # nodes whose assignment for the stream is deleted
    src: str | None = None  # where the stream was, for the log line

    @property
    def dst(self) -> str | None:
        return None if self.placement is None else self.placement.transcoder
