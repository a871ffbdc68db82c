"""The worker entry point: one Job (a stream at an epoch) in, an exit code out.

`run_worker(job, alive)` is the target of a worker process; `run(job, alive)` does the work and
returns the exit code (0: a final end — EOS, link closed, fenced, SIGTERM; other codes are worth
a restart). Order at start: claim the epoch in Redis first, so a paused predecessor is fenced
from this moment; read where it left off; only then pull the stream from the edge.

Imports stay light (no kazoo, no aiohttp): they land in the failover gap of a cold worker.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, NoReturn

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from cluster import logs
from cluster.errors import Fenced
from cluster.ladder import resolve
from cluster.logs import stream_logger
from transcoder.pipeline.context import AUDIO, Context
from transcoder.pipeline.control import (
    FAILED,
    LINK_REFUSED,
    LINK_UNREACHABLE,
    OK,
    POLL,
    REDIS_UNAVAILABLE,
    Control,
)
from transcoder.pipeline.feed import Feed
from transcoder.pipeline.keyreq import KEY_INTERVAL, KeyRequests
from transcoder.pipeline.link import Link, LinkRefused
from transcoder.pipeline.output import Output, Resume
from transcoder.pipeline.parent import Alive, flush_logs, parent_pipe, watch_parent
from transcoder.pipeline.pipeline import Pipeline

log = logging.getLogger(__name__)

DRAIN_TIMEOUT = 5.0  # after EOS, how long queued media may take to come out
# Once halted, how long the pipeline's threads get to end: each notices the halt within POLL,
# or after the codec call it is in (a frame's worth of work).
JOIN_TIMEOUT = 2.0
REDIS_TIMEOUT = 2.0


@dataclass(frozen=True)
class Job:
    """One stream at one epoch, as the transcoder hands it to a worker (picklable, no sockets)."""

    stream: str
    epoch: int
    node: str
    source: str  # the ingest edge's media address, host:port
    profile: str = "default"  # ladder profile name
    ladder: dict[str, Any] | None = None  # the stream's own ladder spec, if it has one
    session: str = ""  # the publisher session the assignment was made for (its clock)
    redis_url: str = "redis://127.0.0.1:6379/0"
    hls_window: int = 6
    segment_ttl: float = 120.0  # seconds
    link_connect_timeout: float = 2.0
    feed_key_interval: float = KEY_INTERVAL  # at most one IDR forced on the WebRTC rung this often
    log_level: str = "INFO"
    log_json: bool = False


def run_worker(job: Job, alive: Alive | None = None) -> NoReturn:
    """Process target: set up logging, run, and leave with run's exit code."""
    logs.setup("transcoder", job.node, job.log_level, job.log_json)
    try:
        code = run(job, alive)
    except BaseException:
        log.exception("worker for %s crashed", job.stream)
        code = FAILED
    flush_logs()
    # os._exit: encoder threads are daemons that may sit inside x264; nothing to clean up.
    os._exit(code)


def run(job: Job, alive: Alive | None = None) -> int:
    """Carry the stream until it ends or the worker is stopped; returns the exit code.

    On the main thread it handles SIGTERM/SIGINT; with `alive` (the read end of `parent_pipe`)
    it exits the process as soon as the parent is gone.
    """
    slog = stream_logger(log, job.stream)
    control = Control()
    if alive is not None:
        watch_parent(alive, slog)
    signals = Signals()
    if threading.current_thread() is threading.main_thread():
        signals.install()
    client = redis.Redis.from_url(
        job.redis_url,
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
        # redis-py's default retries back off for seconds; a lost write only costs a segment.
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
    )
    try:
        return _run(job, control, signals, client, slog)
    finally:
        client.close()


