"""The kazoo -> asyncio bridge: the one module in zoocast that imports kazoo.

kazoo runs its connection, completions and watch callbacks on its own threads. Every result,
watch firing and state change crosses to the asyncio loop here, through
`loop.call_soon_threadsafe`, and kazoo's exceptions become cluster.errors at this boundary:

    NoNodeError                        -> ZkNoNode
    NodeExistsError                    -> ZkNodeExists
    BadVersionError                    -> ZkBadVersion
    NotEmptyError                      -> Conflict
    connection loss, expiry, closed    -> ZkUnavailable
    a multi() that lost                -> TxnOpFailed (a TxnFailed naming the op and its cause)

A `watch=` callable given to a read is called once, on the loop, when the node (or its children)
changes or when the connection drops; the recipes in watch.py re-arm it. Results that complete in
kazoo's completion thread reach the loop in the order the server answered, so a read sent before
a write is delivered before the write's result (ZooKeeper answers one session in order).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    OperationTimeoutError,
    RolledBackError,
    RuntimeInconsistency,
    SessionExpiredError,
    SessionMovedError,
)
from kazoo.protocol.states import KazooState

from cluster.errors import (
    Conflict,
    ZkBadVersion,
    ZkNodeExists,
    ZkNoNode,
    ZkUnavailable,
    ZoocastError,
)
from cluster.paths import Paths
from cluster.zk.ops import Check, Create, Delete, Node, Op, OpResult, SetData, Stat, TxnOpFailed
from cluster.zk.state import ConnState, SessionState, StateListener

if TYPE_CHECKING:
    from cluster.config import Settings
    from cluster.zk.election import Election, LeadershipCallback
    from cluster.zk.ephemeral import EphemeralNode
    from cluster.zk.recipe import Recipe
    from cluster.zk.watch import ChildrenCallback, ChildrenWatch, DataWatch, NodeCallback

log = logging.getLogger(__name__)

T = TypeVar("T")
Watcher = Callable[[], None]

_STATES = {
    KazooState.CONNECTED: ConnState.CONNECTED,
    KazooState.SUSPENDED: ConnState.SUSPENDED,
    KazooState.LOST: ConnState.LOST,
}
_UNAVAILABLE = (
    ConnectionLoss,
    SessionExpiredError,  # includes ConnectionClosedError
    SessionMovedError,
    OperationTimeoutError,
)


def translate(exc: BaseException, path: str) -> BaseException:
    """kazoo's exception for an operation on `path` -> ours; anything else passes through."""
    if isinstance(exc, NoNodeError):
        return ZkNoNode(path)
    if isinstance(exc, NodeExistsError):
        return ZkNodeExists(path)
    if isinstance(exc, BadVersionError):
        return ZkBadVersion(path)
    if isinstance(exc, NotEmptyError):
        return Conflict(f"{path} has children")
    if isinstance(exc, _UNAVAILABLE):
        return ZkUnavailable(f"{path}: {type(exc).__name__}")
    if isinstance(exc, KazooException):
        return ZoocastError(f"{path}: {type(exc).__name__} {exc}")
    return exc


def _stat(raw: Any) -> Stat:
    return Stat(raw.version, raw.czxid, raw.mzxid, raw.ephemeralOwner, raw.numChildren)


def _settle(fut: asyncio.Future[T], value: T | None, exc: BaseException | None) -> None:
    if fut.done():  # the awaiting task was cancelled meanwhile
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)  # type: ignore[arg-type]


