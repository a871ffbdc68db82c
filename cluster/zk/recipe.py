"""The loop every recipe (watches, ephemeral nodes, the election) is built on.

A recipe runs one `_step()` against ZooKeeper, then sleeps until kicked: by a one-shot watch it
set during the step (`self._kick.set` is the watcher), or by the session reconnecting, since
kazoo forgets every watch when the connection drops. A step that fails for want of a connection
is retried once connected again. Runs on the loop; `cancel()` stops it at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from cluster.errors import ZkUnavailable
from cluster.zk.state import ConnState

if TYPE_CHECKING:
    from cluster.zk.bridge import ZkBridge

log = logging.getLogger(__name__)

_RETRY = 0.05  # seconds between attempts while a step fails for want of a connection
_FAILED = 1.0  # seconds before retrying a step that failed for any other reason


class Recipe:
    """Subclasses set their own fields, then call `super().__init__`, which starts the loop."""

    def __init__(self, bridge: ZkBridge, name: str) -> None:
        self._bridge = bridge
        self._kick = asyncio.Event()
        self._cancelled = False
        self._unlisten = bridge.on_state(self._on_state)
        bridge.adopt(self)
        self._task = asyncio.create_task(self._run(), name=name)

    def cancel(self) -> None:
        self._cancelled = True
        self._unlisten()
        self._bridge.release(self)
        self._task.cancel()

    def _on_state(self, state: ConnState) -> None:
        if state is ConnState.CONNECTED:
            self._kick.set()

    async def _step(self) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            self._kick.clear()  # before the step, so a watch firing during it is not missed
            await self._bridge.wait_connected()
            try:
                await self._step()
            except ZkUnavailable:
                await asyncio.sleep(_RETRY)
                continue
            except Exception:
                log.exception("%s failed; retrying in %.0fs", self._task.get_name(), _FAILED)
                await asyncio.sleep(_FAILED)
                continue
            await self._kick.wait()
