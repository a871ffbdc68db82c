"""ZooKeeper paths: every znode path in zoocast comes from a function here.

Arguments are validated ids, so nothing user-supplied can climb out of the tree.
"""

from __future__ import annotations

from cluster.ids import node_id, stream_id


class Paths:
    def __init__(self, root: str = "/zoocast") -> None:
        if not root.startswith("/") or root.endswith("/") or "//" in root:
            raise ValueError(f"invalid ZooKeeper root {root!r}")
        self.root = root

    # membership (ephemeral)
    @property
    def transcoders(self) -> str:
        return f"{self.root}/transcoders"

    def transcoder(self, node: str) -> str:
        return f"{self.transcoders}/{node_id(node)}"

    @property
    def edges(self) -> str:
        return f"{self.root}/edges"

    def edge(self, node: str) -> str:
        return f"{self.edges}/{node_id(node)}"

    @property
    def election(self) -> str:
        return f"{self.root}/coordinators/election"

    @property
    def leader(self) -> str:
        """Ephemeral znode the elected leader writes its id and API URL to."""
        return f"{self.root}/coordinators/leader"

    # streams (persistent registry, ephemeral publisher)
    @property
    def streams(self) -> str:
        return f"{self.root}/streams"

    def stream(self, stream: str) -> str:
        return f"{self.streams}/{stream_id(stream)}"

    def publisher(self, stream: str) -> str:
        return f"{self.stream(stream)}/publisher"

    def placement(self, stream: str) -> str:
        return f"{self.stream(stream)}/placement"

    # work given to transcoders (written only by the leader, with the placement)
    @property
    def assignments(self) -> str:
        return f"{self.root}/assignments"

    def node_assignments(self, node: str) -> str:
        return f"{self.assignments}/{node_id(node)}"

    def assignment(self, node: str, stream: str) -> str:
        return f"{self.node_assignments(node)}/{stream_id(stream)}"

    @property
    def drains(self) -> str:
        return f"{self.root}/drain"

    def drain(self, node: str) -> str:
        return f"{self.drains}/{node_id(node)}"

    def skeleton(self) -> list[str]:
        """Persistent parents that must exist before anyone watches children."""
        return [
            self.transcoders,
            self.edges,
            self.election,
            self.streams,
            self.assignments,
            self.drains,
        ]
