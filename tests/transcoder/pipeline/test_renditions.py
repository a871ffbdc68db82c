"""The video chain in process: one decode thread, a thread per rendition, real x264 and Redis.

What the threads must guarantee besides the output itself: keyframes on the same grid in every
rendition whichever thread is ahead, a failing rendition thread halting the worker as a failure,
and every thread ended once the chain is joined.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
import redis
from av.video.frame import VideoFrame

from cluster.hot import keys
from cluster.ladder import Rung, ladder
from tests.conftest import wait_for
from tests.transcoder.pipeline import hot
from tests.transcoder.pipeline.media import SIZE, Media
from transcoder.pipeline.context import Context
from transcoder.pipeline.control import END, FAILED, Control, spawn
from transcoder.pipeline.output import Output
from transcoder.pipeline.rendition import Decided, Rendition, x264_threads
from transcoder.pipeline.video import VideoChain

LOG = logging.LoggerAdapter(logging.getLogger("test.renditions"), {})
GOP_US = 2_000_000  # the tiny ladder's gop_seconds
JOIN = 10.0  # seconds; generous, the threads end within a frame of END or a halt


@pytest.fixture
def ctx(redis_sync: redis.Redis) -> Iterator[Context]:
    profile = ladder("tiny")
    control = Control()
    output = Output(redis_sync, "cam", 1, 4, 60.0, LOG, profile.gop_seconds)
    output.claim()
    resume = output.resume([r.name for r in profile.rungs])
    output.start(control)
    yield Context("cam", profile, control, output, resume, LOG)
    control.halt("test over")


def video_in(clip: Media, chain: VideoChain, until_us: int) -> None:
    control = chain.ctx.control
    for cfg in clip.codecs:
        if cfg.track == chain.track:
            assert control.put(chain.queue, cfg)
    for p in clip.until(until_us):
        if p.track == chain.track:
            assert control.put(chain.queue, p)


def video_track(clip: Media) -> int:
    return next(c.track for c in clip.codecs if c.kind == "video")


def test_each_rendition_encodes_on_its_own_thread_with_keyframes_on_one_grid(
    redis_sync: redis.Redis, clip: Media, ctx: Context
) -> None:
    chain = VideoChain(ctx, video_track(clip))
    chain.start()
    video_in(clip, chain, 7_000_000)
    assert ctx.control.put(chain.queue, END)
    assert chain.join(JOIN) == []
    assert [t.name for t in chain.threads] == ["video-decode", "video-240p", "video-120p"]
    assert not ctx.control.stopped.is_set(), ctx.control.reason
    wait_for(ctx.output.idle, "the writer to empty its queue")

    # 240p is the source's own size (its rendition encodes the decoded frame itself), 120p is
    # scaled; the source has a keyframe every second, the grid every two: only the grid's
    # survive, in both.
    assert [r.width for r in chain.renditions] == [SIZE[0], 212]
    for r in chain.renditions:
        segs = hot.entries(redis_sync, "cam", r.name)
        assert [e.msn for e in segs] == [0, 1, 2], r.name
        frames = hot.video(hot.file_of(redis_sync, "cam", r.name, segs))
        assert len(frames) == 3 * GOP_US // 1_000_000 * 15
        keys_at = [round(hot.at(f) * 1e6) for f in frames if f.key_frame]
        assert keys_at == [0, GOP_US, 2 * GOP_US], r.name
        # x264 runs single-threaded in the rendition's thread: one slice per picture.
        assert b" threads=1 " in hot.blob(redis_sync, keys.segment("cam", r.name, 0))


def test_a_failing_rendition_thread_halts_the_worker_as_a_failure(ctx: Context) -> None:
    # x264 refuses an odd width for 4:2:0; output_size never asks for one, so build it here.
    rendition = Rendition(ctx, Rung("odd", 120, 150), 213, 120)
    thread = spawn("video-odd", ctx.control, LOG, rendition.run)
    frame = VideoFrame(426, 240, "yuv420p")
    frame.pts = 0
    assert ctx.control.put(rendition.queue, Decided(0, frame, True, time.time()))
    thread.join(JOIN)
    assert not thread.is_alive()
    assert ctx.control.stopped.is_set()
    assert ctx.control.code == FAILED
    assert ctx.control.reason.startswith("video-odd failed")


def test_a_halt_mid_stream_ends_every_thread_of_the_chain(clip: Media, ctx: Context) -> None:
    chain = VideoChain(ctx, video_track(clip))
    chain.start()
    video_in(clip, chain, 3_000_000)
    wait_for(lambda: len(chain.threads) == 3, "the rendition threads to start")
    ctx.control.halt("stopped mid-stream")
    assert chain.join(JOIN) == []
    assert not any(t.is_alive() for t in chain.threads)


def test_x264_stays_in_the_rendition_thread_while_one_thread_keeps_real_time() -> None:
    assert x264_threads(1280, 720, 30, "veryfast") == 1
    assert x264_threads(640, 360, 30, "ultrafast") == 1
    assert x264_threads(1280, 720, 60, "veryfast") == 1
    # Beyond that x264 picks its own sliced threads, as it did before.
    assert x264_threads(1920, 1080, 30, "veryfast") == 0
    assert x264_threads(640, 360, 30, "medium") == 0
