"""The coordinator's I/O shell: campaign, and while leading, keep placements reconciled.

A term of leadership starts with an empty view read afresh from ZooKeeper (never what an earlier
term believed) and a first pass that changes only what needs changing, so running streams are
not touched by a failover of the coordinator itself. Every watch event marks the view dirty;
a pass waits a few milliseconds to let a burst settle (a dying transcoder fires its children
watch, its data watch and its streams' publisher reports together), then reconciles once.
The term ends the moment leadership is lost: the pass in progress is cancelled, and whatever
it had in flight can only land if its compare-and-set still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import time
from dataclasses import dataclass

from cluster.errors import Conflict, ZkNoNode, ZkUnavailable
from cluster.payloads import LeaderInfo, now
from cluster.zk.bridge import ZkBridge
from cluster.zk.election import Election
from cluster.zk.ephemeral import EphemeralNode
from coordinator.apply import Batch, apply, batches, restamp, send
from coordinator.placement.reconcile import reconcile, stale_dirs
from coordinator.placement.snapshot import Change, Snapshot
from coordinator.placement.standby import PLAN_AT, Plan, carriers, fingerprint, plan
from coordinator.view import View

log = logging.getLogger(__name__)

_FAILED_PASS_PAUSE = 1.0
_PRUNE_AFTER = 10.0  # seconds an assignment directory stays empty and ownerless before it goes
_PREPARE_AFTER = 0.2  # seconds of quiet after a pass that changed nothing before plans are made
_PLAN_STAMP = repr(PLAN_AT).encode()


@dataclass
class PassStats:
    """The latest pass that moved something, for /metrics and the placement benchmark."""

    changes: int = 0  # placement changes (moves, new placements, releases)
    lost: int = 0
    # From the first event that woke the leader to the last write committed.
    since_event_ms: float = 0.0
    ended_at: float = 0.0  # time.monotonic(), comparable across processes on one host
    reconcile_ms: float = 0.0
    apply_ms: float = 0.0


class Leader:
    def __init__(
        self,
        zk: ZkBridge,
        node: str,
        api_url: str,
        *,
        coalesce: float = 0.005,
        retry_after: float = 0.2,
        prune_after: float = _PRUNE_AFTER,
    ) -> None:
        self._zk = zk
        self._node = node
        self._api_url = api_url
        self._coalesce = coalesce  # seconds a burst of events is given to settle
        self._retry_after = retry_after  # seconds before a lost change is tried again
        self._prune_after = prune_after  # seconds an ownerless empty directory is left alone
        self._election: Election | None = None
        self._term: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._woken_at = 0.0
        self.view: View | None = None
        self.passes = 0
        self.changes_total = 0
        self.moves_total = 0  # changes that wrote a placement (the rest only clean up)
        self.plans_followed = 0
        # Standby plans by transcoder: the moves its death calls for, decided and encoded ahead.
        self._plans: dict[str, tuple[Plan, list[Batch]]] = {}
        self._preparing: asyncio.Task[None] | None = None
        self._stale_since: dict[str, float] = {}  # ownerless empty directories, first seen
        self.lost_total = 0
        self.last = PassStats()

    @property
    def leading(self) -> bool:
        return self._term is not None

    def start(self) -> None:
        self._election = self._zk.election(self._node.encode(), self._on_leadership)

    async def stop(self) -> None:
        """Resign: the next candidate takes over at once instead of after our session ends."""
        term = self._term
        self._end_term()
        if term is not None:
            await asyncio.wait([term])  # let the term clean up; its cancellation is not ours
        if self._election is not None:
            await self._election.resign()
            self._election = None

    def metrics(self) -> dict[str, float]:
        snap = self.view.snapshot() if self.view else None
        return {
            "coordinator_leader": float(self.leading),
            "coordinator_passes_total": self.passes,
            "coordinator_changes_total": self.changes_total,
            "coordinator_moves_total": self.moves_total,
            "coordinator_standby_plans": len(self._plans),
            "coordinator_standby_plans_followed_total": self.plans_followed,
            "coordinator_lost_changes_total": self.lost_total,
            "coordinator_last_pass_ms": self.last.since_event_ms,
            "coordinator_last_pass_changes": self.last.changes,
            "coordinator_last_pass_end_monotonic_seconds": self.last.ended_at,
            "coordinator_transcoders": len(snap.transcoders) if snap else 0,
            "coordinator_streams": len(snap.streams) if snap else 0,
        }

    # -- leadership ----------------------------------------------------------------------------

    def _on_leadership(self, leading: bool) -> None:
        if leading and self._term is None:
            self._term = asyncio.create_task(self._lead(), name="coordinator term")
        elif not leading:
            self._end_term()

    def _end_term(self) -> None:
        term, self._term = self._term, None
        if term is not None:
            term.cancel()

    async def _lead(self) -> None:
        started = time.monotonic()
        view = View(self._zk, self._changed)
        info = LeaderInfo(self._node, self._api_url)
        # Not awaited: the old leader's node goes with its session, which has ended if we lead.
        marker = EphemeralNode(self._zk, self._zk.paths.leader, bytes(info))
        self.view = view
        try:
            await view.start()
            # The view lives as long as the term: move it out of the collector's sight. Full
            # collections that walked it took 50-150 ms with 1000 streams, landing in the
            # middle of failover passes.
            gc.freeze()
            snap = view.snapshot()
            log.info(
                "leading: %d transcoders, %d streams read in %.0f ms",
                len(snap.transcoders),
                len(snap.streams),
                (time.monotonic() - started) * 1000,
            )
            self._changed()
            while True:
                await self._wake.wait()
                await asyncio.sleep(self._coalesce)
                self._wake.clear()
                try:
                    await self._pass(view)
                except ZkUnavailable as exc:
                    # Suspended: writes wait for the session to come back, or the term ends.
                    log.warning("placement pass interrupted: %s", exc.detail)
                    await self._zk.wait_connected()
                    self._changed()
                except Exception:
                    # A bug must not leave a leader that holds the office and does nothing.
                    log.exception("placement pass failed; retrying in %.1fs", _FAILED_PASS_PAUSE)
                    await asyncio.sleep(_FAILED_PASS_PAUSE)
                    self._changed()
        finally:
            self._stop_preparing()
            self._plans = {}
            gc.unfreeze()  # the view becomes garbage now, cycles included
            view.stop()
            if self.view is view:
                self.view = None
            self._zk.spawn(marker.remove())
            log.info("term of leadership over")

    def _changed(self) -> None:
        self._stop_preparing()  # what it was preparing from is out of date
        if not self._wake.is_set():
            self._woken_at = time.monotonic()
            self._wake.set()

    async def _pass(self, view: View) -> None:
        woken_at = self._woken_at
        snap = view.snapshot()
        if await self._follow_plan(view, snap, woken_at):
            snap = view.snapshot()  # what is left: the dead node's assignments, anything else
        t0 = time.monotonic()
        changes = reconcile(snap)
        self.passes += 1
        if not changes:
            await self._prune(view, stale_dirs(snap))
            self._preparing = asyncio.create_task(self._prepare(view), name="standby plans")
            return
        # Moves first, and timed on their own: clean-up (stray assignments, a dead node's
        # leftovers) waits until every stream has its new place.
        moves = [c for c in changes if c.placement is not None]
        cleanup = [c for c in changes if c.placement is None]
        t1 = time.monotonic()
        lost = await apply(self._zk, moves, view.assignment_dirs, view.committed)
        t2 = time.monotonic()
        if moves:
            self.moves_total += len(moves) - len(lost)
            self.last = PassStats(
                len(moves),
                len(lost),
                (t2 - woken_at) * 1000,
                t2,
                (t1 - t0) * 1000,
                (t2 - t1) * 1000,
            )
        lost += await apply(self._zk, cleanup, view.assignment_dirs, view.committed)
        self.changes_total += len(changes) - len(lost)
        self.lost_total += len(lost)
        log.info(
            "pass: %d moves, %d clean-ups (%d lost); moves done %.1f ms after the event "
            "(reconcile %.1f, write %.1f)",
            len(moves),
            len(cleanup),
            len(lost),
            (t2 - woken_at) * 1000,
            (t1 - t0) * 1000,
            (t2 - t1) * 1000,
        )
        if lost:
            for change in lost:
                with contextlib.suppress(ZkUnavailable):
                    await view.refresh(change)
            asyncio.get_running_loop().call_later(self._retry_after, self._changed)

    # -- standby plans ---------------------------------------------------------------------

    def _stop_preparing(self) -> None:
        task, self._preparing = self._preparing, None
        if task is not None:
            task.cancel()

    async def _prepare(self, view: View) -> None:
        """Decide and encode, for every transcoder carrying streams, the moves its death would
        call for. Runs only while nothing changes (any event cancels it); plans whose inputs
        did not change are kept as they are."""
        await asyncio.sleep(_PREPARE_AFTER)
        snap = view.snapshot()
        fresh: dict[str, tuple[Plan, list[Batch]]] = {}
        for node in sorted(carriers(snap)):
            old = self._plans.get(node)
            if old is not None and old[0].fingerprint == fingerprint(snap, node):
                fresh[node] = old
                continue
            p = plan(snap, node)
            fresh[node] = (p, list(batches(self._zk.paths, p.moves)))
            await asyncio.sleep(0)  # one node at a time: watch events and HTTP stay served
        self._plans = fresh

    async def _follow_plan(self, view: View, snap: Snapshot, woken_at: float) -> bool:
        """If exactly one planned-for transcoder is gone and nothing else changed, write its
        prepared moves at once. True if it did (lost changes are left to reconcile)."""
        gone = [n for n in self._plans if n not in snap.transcoders]
        followed = {n: self._plans.pop(n) for n in gone}
        if len(gone) != 1:
            return False
        (node,) = gone
        planned, prepared = followed[node]
        if fingerprint(snap, node) != planned.fingerprint:
            log.info("standby plan for %s is out of date; reconciling instead", node)
            return False
        t1 = time.monotonic()
        at = now()

        def committed(change: Change, zxid: int | None) -> None:
            assert change.placement is not None
            stamped = dataclasses.replace(change, placement=change.placement.stamped(at))
            view.committed(stamped, zxid)

        lost = await send(self._zk, restamp(prepared, _PLAN_STAMP, repr(at).encode()), committed)
        t2 = time.monotonic()
        self.plans_followed += 1
        self.moves_total += len(planned.moves) - len(lost)
        self.changes_total += len(planned.moves) - len(lost)
        self.lost_total += len(lost)
        self.last = PassStats(
            len(planned.moves), len(lost), (t2 - woken_at) * 1000, t2, 0.0, (t2 - t1) * 1000
        )
        log.info(
            "transcoder %s gone: followed its standby plan, %d moves (%d lost) done %.1f ms "
            "after the event (write %.1f)",
            node,
            len(planned.moves),
            len(lost),
            self.last.since_event_ms,
            self.last.apply_ms,
        )
        for change in lost:
            with contextlib.suppress(ZkUnavailable):
                await view.refresh(change)
        return True

    async def _prune(self, view: View, dirs: list[str]) -> None:
        # A transcoder creates its directory just before it registers: a directory is pruned
        # only once it has been without a transcoder for a while, not in that gap.
        now_ = time.monotonic()
        self._stale_since = {n: self._stale_since.get(n, now_) for n in dirs}
        due = [n for n, since in self._stale_since.items() if now_ - since >= self._prune_after]
        if len(due) < len(dirs):  # come back when the others are due
            wait = min(self._prune_after - (now_ - s) for s in self._stale_since.values())
            asyncio.get_running_loop().call_later(max(wait, 0.0) + 0.01, self._changed)
        for node in due:
            try:
                await self._zk.delete(self._zk.paths.node_assignments(node))
            except (ZkNoNode, Conflict):
                continue  # gone already, or something was assigned meanwhile
            view.forget_dir(node)
            log.info("removed the empty assignment directory of departed transcoder %s", node)
