"""Plain values crossing the bridge: znode stats and the operations of a multi() transaction.

Pure data, no kazoo: callers build transactions from these and read stats without importing
the client library.
"""

from __future__ import annotations

from dataclasses import dataclass

from cluster.errors import TxnFailed, ZoocastError


@dataclass(frozen=True)
class Stat:
    """The parts of a znode's stat that zoocast uses."""

    version: int
    czxid: int  # creation zxid: tells one incarnation of an ephemeral from the next
    mzxid: int  # zxid of the last change
    ephemeral_owner: int  # session id owning an ephemeral node, 0 for persistent ones
    num_children: int = 0


@dataclass(frozen=True)
class Node:
    """A znode read with its stat."""

    data: bytes
    stat: Stat


@dataclass(frozen=True)
class Create:
    path: str
    data: bytes = b""
    ephemeral: bool = False
    sequence: bool = False


@dataclass(frozen=True)
class SetData:
    path: str
    data: bytes
    version: int = -1  # -1: any version


@dataclass(frozen=True)
class Delete:
    path: str
    version: int = -1


@dataclass(frozen=True)
class Check:
    path: str
    version: int


Op = Create | SetData | Delete | Check

# What each op yields when the transaction commits: the created path, the new Stat of a
# SetData, None for Delete and Check.
OpResult = str | Stat | None


class TxnOpFailed(TxnFailed):
    """A multi() lost: `index` is the op that failed, `cause` why (ZkBadVersion, ZkNoNode...)."""

    def __init__(self, index: int, op: Op, cause: ZoocastError) -> None:
        super().__init__(f"op {index} ({type(op).__name__} {op.path}) failed: {cause.code}")
        self.index = index
        self.op = op
        self.cause = cause