def _run(
    job: Job,
    control: Control,
    signals: Signals,
    client: redis.Redis,
    slog: logging.LoggerAdapter[Any],
) -> int:
    profile = resolve(job.profile, job.ladder)
    # A DVR window lengthens the playlist, and segments must live at least as long as it.
    window = profile.window(job.hls_window)
    ttl = max(job.segment_ttl, (window + 2) * profile.gop_seconds)
    output = Output(
        client, job.stream, job.epoch, window, ttl, slog, profile.gop_seconds, job.session
    )
    try:
        output.claim()
        resume = output.resume([*(r.name for r in profile.rungs), AUDIO])
    except Fenced as exc:
        slog.info("epoch %d not started: fenced by epoch %d", job.epoch, exc.stored_epoch)
        return OK
    except redis.RedisError as exc:
        slog.warning("epoch %d not started: redis unavailable: %s", job.epoch, exc)
        return REDIS_UNAVAILABLE
    if signals.check(control):  # SIGTERM while claiming
        return _stopped(control, slog)
    ctx = Context(
        job.stream, profile, control, output, resume, slog, keys=KeyRequests(job.feed_key_interval)
    )
    slog.info(
        "worker up: epoch %d, ladder %s, pulling %s; %s",
        job.epoch,
        profile.name,
        job.source,
        _resume_text(resume, ctx.resume_us),
    )
    link = Link(job.source, job.link_connect_timeout)
    control.on_halt(link.close)
    hello = {"v": 1, "stream": job.stream, "epoch": job.epoch, "node": job.node}
    try:
        link.open(hello)
    except (LinkRefused, OSError) as exc:
        if signals.check(control):
            return _stopped(control, slog)
        if isinstance(exc, LinkRefused):
            control.halt(f"media link refused: {exc}", LINK_REFUSED)
        else:
            control.halt(f"media link unreachable: {exc!r}", LINK_UNREACHABLE)
        return _stopped(control, slog)
    output.start(control)
    # Before the reader starts: the chains it creates look for the feed.
    ctx.feed = Feed(link.send, control, slog, on_loss=ctx.keys.request)
    ctx.feed.start()
    pipeline = Pipeline(ctx)
    pipeline.read(link)
    _wait(control, signals, pipeline)
    stuck = pipeline.join(JOIN_TIMEOUT)
    if stuck:
        # Daemons: the process exit takes them (run_worker leaves with os._exit).
        slog.warning("threads still running at exit: %s", ", ".join(stuck))
    return _stopped(control, slog)


class Signals:
    """SIGTERM/SIGINT, recorded by the handler and acted upon by the main thread.

    A handler runs on the main thread between two bytecodes, possibly while that thread holds
    the very lock it would need (Event.wait holds its condition's lock around each timed
    wait): calling `Event.set()` from the handler deadlocked the worker. So the handler only
    stores the signal's name, and the main thread, which never blocks for long, halts for it.
    """

    def __init__(self) -> None:
        self.name: str | None = None

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        self.name = signal.Signals(signum).name

    def check(self, control: Control) -> bool:
        """Halt if a signal came; True when the worker is stopping for any reason."""
        if self.name is not None:
            control.halt(self.name)
        return control.stopped.is_set()


def _wait(control: Control, signals: Signals, pipeline: Pipeline) -> None:
    drain_until: float | None = None
    while not signals.check(control):
        time.sleep(POLL)  # not Event.wait: see Signals
        if not pipeline.ended.is_set():
            continue
        drain_until = drain_until or time.monotonic() + DRAIN_TIMEOUT
        if not pipeline.busy():
            control.halt("the publisher ended (EOS)")
        elif time.monotonic() > drain_until:
            control.halt("the publisher ended (EOS); queued media dropped")


def _stopped(control: Control, slog: logging.LoggerAdapter[Any]) -> int:
    slog.info("worker stopped: %s (exit %d)", control.reason, control.code)
    return control.code


def _resume_text(resume: dict[str, Resume], resume_us: int) -> str:
    going = {n: r for n, r in resume.items() if r.continues}
    if not going:
        return "new stream, msn from 0"
    msns = ", ".join(f"{n} {r.msn}" for n, r in going.items())
    return f"continuing at msn {msns} from {resume_us / 1e6:.3f} s"


__all__ = ["Job", "parent_pipe", "run", "run_worker"]
