"""Writing placement changes: each one atomic, many per multi().

A change is the placement (compare-and-set on its version, or a create that fails if someone
else created it) with its assignment writes, so two leaders can never both win and a transcoder
never sees an assignment without the placement that explains it. Changes are packed into
multi()s of bounded size: one multi of a thousand ops costs about what a handful of single
writes do, but a whole batch fails if any one change in it loses, so a failed batch is retried
change by change and only the losers are reported back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence

from cluster.errors import TxnFailed, ZkNodeExists
from cluster.logs import stream_logger
from cluster.paths import Paths
from cluster.zk.bridge import ZkBridge
from cluster.zk.ops import Create, Delete, Op, SetData, Stat
from coordinator.placement.snapshot import Change

log = logging.getLogger(__name__)

# ZooKeeper refuses requests over jute.maxbuffer (1 MiB by default); stay well inside it.
MAX_BATCH_OPS = 600
MAX_BATCH_BYTES = 256 * 1024

Committed = Callable[[Change, int | None], None]  # (change, zxid of its multi if known)
Batch = list[tuple[Change, list[Op]]]  # changes and their encoded ops, for one multi()


def ops_for(paths: Paths, change: Change) -> list[Op]:
    ops: list[Op] = []
    if change.placement is not None:
        path, data = paths.placement(change.stream), bytes(change.placement)
        ops.append(
            SetData(path, data, change.version) if change.version >= 0 else Create(path, data)
        )
    if change.assignment is not None and change.dst is not None:
        path, data = paths.assignment(change.dst, change.stream), bytes(change.assignment)
        ops.append(SetData(path, data) if change.overwrite else Create(path, data))
    ops.extend(Delete(paths.assignment(node, change.stream)) for node in change.unassign)
    return ops


def batches(paths: Paths, changes: Sequence[Change]) -> Iterator[Batch]:
    batch: Batch = []
    n_ops = n_bytes = 0
    for change in changes:
        ops = ops_for(paths, change)
        size = sum(len(op.path) + len(getattr(op, "data", b"")) + 32 for op in ops)
        if batch and (n_ops + len(ops) > MAX_BATCH_OPS or n_bytes + size > MAX_BATCH_BYTES):
            yield batch
            batch, n_ops, n_bytes = [], 0, 0
        batch.append((change, ops))
        n_ops += len(ops)
        n_bytes += size
    if batch:
        yield batch


async def apply(
    zk: ZkBridge, changes: Sequence[Change], known_dirs: frozenset[str], committed: Committed
) -> list[Change]:
    """Write `changes`; `committed` is called for each one that took. Returns the ones that lost."""
    # Transcoders create their own directory before registering; this covers one that did not.
    await asyncio.gather(
        *(_ensure_dir(zk, n) for n in {c.dst for c in changes if c.dst is not None} - known_dirs)
    )
    return await send(zk, batches(zk.paths, changes), committed)


async def send(zk: ZkBridge, prepared: Iterable[Batch], committed: Committed) -> list[Change]:
    """Commit batches of encoded changes, pipelined; returns the changes that lost."""
    sent: list[asyncio.Task[list[Change]]] = []
    changes: list[Change] = []
    for batch in prepared:
        sent.append(asyncio.create_task(_commit(zk, batch, committed)))
        changes += [change for change, _ in batch]
        # Let it go out now: ZooKeeper applies this batch while we encode the next one.
        await asyncio.sleep(0)
    results = await asyncio.gather(*sent)
    lost = [change for item in results for change in item]
    # One line per decision, written once every batch has gone out: formatting a thousand
    # lines between batches would hold the GIL that kazoo's thread needs to send them.
    gone = {id(change) for change in lost}
    for change in changes:
        if id(change) not in gone:
            _log(change)
    return lost


def restamp(prepared: Sequence[Batch], old: bytes, new: bytes) -> list[Batch]:
    """Prepared batches with the placeholder time `old` in placement payloads replaced by `new`."""
    return [
        [(change, [_restamp(op, old, new) for op in ops]) for change, ops in b] for b in prepared
    ]


def _restamp(op: Op, old: bytes, new: bytes) -> Op:
    if isinstance(op, SetData):
        return SetData(op.path, op.data.replace(old, new), op.version)
    if isinstance(op, Create) and old in op.data:
        return Create(op.path, op.data.replace(old, new), op.ephemeral, op.sequence)
    return op


async def _ensure_dir(zk: ZkBridge, node: str) -> None:
    try:
        await zk.create(zk.paths.node_assignments(node))
    except ZkNodeExists:
        pass


async def _commit(
    zk: ZkBridge, batch: list[tuple[Change, list[Op]]], committed: Committed
) -> list[Change]:
    try:
        results = await zk.transaction([op for _, ops in batch for op in ops])
    except TxnFailed as exc:
        if len(batch) == 1:
            stream_logger(log, batch[0][0].stream).warning("placement change lost: %s", exc.detail)
            return [batch[0][0]]
        lost = await asyncio.gather(*(_commit(zk, [item], committed) for item in batch))
        return [change for item in lost for change in item]
    # Every op of one multi shares its zxid; a SetData's stat tells it.
    zxid = next((r.mzxid for r in results if isinstance(r, Stat)), None)
    for change, _ in batch:
        committed(change, zxid)
    return []


def _log(change: Change) -> None:
    slog = stream_logger(log, change.stream)
    if change.placement is None:
        slog.info("removed stray assignment on %s", ", ".join(change.unassign))
    else:
        p = change.placement
        slog.info(
            "placement %s -> %s epoch %d (%s): %s",
            change.src or "-",
            p.transcoder or "-",
            p.epoch,
            p.state,
            p.reason,
        )
