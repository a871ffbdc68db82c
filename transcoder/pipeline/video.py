"""The video chain's front: media-link packets in, decided frames out to one thread per rendition.

One thread decodes and makes every per-frame decision once (skip what the predecessor already
packaged, cap the frame rate, force keyframes on the grid), so that all renditions encode the
same frames with the same keyframes and therefore cut aligned segments.
"""

from __future__ import annotations

import queue
import threading
import time

import av
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType, VideoFrame

from cluster.medialink.frames import CodecConfig, MediaPacket
from transcoder.pipeline.context import MICROS, Context
from transcoder.pipeline.control import END, End, join_all, spawn
from transcoder.pipeline.rendition import TIME_BASE, Decided, Rendition
from transcoder.pipeline.timing import Decimator, Grid, to_ticks

PACKET_QUEUE = 2048  # a GOP replay of many seconds arrives in one burst
DECODE_ERRORS_LOGGED = 5
# Slice threads only (PyAV's default, kept on purpose): they add no delay, cost nothing measurable
# on the single-slice pictures encoders usually send, and help a big multi-slice source. Frame
# threads would hold frames back (latency, and frames left in the decoder at EOS).
DECODE_THREAD_TYPE = "SLICE"

VideoIn = CodecConfig | MediaPacket | End


class VideoChain:
    def __init__(self, ctx: Context, track: int) -> None:
        self.ctx = ctx
        self.track = track
        self.queue: queue.Queue[VideoIn] = queue.Queue(PACKET_QUEUE)
        self.renditions: list[Rendition] = []
        # The decode thread first, then one per rendition, which only the decode thread starts.
        self.threads: list[threading.Thread] = []
        self._decoder: VideoCodecContext | None = None
        self._config: CodecConfig | None = None
        self._decimator = Decimator(ctx.ladder.fps)
        self._grid: Grid | None = None
        self._prev_us: int | None = None
        self._errors = 0
        self._replayed = False  # packets from the edge's GOP cache came first
        self._live = False  # a live packet came after them

    def start(self) -> None:
        self.threads.append(spawn("video-decode", self.ctx.control, self.ctx.log, self._run))

    def join(self, timeout: float) -> list[str]:
        """After END or a halt: wait for the decode thread, then for the rendition threads
        (none can be added once it ended); returns the names of those still running."""
        deadline = time.monotonic() + timeout
        stuck = join_all(self.threads[:1], timeout)
        return stuck + join_all(self.threads[1:], max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        control = self.ctx.control
        while (item := control.get(self.queue)) is not None:
            if isinstance(item, End):
                for r in self.renditions:
                    control.put(r.queue, END)
                return
            if isinstance(item, CodecConfig):
                self._open(item)
            elif self._decoder is not None:
                self._decode(self._decoder, item)

    def _open(self, cfg: CodecConfig) -> None:
        if cfg == self._config:
            return  # a repeated sequence header: reopening would lose the reference frames
        self._config = cfg
        decoder = av.CodecContext.create(cfg.codec, "r")
        if not isinstance(decoder, VideoCodecContext):
            raise ValueError(f"{cfg.codec} is not a video codec")
        if cfg.extradata:
            # AVCC from RTMP/MP4 needs the avcC record; Annex-B carries SPS/PPS in band.
            decoder.extradata = cfg.extradata
        decoder.thread_type = DECODE_THREAD_TYPE
        self._decoder = decoder

    def _decode(self, decoder: VideoCodecContext, pkt: MediaPacket) -> None:
        if pkt.replay:
            self._replayed = True
        elif self._replayed and not self._live:
            self._live = True
            # The feed comes out of the replay in a burst, from before what the predecessor's
            # feed already sent: an IDR where live media begins lets the edge switch its
            # viewers there instead of a GOP later.
            self.ctx.keys.at(pkt.pts_us)
        packet = av.Packet(pkt.data)
        packet.pts, packet.dts, packet.time_base = pkt.pts_us, pkt.dts_us, MICROS
        try:
            frames = decoder.decode(packet)
        except av.FFmpegError as exc:
            # A damaged packet costs a few frames, not the stream.
            self._errors += 1
            if self._errors <= DECODE_ERRORS_LOGGED:
                self.ctx.log.warning("video decode error at %d us: %s", pkt.pts_us, exc)
            return
        for frame in frames:
            if frame.pts is not None:
                self._frame(frame, int(frame.pts))

    def _frame(self, frame: VideoFrame, t_us: int) -> None:
        ctx = self.ctx
        # Frames the predecessor already packaged are decoded (later frames refer to them) but
        # never encoded: the successor's first segment starts where the last one ended.
        if t_us < ctx.resume_us or not self._decimator.take(t_us):
            return
        grid = self._grid or self._start(frame, t_us)
        key = grid.starts_segment(self._prev_us, t_us)
        self._prev_us = t_us
        # Decoded frames carry the source's picture type and libx264 obeys it: an I here would
        # make every source keyframe an IDR in every rendition. Only our grid decides. These are
        # the last writes to the frame: from here on rendition threads share it, read-only.
        frame.pict_type = PictureType.I if key else PictureType.NONE
        frame.pts, frame.time_base = to_ticks(t_us, TIME_BASE.denominator), TIME_BASE
        decided = Decided(t_us, frame, key, ctx.clock.wall(t_us, time.time()))
        for r in self.renditions:
            ctx.control.put(r.queue, decided)

    def _start(self, frame: VideoFrame, t_us: int) -> Grid:
        """First output frame: pick the rungs for the source size, start their encoders."""
        ctx = self.ctx
        rungs = ctx.ladder.rungs_for(frame.height)
        ctx.output.catalog.expect([r.name for r in rungs])
        webrtc = ctx.ladder.webrtc_rung(rungs)
        for rung in rungs:
            width, height = output_size(rung.height, frame.width, frame.height)
            r = Rendition(ctx, rung, width, height, webrtc=rung == webrtc)
            self.renditions.append(r)
            self.threads.append(spawn(f"video-{rung.name}", ctx.control, ctx.log, r.run))
        self._grid = ctx.origin.settle(t_us)
        ctx.log.info(
            "video %dx%d from %.3f s -> %s",
            frame.width,
            frame.height,
            t_us / 1e6,
            ", ".join(f"{r.name} {r.width}x{r.height}" for r in self.renditions),
        )
        return self._grid


def output_size(rung_height: int, src_width: int, src_height: int) -> tuple[int, int]:
    """The rung's size at the source's aspect ratio, never above the source (the ladder keeps
    its lowest rung even for a smaller source); H.264 4:2:0 needs even sizes."""
    height = max(2, min(rung_height, src_height - src_height % 2))
    width = round(src_width * height / src_height)
    return max(2, width - width % 2), height
