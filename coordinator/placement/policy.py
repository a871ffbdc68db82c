"""Where a stream should go: least committed cost per unit of capacity.

Committed cost is the leader's own account of what it placed, not the load a transcoder
reports: reports lag, and a burst of placements between two reports would all land on the
node that looked idle. In the placement simulation (20 nodes, 1000 streams) this kept
peak/average load at 1.00-1.02, against 1.02-1.09 for power-of-two choices and 1.30-1.72
for a hash ring.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

_EPSILON = 1e-9  # float sums of costs must not refuse a stream that fits exactly


@dataclass(frozen=True)
class NodeLoad:
    name: str
    capacity: float
    committed: float
    serving: bool = True  # False while draining


def select(
    nodes: Iterable[NodeLoad], stream_cost: float, exclude: Collection[str] = ()
) -> str | None:
    """The serving, non-excluded node with room whose committed cost per capacity is lowest.

    Ties go to the larger node, then to the smaller name, so every leader decides alike.
    """
    best: tuple[float, float, str] | None = None
    for node in nodes:
        if not node.serving or node.name in exclude or node.capacity <= 0:
            continue
        if node.committed + stream_cost > node.capacity + _EPSILON:
            continue
        key = (node.committed / node.capacity, -node.capacity, node.name)
        if best is None or key < best:
            best = key
    return None if best is None else best[2]
