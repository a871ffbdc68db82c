"""Operations through the bridge against a real ZooKeeper: results, translated errors, multi()."""

from __future__ import annotations

import pytest

from cluster.errors import Conflict, ZkBadVersion, ZkNodeExists, ZkNoNode, ZkUnavailable
from cluster.paths import Paths
from cluster.zk.bridge import ZkBridge
from cluster.zk.ops import Check, Create, Delete, SetData, Stat, TxnOpFailed
from tests.cluster.zk.conftest import BridgeFactory


async def test_start_creates_the_skeleton(bridges: BridgeFactory, paths: Paths) -> None:
    zk = await bridges()
    for path in paths.skeleton():
        assert await zk.exists(path) is not None, path


async def test_crud_and_translated_errors(bridges: BridgeFactory, paths: Paths) -> None:
    zk = await bridges()
    path = f"{paths.root}/a/b"
    assert await zk.get(path) is None
    assert await zk.create(path, b"one", makepath=True) == path
    assert await zk.get(path) == (b"one", 0)
    with pytest.raises(ZkNodeExists):
        await zk.create(path)
    stat = await zk.set(path, b"two", version=0)
    assert stat.version == 1
    with pytest.raises(ZkBadVersion):
        await zk.set(path, b"three", version=0)
    assert await zk.children(f"{paths.root}/a") == ["b"]
    with pytest.raises(ZkNoNode):
        await zk.children(f"{paths.root}/nope")
    with pytest.raises(Conflict):
        await zk.delete(f"{paths.root}/a")
    with pytest.raises(ZkBadVersion):
        await zk.delete(path, version=0)
    await zk.delete(path, version=1)
    with pytest.raises(ZkNoNode):
        await zk.delete(path)


async def test_sequence_ephemeral_and_recursive_delete(
    bridges: BridgeFactory, paths: Paths
) -> None:
    zk = await bridges()
    seq = await zk.create(f"{paths.root}/q/n_", ephemeral=True, sequence=True, makepath=True)
    assert seq.startswith(f"{paths.root}/q/n_") and seq[-10:].isdigit()
    stat = await zk.exists(seq)
    assert stat is not None and stat.ephemeral_owner == zk.session_id
    await zk.create(f"{paths.root}/t/x/y/z", b"deep", makepath=True)
    await zk.delete(f"{paths.root}/t", recursive=True)
    assert await zk.exists(f"{paths.root}/t") is None


async def test_transaction_commits_every_op(bridges: BridgeFactory, paths: Paths) -> None:
    zk = await bridges()
    a, b = f"{paths.root}/a", f"{paths.root}/b"
    await zk.create(a, b"0")
    results = await zk.transaction([Check(a, 0), SetData(a, b"1", 0), Create(b, b"new")])
    assert results[0] is None and isinstance(results[1], Stat) and results[1].version == 1
    assert results[2] == b
    assert await zk.transaction([Delete(b, 0)]) == [None]
    assert await zk.exists(b) is None


async def test_transaction_losing_the_compare_and_set_changes_nothing(
    bridges: BridgeFactory, paths: Paths
) -> None:
    zk = await bridges()
    placement, assignment = f"{paths.root}/placement", f"{paths.root}/assignment"
    await zk.create(placement, b"v0")
    await zk.set(placement, b"v1")  # someone else moved it: version is now 1
    with pytest.raises(TxnOpFailed) as info:
        await zk.transaction([Create(assignment, b"a"), SetData(placement, b"mine", version=0)])
    assert info.value.index == 1
    assert isinstance(info.value.cause, ZkBadVersion)
    assert await zk.exists(assignment) is None  # the create before it was rolled back
    assert await zk.get(placement) == (b"v1", 1)


async def test_operations_after_stop_are_unavailable(bridges: BridgeFactory, paths: Paths) -> None:
    zk = await bridges()
    await zk.stop()
    with pytest.raises(ZkUnavailable):
        await zk.get(paths.root)


async def test_start_gives_up_when_nothing_listens(paths: Paths) -> None:
    zk = ZkBridge("127.0.0.1:1", paths, session_timeout=1.0, backoff_cap=0.1)
    with pytest.raises(ZkUnavailable):
        await zk.start(timeout=0.5)
