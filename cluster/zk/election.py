"""Leader election: the classic ephemeral-sequential recipe under Paths.election.

Each candidate creates `{token}_{sequence}` (ephemeral, sequential) and watches only the
candidate just ahead of it, so a departure wakes one process, not the herd. The lowest sequence
leads. The token, random per candidate, lets a candidate find its own node again when the reply
to its create was lost with the connection (otherwise that orphan would block everyone behind it
until the session ended).

Leadership is given up at once when the session is LOST: kazoo's report of expiry, or our own
timer on a SUSPENDED that outlived the session timeout (see state.py). A short SUSPENDED keeps
it: the session, and with it our node, may well survive, and writes made meanwhile fail anyway.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from cluster.errors import ZkNoNode, ZkUnavailable
from cluster.zk.recipe import Recipe
from cluster.zk.state import ConnState

if TYPE_CHECKING:
    from cluster.zk.bridge import ZkBridge

log = logging.getLogger(__name__)

LeadershipCallback = Callable[[bool], None]


def _sequence(name: str) -> int:
    return int(name.rsplit("_", 1)[1])


class Election(Recipe):
    """Campaigns until cancelled; `on_change(True/False)` on the loop at every transition."""

    def __init__(self, bridge: ZkBridge, identifier: bytes, on_change: LeadershipCallback) -> None:
        self._identifier = identifier
        self._on_change = on_change
        self._token = uuid.uuid4().hex[:12]
        self._me: str | None = None  # our candidate node's path, once known
        self.leading = False
        super().__init__(bridge, "zk election")

    @property
    def candidate(self) -> str | None:
        """Our candidate node's path, once created."""
        return self._me

    @property
    def _root(self) -> str:
        return self._bridge.paths.election

    def cancel(self) -> None:
        """Stop campaigning; leadership (if held) ends now, the node goes with the session."""
        super().cancel()
        self._set_leading(False)

    async def resign(self) -> None:
        """Stop campaigning and delete our candidate node, so the next in line takes over now."""
        self.cancel()
        me, self._me = self._me, None
        if me is not None:
            try:
                await self._bridge.delete(me)
            except (ZkNoNode, ZkUnavailable):
                pass

    def _set_leading(self, leading: bool) -> None:
        if leading == self.leading:
            return
        self.leading = leading
        log.info("leadership %s", "gained" if leading else "lost")
        try:
            self._on_change(leading)
        except Exception:
            log.exception("leadership callback failed")

    def _on_state(self, state: ConnState) -> None:
        super()._on_state(state)
        if state is ConnState.LOST:
            self._set_leading(False)

    async def _step(self) -> None:
        session = self._bridge.session_id
        kids = await self._bridge.children(self._root)
        if self._me is None or self._me.rsplit("/", 1)[1] not in kids:
            self._me = await self._find_mine(kids, session)
        if self._me is None:
            self._set_leading(False)
            self._me = await self._bridge.create(
                f"{self._root}/{self._token}_", self._identifier, ephemeral=True, sequence=True
            )
            kids = await self._bridge.children(self._root)
        ordered = sorted(kids, key=_sequence)
        mine = self._me.rsplit("/", 1)[1]
        if mine not in ordered:
            self._me = None
            self._kick.set()
            return
        index = ordered.index(mine)
        # Lead: watch our own node (its loss ends the reign). Follow: watch the one ahead.
        watched = mine if index == 0 else ordered[index - 1]
        stat = await self._bridge.exists(f"{self._root}/{watched}", self._kick.set)
        if stat is None:
            self._kick.set()
            return
        if index == 0 and stat.ephemeral_owner != session:
            self._me = None  # a node of our expired session, about to vanish
            self._kick.set()
            return
        self._set_leading(index == 0)

    async def _find_mine(self, kids: list[str], session: int | None) -> str | None:
        for kid in kids:
            if kid.startswith(f"{self._token}_"):
                path = f"{self._root}/{kid}"
                stat = await self._bridge.exists(path)
                if stat is not None and stat.ephemeral_owner == session:
                    return path
        return None
