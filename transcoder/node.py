"""The transcoder process: registers in ZooKeeper, follows its assignments, runs one worker per stream.

The node itself does no media work: pipelines run in worker processes (`transcoder.workers`), so
the event loop that answers ZooKeeper pings and HTTP probes never waits behind an encoder.
When the session is lost the node stops every worker at once (self-fencing; the Redis epoch
check is the real fence) and registers again when a new session is established.
"""

from __future__ import annotations

import asyncio
import functools
import logging

from aiohttp import web

from cluster.config import Settings
from cluster.errors import BadRequest, ZkNodeExists
from cluster.ladder import resolve
from cluster.ops import METRICS, READY_CHECKS, make_app
from cluster.payloads import Assignment, TranscoderInfo
from cluster.runtime import wait_for_signal
from cluster.zk.bridge import ZkBridge
from cluster.zk.ephemeral import EphemeralNode
from cluster.zk.state import ConnState
from cluster.zk.watch import ChildrenWatch, DataWatch
from transcoder.workers import Workers

log = logging.getLogger(__name__)

VERSION = "0.1.0"


class TranscoderNode:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.zk = ZkBridge.from_settings(settings)
        self.paths = self.zk.paths
        self.workers = Workers(settings, self._worker_exited)
        self.wanted: dict[str, Assignment] = {}
        self._watches: dict[str, DataWatch] = {}
        self._children: ChildrenWatch | None = None
        self._znode: EphemeralNode | None = None
        self._runner: web.AppRunner | None = None
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fenced = False

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        await self.workers.warm_up()
        await self.zk.start()
        self.zk.on_state(self._on_state)
        try:
            await self.zk.create(self.paths.node_assignments(s.node_id), makepath=True)
        except ZkNodeExists:
            pass
        app = make_app()
        app[READY_CHECKS].append(self._ready)
        app[METRICS].append(self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, s.bind, s.http_port).start()
        self._znode = await self.zk.ephemeral(self.paths.transcoder(s.node_id), bytes(self.info()))
        self._children = self.zk.watch_children(
            self.paths.node_assignments(s.node_id), self._on_children
        )
        self._task = asyncio.create_task(self._reconcile_loop(), name="transcoder reconcile")
        log.info("transcoder up: capacity %.1f, http %s", s.capacity, s.http_url)

    async def stop(self) -> None:
        # Leave the cluster first: the leader moves our streams at once, and their successors
        # fence our workers; then stop the workers.
        if self._task:
            self._task.cancel()
        await self.zk.stop()
        await self.workers.stop_all("transcoder stopping")
        if self._runner:
            await self._runner.cleanup()
        log.info("transcoder stopped")

    def info(self) -> TranscoderInfo:
        s = self.settings
        return TranscoderInfo(
            node=s.node_id,
            http_url=s.http_url,
            media_addr=s.media_addr,
            capacity=s.capacity,
            load=round(self.workers.load(), 3),
            streams=sorted(self.workers.running),
            version=VERSION,
        )

    def _ready(self) -> str | None:
        if self.zk.state is not ConnState.CONNECTED:
            return f"ZooKeeper session {self.zk.state.value}"
        return None

    def _metrics(self) -> dict[str, float]:
        return {
            "transcoder_workers": len(self.workers.running),
            "transcoder_load": self.workers.load(),
            "transcoder_capacity": self.settings.capacity,
            "transcoder_worker_starts_total": self.workers.starts,
        }

    # -- ZooKeeper events (on the loop) ---------------------------------------------------------

    def _on_state(self, state: ConnState) -> None:
        if state is ConnState.LOST:
            # Our assignments now belong to someone else; stop writing before being told.
            self._fenced = True
            self._dirty.set()
        elif state is ConnState.CONNECTED and self._fenced:
            self._fenced = False
            self._dirty.set()

    def _on_children(self, children: list[str] | None) -> None:
        children = children or []
        for stream in set(self._watches) - set(children):
            self._watches.pop(stream).cancel()
            self.wanted.pop(stream, None)
        for stream in set(children) - set(self._watches):
            path = self.paths.assignment(self.settings.node_id, stream)
            self._watches[stream] = self.zk.watch_data(
                path, functools.partial(self._on_assignment, stream)
            )
        self._dirty.set()

    def _on_assignment(self, stream: str, data: bytes | None) -> None:
        if data is None:
            self.wanted.pop(stream, None)
        else:
            try:
                a = Assignment.parse(data)
                resolve(a.profile, a.ladder)
                self.wanted[stream] = a
            except BadRequest as exc:
                log.error("ignoring unreadable assignment for %s: %s", stream, exc.detail)
                self.wanted.pop(stream, None)
        self._dirty.set()

    def _worker_exited(self, stream: str, epoch: int, code: int | None) -> None:
        self._dirty.set()

    # -- reconcile: running workers follow wanted assignments -------------------------------------

    async def _reconcile_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._reconcile()
            except Exception:
                log.exception("reconcile failed; retrying")
                await asyncio.sleep(0.5)
                self._dirty.set()

    async def _reconcile(self) -> None:
        wanted = {} if self._fenced else dict(self.wanted)
        stops = [
            self.workers.stop(
                stream, "assignment removed" if stream not in wanted else "superseded"
            )
            for stream, w in list(self.workers.running.items())
            if stream not in wanted or wanted[stream].epoch != w.epoch
        ]
        if stops:
            await asyncio.gather(*stops)
        for stream, a in wanted.items():
            if stream not in self.workers.running and not self.workers.finished(stream, a.epoch):
                self.workers.start(a)
        if self._znode is not None and not self._fenced:
            await self._znode.update(bytes(self.info()))


async def main(settings: Settings) -> None:
    node = TranscoderNode(settings)
    try:
        await node.start()
        reason = await wait_for_signal()
        log.info("transcoder stopping on %s", reason)
    finally:
        await node.stop()
