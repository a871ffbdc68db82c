"""Watches that survive disconnects and session loss, running on the asyncio loop.

ZooKeeper watches are one-shot and kazoo drops them all when the connection drops. Each watch
here is a small loop: read with a one-shot watch, deliver the value if it changed, sleep until
the watch fires or the session reconnects, read again. kazoo's own DataWatch/ChildrenWatch do the
same, but re-read synchronously on kazoo's single callback thread and spawn a thread per watch
on every reconnect; the leader holds thousands of per-stream watches, so these re-read with
pipelined async calls instead and cost one task each.

Callbacks run on the loop, must not block, and are never called after `cancel()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from cluster.errors import ZkNoNode, ZkUnavailable
from cluster.zk.ops import Node
from cluster.zk.state import ConnState

if TYPE_CHECKING:
    from cluster.zk.bridge import ZkBridge

log = logging.getLogger(__name__)

NodeCallback = Callable[[Node | None], None]
ChildrenCallback = Callable[[list[str] | None], None]
V = TypeVar("V")

_RETRY = 0.05  # seconds between attempts while a read fails for want of a connection


class _Watch(Generic[V]):
    def __init__(self, bridge: ZkBridge, path: str) -> None:
        self.path = path
        self._bridge = bridge
        self._kick = asyncio.Event()
        self._first = asyncio.Event()
        self._cancelled = False
        self._unlisten = bridge.on_state(self._on_state)
        bridge.adopt(self)
        self._task = asyncio.create_task(self._run(), name=f"zk watch {path}")

    def cancel(self) -> None:
        self._cancelled = True
        self._unlisten()
        self._bridge.release(self)
        self._task.cancel()

    @property
    def is_ready(self) -> bool:
        return self._first.is_set()

    async def ready(self) -> None:
        """Returns once the callback has had the first value."""
        await self._first.wait()

    def _on_state(self, state: ConnState) -> None:
        if state is ConnState.CONNECTED:
            self._kick.set()  # kazoo forgot our watch while disconnected: read again

    async def _read(self, watch: Callable[[], None]) -> tuple[object, V]:
        """(key to compare with the last delivery, value to deliver)."""
        raise NotImplementedError

    def _deliver(self, value: V) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        last: object = object()  # matches nothing, so the first value is always delivered
        while True:
            self._kick.clear()  # before the read, so a watch firing during it is not missed
            await self._bridge.wait_connected()
            try:
                key, value = await self._read(self._kick.set)
            except ZkUnavailable:
                await asyncio.sleep(_RETRY)
                continue
            except Exception:
                log.exception("watch on %s: read failed", self.path)
                await asyncio.sleep(1.0)
                continue
            if key != last and not self._cancelled:
                last = key
                try:
                    self._deliver(value)
                except Exception:
                    log.exception("watch callback for %s failed", self.path)
                self._first.set()
            await self._kick.wait()


class DataWatch(_Watch[Node | None]):
    """`callback(node)` with the node's data and stat, or None while it does not exist."""

    def __init__(self, bridge: ZkBridge, path: str, callback: NodeCallback) -> None:
        self._callback = callback
        super().__init__(bridge, path)

    async def _read(self, watch: Callable[[], None]) -> tuple[object, Node | None]:
        node = await self._bridge.read(self.path, watch)
        if node is not None:
            # mzxid changes on every write and on every re-creation, unlike the version.
            return node.stat.mzxid, node
        if await self._bridge.exists(self.path, watch) is not None:
            watch()  # created between the two calls
        return None, None

    def _deliver(self, value: Node | None) -> None:
        self._callback(value)


class ChildrenWatch(_Watch[list[str] | None]):
    """`callback(children)`, sorted, or None while the parent does not exist."""

    def __init__(self, bridge: ZkBridge, path: str, callback: ChildrenCallback) -> None:
        self._callback = callback
        super().__init__(bridge, path)

    async def _read(self, watch: Callable[[], None]) -> tuple[object, list[str] | None]:
        try:
            kids = sorted(await self._bridge.children(self.path, watch))
        except ZkNoNode:
            if await self._bridge.exists(self.path, watch) is not None:
                watch()
            return None, None
        return tuple(kids), kids

    def _deliver(self, value: list[str] | None) -> None:
        self._callback(value)
