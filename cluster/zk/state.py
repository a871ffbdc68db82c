"""Connection state of a ZooKeeper session, as seen on the asyncio loop.

kazoo reports CONNECTED, SUSPENDED (the connection dropped, the session may still live) and LOST
(the server told us the session expired, or we closed it). It never turns a long SUSPENDED into
LOST by itself: while it cannot reach any server it keeps retrying with the old session, and only
learns of the expiry once a server answers. By then the server dropped our ephemerals and watches
long ago. This tracker applies Curator's rule instead: SUSPENDED for longer than the session
timeout is LOST, so leadership and registrations are given up no later than the server gives
them away.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Callable

log = logging.getLogger(__name__)


class ConnState(enum.Enum):
    CONNECTED = "connected"
    SUSPENDED = "suspended"
    LOST = "lost"


StateListener = Callable[[ConnState], None]


class SessionState:
    """Current state plus listeners, all on the loop; `feed` takes kazoo's reports."""

    def __init__(self, session_timeout: float) -> None:
        self.session_timeout = session_timeout
        self.state = ConnState.LOST  # nothing is established before the first CONNECTED
        self._listeners: list[StateListener] = []
        self._connected = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None

    def feed(self, reported: ConnState) -> None:
        if reported is ConnState.SUSPENDED:
            # After our own LOST, kazoo is still SUSPENDED: nothing new to say.
            if self.state is ConnState.CONNECTED:
                self._set(ConnState.SUSPENDED)
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(self.session_timeout, self._suspended_too_long)
            return
        self._cancel_timer()
        self._set(reported)

    def _suspended_too_long(self) -> None:
        self._timer = None
        if self.state is ConnState.SUSPENDED:
            log.warning(
                "ZooKeeper unreachable for %.1fs: session considered lost", self.session_timeout
            )
            self._set(ConnState.LOST)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _set(self, state: ConnState) -> None:
        if state is self.state:
            return
        log.info("ZooKeeper session %s -> %s", self.state.value, state.value)
        self.state = state
        if state is ConnState.CONNECTED:
            self._connected.set()
        else:
            self._connected.clear()
        for listener in list(self._listeners):
            try:
                listener(state)
            except Exception:
                log.exception("ZooKeeper state listener failed")

    def listen(self, listener: StateListener) -> Callable[[], None]:
        """Call `listener(state)` on every change; returns the function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    async def changes(self) -> AsyncIterator[ConnState]:
        """The current state, then every change, until the consumer stops iterating."""
        queue: asyncio.Queue[ConnState] = asyncio.Queue()
        queue.put_nowait(self.state)
        unsubscribe = self.listen(queue.put_nowait)
        try:
            while True:
                yield await queue.get()
        finally:
            unsubscribe()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def close(self) -> None:
        self._cancel_timer()
        self._set(ConnState.LOST)