class ZkBridge:
    """One ZooKeeper session, used from asyncio. `start()` before use, `stop()` at the end."""

    def __init__(
        self,
        hosts: str,
        paths: Paths,
        session_timeout: float = 4.0,
        backoff_cap: float = 1.0,
        *,
        client_id: tuple[int, bytes] | None = None,
    ) -> None:
        self.hosts = hosts
        self.paths = paths
        self.session_timeout = session_timeout
        self.backoff_cap = backoff_cap
        self._client_id = client_id
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.session = SessionState(session_timeout)
        self._recipes: set[Recipe] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> ZkBridge:
        return cls(
            settings.zk, Paths(settings.zk_root), settings.session_timeout, settings.zk_backoff_cap
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, timeout: float = 15.0) -> None:
        """Connect, then make sure the persistent skeleton of the tree exists."""
        if self._client is not None:
            raise RuntimeError("ZkBridge already started")
        self._loop = asyncio.get_running_loop()
        client = KazooClient(
            hosts=self.hosts,
            timeout=self.session_timeout,
            client_id=self._client_id,
            # Infinite tries, capped backoff: uncapped, kazoo waited 8-27 s to reconnect after
            # a long outage healed.
            connection_retry={
                "max_tries": -1,
                "delay": 0.05,
                "backoff": 2,
                "max_delay": self.backoff_cap,
            },
        )
        client.add_listener(self._on_kazoo_state)
        self._client = client
        await asyncio.to_thread(client.start_async)
        try:
            async with asyncio.timeout(timeout):
                await self.session.wait_connected()
        except TimeoutError:
            await self.stop()
            raise ZkUnavailable(
                f"could not reach ZooKeeper at {self.hosts} within {timeout}s"
            ) from None
        for path in self.paths.skeleton():
            try:
                await self.create(path, makepath=True)
            except ZkNodeExists:
                pass

    async def stop(self) -> None:
        """Cancel every recipe, then close the session (the server drops our ephemerals at once)."""
        client, self._client = self._client, None
        if client is None:
            return
        for recipe in list(self._recipes):
            recipe.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.to_thread(_close, client)
        self.session.close()

    # -- state ---------------------------------------------------------------------------------

    def _on_kazoo_state(self, state: str) -> None:
        # kazoo's connection thread: must not block, so only hand the news to the loop.
        self._call_soon(self.session.feed, _STATES[state])

    @property
    def state(self) -> ConnState:
        return self.session.state

    @property
    def connected(self) -> bool:
        return self.session.state is ConnState.CONNECTED

    @property
    def client_id(self) -> tuple[int, bytes] | None:
        """(session id, password) while connected; another bridge given it shares the session."""
        return None if self._client is None else self._client.client_id

    @property
    def session_id(self) -> int | None:
        cid = self.client_id
        return None if cid is None else cid[0]

    def on_state(self, listener: StateListener) -> Callable[[], None]:
        return self.session.listen(listener)

    def states(self) -> AsyncIterator[ConnState]:
        return self.session.changes()

    async def wait_connected(self) -> None:
        await self.session.wait_connected()

    # -- operations ----------------------------------------------------------------------------

    async def read(self, path: str, watch: Watcher | None = None) -> Node | None:
        """Data and stat, or None when absent (a watch is then not left: use exists for that)."""
        try:
            data, stat = await self._run(path, "get_async", path, watch=self._kz_watch(watch))
        except ZkNoNode:
            return None
        return Node(data or b"", _stat(stat))

    async def get(self, path: str, watch: Watcher | None = None) -> tuple[bytes, int] | None:
        node = await self.read(path, watch)
        return None if node is None else (node.data, node.stat.version)

    async def exists(self, path: str, watch: Watcher | None = None) -> Stat | None:
        raw = await self._run(path, "exists_async", path, watch=self._kz_watch(watch))
        return None if raw is None else _stat(raw)

    async def children(self, path: str, watch: Watcher | None = None) -> list[str]:
        """Child names; raises ZkNoNode if `path` does not exist."""
        return list(await self._run(path, "get_children_async", path, watch=self._kz_watch(watch)))

    async def create(
        self,
        path: str,
        data: bytes = b"",
        *,
        ephemeral: bool = False,
        sequence: bool = False,
        makepath: bool = False,
    ) -> str:
        """Returns the created path (with its sequence suffix when `sequence`)."""
        created = await self._run(
            path,
            "create_async",
            path,
            data,
            ephemeral=ephemeral,
            sequence=sequence,
            makepath=makepath,
        )
        return str(created)

    async def set(self, path: str, data: bytes, version: int = -1) -> Stat:
        return _stat(await self._run(path, "set_async", path, data, version))

    async def delete(self, path: str, version: int = -1, *, recursive: bool = False) -> None:
        if recursive:
            await self._delete_tree(path)
        else:
            await self._run(path, "delete_async", path, version)

    async def _delete_tree(self, path: str) -> None:
        try:
            kids = await self.children(path)
        except ZkNoNode:
            return
        await asyncio.gather(*(self._delete_tree(f"{path}/{kid}") for kid in kids))
        try:
            await self.delete(path)
        except ZkNoNode:
            pass

    async def transaction(self, ops: Sequence[Op]) -> list[OpResult]:
        """One multi(): every op or none. Raises TxnOpFailed naming the op that lost."""
        if not ops:
            return []
        txn = self._require_client().transaction()
        for op in ops:
            if isinstance(op, Create):
                txn.create(op.path, op.data, ephemeral=op.ephemeral, sequence=op.sequence)
            elif isinstance(op, SetData):
                txn.set_data(op.path, op.data, op.version)
            elif isinstance(op, Delete):
                txn.delete(op.path, op.version)
            elif isinstance(op, Check):
                txn.check(op.path, op.version)
        raw = await self._await(txn.commit_async(), f"multi({len(ops)} ops, first {ops[0].path})")
        # A lost multi does not raise in kazoo: each result is an exception object instead, the
        # failing op's real error among RolledBack/RuntimeInconsistency placeholders.
        for index, (op, result) in enumerate(zip(ops, raw, strict=False)):
            if isinstance(result, Exception) and not _placeholder(result):
                cause = translate(result, op.path)
                if not isinstance(cause, ZoocastError):
                    cause = ZoocastError(repr(result))
                raise TxnOpFailed(index, op, cause)
        if any(isinstance(result, Exception) for result in raw):
            raise TxnOpFailed(0, ops[0], ZoocastError(f"multi failed: {raw!r}"))
        return [_op_result(result) for result in raw]

    # -- recipes (imported lazily: they use the bridge, the bridge hands them out) ----------

    def watch_data(self, path: str, callback: Callable[[bytes | None], None]) -> DataWatch:
        """`callback(data)` on the loop now and after every change; None while absent."""
        return self.watch_node(path, lambda node: callback(None if node is None else node.data))

    def watch_node(self, path: str, callback: NodeCallback) -> DataWatch:
        """Like watch_data, with the stat: `callback(Node(data, stat))`, or None while absent."""
        from cluster.zk.watch import DataWatch

        return DataWatch(self, path, callback)

    def watch_children(self, path: str, callback: ChildrenCallback) -> ChildrenWatch:
        """`callback(sorted children)` on the loop now and on every change; None when absent."""
        from cluster.zk.watch import ChildrenWatch

        return ChildrenWatch(self, path, callback)

    async def ephemeral(self, path: str, data: bytes, *, wait: bool = False) -> EphemeralNode:
        """An ephemeral znode kept registered across session expiry; returns once registered.

        If another session holds `path` now, raises ZkNodeExists, or with `wait` waits until
        that session ends (a restarted process whose previous session has not expired yet).
        """
        from cluster.zk.ephemeral import EphemeralNode

        node = EphemeralNode(self, path, data)
        try:
            await node.registered(wait)
        except BaseException:
            node.cancel()
            raise
        return node

    def election(self, identifier: bytes, on_change: LeadershipCallback) -> Election:
        """Join the election under Paths.election; `on_change(leading)` on the loop."""
        from cluster.zk.election import Election

        return Election(self, identifier, on_change)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run `coro` in the background (e.g. from a sync callback); stop() cancels it."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    def adopt(self, recipe: Recipe) -> None:
        """Track a running recipe so that stop() cancels it."""
        self._recipes.add(recipe)

    def release(self, recipe: Recipe) -> None:
        self._recipes.discard(recipe)

    # -- plumbing ------------------------------------------------------------------------------

    def _require_client(self) -> Any:
        if self._client is None:
            raise ZkUnavailable("ZooKeeper bridge is not started")
        return self._client

    async def _run(self, path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        async_result = getattr(self._require_client(), method)(*args, **kwargs)
        return await self._await(async_result, path)

    def _await(self, async_result: Any, path: str) -> asyncio.Future[Any]:
        loop = self._loop
        assert loop is not None
        fut: asyncio.Future[Any] = loop.create_future()

        def resolve(result: Any) -> None:
            # kazoo's completion thread.
            try:
                value = result.get_nowait()
            except Exception as exc:
                self._call_soon(_settle, fut, None, translate(exc, path))
            else:
                self._call_soon(_settle, fut, value, None)

        async_result.rawlink(resolve)
        return fut

    def _kz_watch(self, watch: Watcher | None) -> Callable[[Any], None] | None:
        if watch is None:
            return None

        def fire(event: Any) -> None:
            # kazoo's callback thread; also called with a NONE event when the connection drops.
            self._call_soon(watch)

        return fire

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass  # the loop is closed: nobody is left to tell


def _placeholder(exc: Exception) -> bool:
    # kazoo fills the ops around the failing one with these.
    return isinstance(exc, (RolledBackError, RuntimeInconsistency))


def _op_result(result: Any) -> OpResult:
    if isinstance(result, str):
        return result
    if result is True:
        return None
    return _stat(result)


def _close(client: Any) -> None:
    try:
        client.stop()
    except ConnectionClosedError:
        pass
    client.close()
