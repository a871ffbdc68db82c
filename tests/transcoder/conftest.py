"""Transcoder fixtures: a synthetic clip as media-link packets, a fake edge, worker processes."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import pytest

from tests.transcoder.pipeline.edge import FakeEdge
from tests.transcoder.pipeline.media import Media, demux, make_clip
from transcoder.pipeline.job import Job, run_worker
from zoocast.local.servers import RedisServer

StartWorker = Callable[..., BaseProcess]


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Media:
    return demux(make_clip(tmp_path_factory.mktemp("media") / "clip.mp4"))


@pytest.fixture
def edge(clip: Media) -> Iterator[FakeEdge]:
    e = FakeEdge(clip.codecs)
    yield e
    e.close()


@pytest.fixture
def make_job(redis_server: RedisServer, edge: FakeEdge) -> Callable[..., Job]:
    def make(epoch: int, stream: str = "cam", **changes: object) -> Job:
        fields: dict[str, object] = {
            "stream": stream,
            "epoch": epoch,
            "node": "tc-test",
            "source": edge.addr,
            "profile": "tiny",
            "redis_url": redis_server.url,
            "hls_window": 4,
            "segment_ttl": 60.0,
            "link_connect_timeout": 2.0,
        }
        fields.update(changes)
        return Job(**fields)  # type: ignore[arg-type]

    return make


@pytest.fixture
def start_worker() -> Iterator[StartWorker]:
    """Start `run_worker` in a real child process, as the transcoder does (forkserver)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["transcoder.pipeline.job"])
    procs: list[BaseProcess] = []

    def start(job: Job, alive: Connection | None = None) -> BaseProcess:
        proc = ctx.Process(target=run_worker, args=(job, alive), name=f"worker-{job.epoch}")
        proc.start()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
