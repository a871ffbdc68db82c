"""Watches that survive disconnects and session loss, running on the asyncio loop.

ZooKeeper watches are one-shot and kazoo drops them all when the connection drops. Each watch
here is a small loop (recipe.py): read with a one-shot watch, deliver the value if it changed,
sleep until the watch fires or the session reconnects, read again. kazoo's own DataWatch/ChildrenWatch do the
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

from cluster.errors import ZkNoNode
from cluster.zk.ops import Node
from cluster.zk.recipe import Recipe

if TYPE_CHECKING:
    from cluster.zk.bridge import ZkBridge

log = logging.getLogger(__name__)

NodeCallback = Callable[[Node | None], None]
ChildrenCallback = Callable[[list[str] | None], None]
V = TypeVar("V")


class _Watch(Recipe, Generic[V]):
    def __init__(self, bridge: ZkBridge, path: str) -> None:
        self.path = path
        self._first = asyncio.Event()
        self._last: object = object()  # matches nothing: the first value is always delivered
        super().__init__(bridge, f"zk watch {path}")

    @property
    def is_ready(self) -> bool:
        return self._first.is_set()

    async def ready(self) -> None:
        """Returns once the callback has had the first value."""
        await self._first.wait()

    async def _read(self, watch: Callable[[], None]) -> tuple[object, V]:
        """(key to compare with the last delivery, value to deliver)."""
        raise NotImplementedError

    def _deliver(self, value: V) -> None:
        raise NotImplementedError

    async def _step(self) -> None:
        key, value = await self._read(self._kick.set)
        if key == self._last or self._cancelled:
            return
        self._last = key
        try:
            self._deliver(value)
        except Exception:
            log.exception("watch callback for %s failed", self.path)
        self._first.set()


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
