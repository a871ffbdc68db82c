"""Worker processes, one per stream, started from a warm fork server.

Starting a fresh Python process costs about a second of imports (av, numpy), which would land in
the failover gap. A forkserver that has already imported the pipeline forks a ready worker in
milliseconds instead, and, unlike forking the node itself, never copies kazoo's threads or locks.

Each worker holds the read end of a pipe whose only write end stays in the node: if the node
dies (even by kill -9) the pipe reads EOF and the worker exits at once, which closes its media
link so the edge notices immediately.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from cluster.config import Settings
from cluster.ladder import resolve
from cluster.payloads import Assignment
from transcoder.pipeline.job import Job, run_worker

log = logging.getLogger(__name__)

RESTARTS = 3  # attempts for one epoch before leaving it to the coordinator's failover
RESTART_DELAY = 1.0
STOP_GRACE = 2.0

Exited = Callable[[str, int, int | None], None]


@dataclass
class Worker:
    stream: str
    epoch: int
    cost: float
    proc: BaseProcess
    started: float = field(default_factory=time.monotonic)
    stopping: bool = False
    exited: asyncio.Event = field(default_factory=asyncio.Event)


class Workers:
    def __init__(self, settings: Settings, on_exit: Exited) -> None:
        self.settings = settings
        self.on_exit = on_exit
        self.ctx = multiprocessing.get_context("forkserver")
        self.running: dict[str, Worker] = {}
        self.starts = 0
        self._attempts: dict[tuple[str, int], int] = {}
        self._not_before: dict[tuple[str, int], float] = {}
        alive_r, alive_w = self.ctx.Pipe(duplex=False)
        self._alive_r: Connection = alive_r
        self._alive_w: Connection = alive_w  # never written; its closing is the message

    async def warm_up(self) -> None:
        """Start the fork server with the pipeline imported, before any stream needs it."""
        self.ctx.set_forkserver_preload(["transcoder.pipeline.job"])
        await asyncio.to_thread(multiprocessing.forkserver.ensure_running)

    def load(self) -> float:
        return sum(w.cost for w in self.running.values())

    def finished(self, stream: str, epoch: int) -> bool:
        """True when this epoch should not be started (again) now."""
        key = (stream, epoch)
        if self._attempts.get(key, 0) >= RESTARTS:
            return True
        return time.monotonic() < self._not_before.get(key, 0.0)

    def start(self, a: Assignment) -> None:
        s = self.settings
        job = Job(
            stream=a.stream,
            epoch=a.epoch,
            node=s.node_id,
            source=a.source,
            profile=a.profile,
            ladder=a.ladder,
            session=a.session,
            feed_key_interval=s.feed_key_interval,
            redis_url=s.redis,
            hls_window=s.hls_window,
            segment_ttl=s.segment_ttl,
            link_connect_timeout=s.link_connect_timeout,
            log_level=s.log_level,
            log_json=s.log_json,
        )
        proc = self.ctx.Process(
            target=run_worker,
            args=(job, self._alive_r),
            name=f"zoocast-worker-{a.stream}",
            daemon=False,
        )
        proc.start()
        self.starts += 1
        key = (a.stream, a.epoch)
        self._attempts[key] = self._attempts.get(key, 0) + 1
        worker = Worker(a.stream, a.epoch, resolve(a.profile, a.ladder).cost, proc)
        self.running[a.stream] = worker
        loop = asyncio.get_running_loop()
        loop.add_reader(proc.sentinel, self._reap, worker)
        log.info("worker for %s epoch %d started (pid %s)", a.stream, a.epoch, proc.pid)

    def _reap(self, worker: Worker) -> None:
        asyncio.get_running_loop().remove_reader(worker.proc.sentinel)
        worker.proc.join(0)
        code = worker.proc.exitcode
        worker.exited.set()
        if self.running.get(worker.stream) is worker:
            del self.running[worker.stream]
        key = (worker.stream, worker.epoch)
        if code == 0 or worker.stopping:
            # 0: EOS, superseded, fenced or stopped; final. Others (link refused, edge or Redis
            # unreachable, a crash) are retried a few times before failover takes over.
            self._attempts[key] = RESTARTS
        else:
            self._not_before[key] = time.monotonic() + RESTART_DELAY
            asyncio.get_running_loop().call_later(
                RESTART_DELAY, self.on_exit, worker.stream, worker.epoch, code
            )
        log.info(
            "worker for %s epoch %d exited with %s after %.1fs",
            worker.stream,
            worker.epoch,
            code,
            time.monotonic() - worker.started,
        )
        worker.proc.close()
        self.on_exit(worker.stream, worker.epoch, code)

    async def stop(self, stream: str, reason: str) -> None:
        worker = self.running.get(stream)
        if worker is None or worker.stopping:
            return
        worker.stopping = True
        log.info("stopping worker for %s epoch %d: %s", stream, worker.epoch, reason)
        pid = worker.proc.pid
        assert pid is not None  # started workers always have one
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(worker.exited.wait(), STOP_GRACE)
        except TimeoutError:
            log.warning("worker for %s ignored SIGTERM; killing it", stream)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await worker.exited.wait()

    async def stop_all(self, reason: str) -> None:
        await asyncio.gather(*(self.stop(s, reason) for s in list(self.running)))
        self._alive_w.close()
