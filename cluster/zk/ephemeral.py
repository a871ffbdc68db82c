"""An ephemeral znode that stays registered: re-created after session expiry, data updatable.

A transcoder's or edge's membership node, a publisher's node, the leader's node: each must come
back by itself when the session is replaced, and carry the latest data when it does.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from cluster.errors import ZkNodeExists, ZkNoNode, ZkUnavailable
from cluster.zk.recipe import Recipe
from cluster.zk.state import ConnState

if TYPE_CHECKING:
    from cluster.zk.bridge import ZkBridge

log = logging.getLogger(__name__)


class EphemeralNode(Recipe):
    """Keeps `path` present with this session as its owner until `cancel()` or `remove()`."""

    def __init__(self, bridge: ZkBridge, path: str, data: bytes) -> None:
        self.path = path
        self._data = data
        self._dirty = False  # the server may hold older data than self._data
        self._registered = asyncio.Event()
        self._held_elsewhere = asyncio.Event()
        self._waiting_logged = False
        super().__init__(bridge, f"zk ephemeral {path}")

    @property
    def data(self) -> bytes:
        return self._data

    @property
    def is_registered(self) -> bool:
        return self._registered.is_set()

    async def registered(self, wait: bool = True) -> None:
        """Returns once registered. Without `wait`, raises ZkNodeExists if another session
        holds the path (the publisher lock: one edge per stream)."""
        if wait:
            await self._registered.wait()
            return
        done = asyncio.ensure_future(self._registered.wait())
        held = asyncio.ensure_future(self._held_elsewhere.wait())
        try:
            await asyncio.wait((done, held), return_when=asyncio.FIRST_COMPLETED)
        finally:
            done.cancel()
            held.cancel()
        if not self._registered.is_set():
            raise ZkNodeExists(f"{self.path} is held by another session")

    async def update(self, data: bytes) -> None:
        """Publish new data now if registered; otherwise it is published on re-registration."""
        self._data = data
        self._dirty = True
        if not self._registered.is_set():
            return
        try:
            await self._bridge.set(self.path, data)
            self._dirty = self._data is not data  # a later update() may have raced this one
        except (ZkNoNode, ZkUnavailable):
            self._kick.set()

    def cancel(self) -> None:
        """Stop maintaining the node; it lives on until the session ends."""
        super().cancel()
        self._registered.clear()

    async def remove(self) -> None:
        """Stop maintaining the node and remove it now, if this session still owns it."""
        self.cancel()
        try:
            stat = await self._bridge.exists(self.path)
            if stat is not None and stat.ephemeral_owner == self._bridge.session_id:
                await self._bridge.delete(self.path, stat.version)
        except (ZkNoNode, ZkUnavailable):
            pass  # gone already, or it goes with the session

    def _on_state(self, state: ConnState) -> None:
        super()._on_state(state)
        if state is ConnState.LOST:
            self._registered.clear()

    async def _step(self) -> None:
        session = self._bridge.session_id
        stat = await self._bridge.exists(self.path, self._kick.set)
        if stat is None:
            data = self._data
            try:
                await self._bridge.create(self.path, data, ephemeral=True, makepath=True)
            except ZkNodeExists:
                pass
            else:
                log.info("registered %s (session %#x)", self.path, session or 0)
                self._dirty = self._data is not data
            self._kick.set()  # look again, to watch the node just made
            return
        if stat.ephemeral_owner != session:
            # Held by an older session (ours before expiry, or a previous process on the same
            # node id): it vanishes when the server expires that session, and the watch fires.
            self._registered.clear()
            self._held_elsewhere.set()
            if not self._waiting_logged:
                log.warning(
                    "%s is held by session %#x; waiting for it to expire",
                    self.path,
                    stat.ephemeral_owner,
                )
                self._waiting_logged = True
            return
        self._waiting_logged = False
        self._held_elsewhere.clear()
        if self._dirty:
            data = self._data
            await self._bridge.set(self.path, data)
            self._dirty = self._data is not data
        self._registered.set()
