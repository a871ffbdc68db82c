"""How a worker stops: fenced, SIGTERM, its parent gone, the link closed or refused."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess

import redis

from cluster.hot import keys
from cluster.hot.fence import FencedBatch, run_sync
from tests.conftest import wait_for
from tests.transcoder.conftest import StartWorker
from tests.transcoder.pipeline import hot
from tests.transcoder.pipeline.edge import FakeEdge, Feed
from tests.transcoder.pipeline.media import Media
from transcoder.pipeline.control import LINK_REFUSED, LINK_UNREACHABLE, ORPHANED
from transcoder.pipeline.job import Job, parent_pipe

QUICK = 1.0  # seconds; the goal is under half of it, the margin is for a busy CI machine


def claim(r: redis.Redis, epoch: int) -> None:
    run_sync(r, FencedBatch(), keys.epoch("cam"), epoch)


def exit_time(proc: BaseProcess, timeout: float = 10.0) -> float:
    start = time.monotonic()
    proc.join(timeout)
    assert proc.exitcode is not None, "the worker did not exit"
    return time.monotonic() - start


def busy_worker(
    r: redis.Redis, clip: Media, edge: FakeEdge, job: Job, start: StartWorker, **kw: object
) -> BaseProcess:
    """A worker fed at twice real time, caught in the middle of its work."""
    edge.feed(Feed(live=clip.packets, pace=2.0))
    proc = start(job, **kw)
    wait_for(lambda: hot.has_segments(r, "cam", 1), "the first segments", 30)
    return proc


def test_a_fenced_worker_writes_nothing_and_never_pulls(
    redis_sync: redis.Redis, edge: FakeEdge, make_job: Callable[..., Job], start_worker: StartWorker
) -> None:
    claim(redis_sync, 2)
    proc = start_worker(make_job(1))
    exit_time(proc)
    assert proc.exitcode == 0
    assert redis_sync.keys("*") == [keys.epoch("cam").encode()]
    assert int(redis_sync.get(keys.epoch("cam")) or 0) == 2
    assert edge.hellos == []


def test_a_worker_fenced_mid_stream_stops_writing_and_leaves(
    redis_sync: redis.Redis,
    clip: Media,
    edge: FakeEdge,
    make_job: Callable[..., Job],
    start_worker: StartWorker,
) -> None:
    proc = busy_worker(redis_sync, clip, edge, make_job(1), start_worker)
    claim(redis_sync, 2)
    before = {n: hot.entries(redis_sync, "cam", n) for n in hot.RENDITIONS}
    exit_time(proc)
    assert proc.exitcode == 0
    after = {n: hot.entries(redis_sync, "cam", n) for n in hot.RENDITIONS}
    assert after == before, "a fenced worker wrote after the claim"
    wait_for(lambda: edge.disconnects, "the edge to see the link close", 2)


def test_sigterm_stops_a_busy_worker_quickly(
    redis_sync: redis.Redis,
    clip: Media,
    edge: FakeEdge,
    make_job: Callable[..., Job],
    start_worker: StartWorker,
) -> None:
    proc = busy_worker(redis_sync, clip, edge, make_job(1), start_worker)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGTERM)
    assert exit_time(proc) < QUICK
    assert proc.exitcode == 0
    wait_for(lambda: edge.disconnects, "the edge to see the link close", 2)


def test_a_worker_dies_with_its_parent(
    redis_sync: redis.Redis,
    clip: Media,
    edge: FakeEdge,
    make_job: Callable[..., Job],
    start_worker: StartWorker,
) -> None:
    reader, writer = parent_pipe()
    proc = busy_worker(redis_sync, clip, edge, make_job(1), start_worker, alive=reader)
    writer.close()  # what the kernel does for a transcoder killed with -9
    assert exit_time(proc) < QUICK
    assert proc.exitcode == ORPHANED
    wait_for(lambda: edge.disconnects, "the edge to see the link close", 2)


def test_the_edge_closing_the_link_ends_the_worker(
    redis_sync: redis.Redis,
    clip: Media,
    edge: FakeEdge,
    make_job: Callable[..., Job],
    start_worker: StartWorker,
) -> None:
    edge.feed(Feed(live=clip.until(3_000_000)))
    proc = start_worker(make_job(1))
    wait_for(lambda: hot.has_segments(redis_sync, "cam", 1), "the first segments", 30)
    edge.drop()
    assert exit_time(proc) < QUICK
    assert proc.exitcode == 0


def test_refused_and_unreachable_links_exit_with_retryable_codes(
    redis_sync: redis.Redis, edge: FakeEdge, make_job: Callable[..., Job], start_worker: StartWorker
) -> None:
    edge.feed(Feed(refuse="epoch 1 is stale; current is 3"))
    proc = start_worker(make_job(1))
    exit_time(proc)
    assert proc.exitcode == LINK_REFUSED
    closed = edge.addr.rsplit(":", 1)[0] + ":1"
    proc = start_worker(make_job(1, source=closed))
    exit_time(proc)
    assert proc.exitcode == LINK_UNREACHABLE
    assert not hot.entries(redis_sync, "cam", "240p")
