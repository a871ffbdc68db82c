"""One video rendition: decided frames in, x264 segments written to Redis out (its own thread).

Encoding releases the GIL, so one thread per rendition uses the cores. Each thread owns its
VideoReformatter: `VideoFrame.reformat()` caches one scaler on the shared source frame, and
several threads using it at once deadlocked.
"""

from __future__ import annotations

import queue
import statistics
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType, VideoFrame
from av.video.reformatter import Interpolation, VideoReformatter

from cluster.hot.model import RenditionInfo
from cluster.ladder import Rung
from transcoder.pipeline import avc, fmp4
from transcoder.pipeline.context import Context
from transcoder.pipeline.control import End
from transcoder.pipeline.feed_video import VideoFeed
from transcoder.pipeline.segments import Closed, Mark, Segmenter

TIME_BASE = Fraction(1, 90_000)  # the usual MP4 video timescale
FRAME_QUEUE = 16  # decoded frames are large; back-pressure reaches the decoder soon
VBV_PEAK = 1.2  # maxrate over the average bitrate
MUX_OVERHEAD = 1.1  # fMP4 boxes and slack, for the advertised BANDWIDTH
PIX_FMT = "yuv420p"  # what every rung encodes (H.264 4:2:0, 8 bit)
# The renditions are the parallelism (a thread each, and codecs release the GIL), so x264 and
# swscale work inside the rendition's thread. PyAV would otherwise ask for one thread per CPU
# for each (x264 sliced threads, swscale slices): hand-offs within every frame, and threads
# competing with the other workers on the node.
SCALE_THREADS = 1
# ...as long as one thread keeps real time with room to spare. x264 veryfast on one thread here:
# 720p 8 ms a frame, 1080p about 25 ms (the VM loaded), of the 33 ms a frame at 30 fps. Above 720p60's pixel rate, or with a slower
# preset, x264 keeps its own sliced threads (slices add no frame delay; frame threads would).
X264_ONE_THREAD_PIXELS = 1280 * 720 * 60  # pixels a second
X264_ONE_THREAD_PRESETS = ("ultrafast", "superfast", "veryfast")


def x264_threads(width: int, height: int, fps: int, preset: str) -> int:
    """x264's thread count for a rung: 1, or 0 for x264's own choice (one per CPU)."""
    light = width * height * fps <= X264_ONE_THREAD_PIXELS
    return 1 if light and preset in X264_ONE_THREAD_PRESETS else 0


def open_encoder(
    rung: Rung, width: int, height: int, preset: str, fps: int, webrtc: bool = False
) -> VideoCodecContext:
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, PIX_FMT
    enc.thread_count = x264_threads(width, height, fps, preset)
    enc.time_base = TIME_BASE
    enc.framerate = Fraction(fps)
    enc.bit_rate = rung.video_kbps * 1000
    peak = int(rung.video_kbps * VBV_PEAK)
    params = f"scenecut=0:keyint=infinite:bframes=0:vbv-maxrate={peak}:vbv-bufsize={peak}"
    options = {
        "preset": preset,
        # No lookahead, no B-frames: a frame leaves the encoder as soon as it went in (about
        # 13 frames earlier than default x264), and dts == pts, so no composition offsets.
        "tune": "zerolatency",
        "forced-idr": "1",
    }
    if webrtc:
        # aiortc negotiates only 42001f/42e01f and checks the profile; every browser decodes it.
        options["profile"] = "baseline"
        # SPS/PPS in band before every IDR: a viewer may join at any of them.
        params += ":repeat-headers=1"
    # Keyframes only where we force them (the grid): no scene cuts, no keyint of its own.
    options["x264-params"] = params
    enc.options = options
    return enc


@dataclass(frozen=True)
class Decided:
    """A frame every rendition encodes: publisher time, keyframe decision, wall-clock estimate."""

    t_us: int
    frame: VideoFrame
    key: bool
    wall: float


class Rendition:
    def __init__(
        self, ctx: Context, rung: Rung, width: int, height: int, webrtc: bool = False
    ) -> None:
        self.ctx = ctx
        self.name = rung.name
        self.rung = rung
        self.width, self.height = width, height
        self.queue: queue.Queue[Decided | End] = queue.Queue(FRAME_QUEUE)
        self.out = ctx.output.track(rung.name, ctx.resume_for(rung.name))
        self.segmenter = Segmenter(
            part_ticks=round(ctx.ladder.part_seconds * TIME_BASE.denominator)
        )
        self.marks: dict[int, Mark] = {}  # pts of a forced keyframe -> its segment boundary
        self.codecs = ""
        self.info: RenditionInfo | None = None
        self.webrtc = webrtc
        self.feed: VideoFeed | None = None
        if webrtc and ctx.feed is not None:
            self.feed = VideoFeed(ctx.feed, ctx.keys, width, height)

    def run(self) -> None:
        ladder, control = self.ctx.ladder, self.ctx.control
        encoder = open_encoder(
            self.rung, self.width, self.height, ladder.preset, ladder.fps, self.webrtc
        )
        scaler = VideoReformatter()
        while (item := control.get(self.queue)) is not None and not isinstance(item, End):
            src = item.frame
            force = False
            if self.feed is not None and src.pts is not None:
                force = self.feed.frame(src.pts, item.t_us, item.key)
            frame = self._picture(scaler, src, force)
            if item.key and src.pts is not None:
                self.marks[src.pts] = Mark(item.t_us, item.wall)
            for packet in encoder.encode(frame):
                self._packet(packet)
                if control.stopped.is_set():
                    return
        # On END or a halt the segment in progress is dropped: it has no end yet.

    def _picture(self, scaler: VideoReformatter, src: VideoFrame, force: bool) -> VideoFrame:
        """The frame this rendition encodes: the shared decoded frame itself when it already
        has the rung's size and format, else a scaled frame of its own.

        The shared frame is read-only here: other rendition threads read it meanwhile. So it
        is not even handed to `reformat` when there is nothing to do (a no-op reformat still
        writes and restores its colour fields), and an extra IDR on it needs a private copy
        (rare: keyframe requests are rate-limited). A rung that scales cannot avoid PyAV's
        write-and-restore of those fields around swscale; they are metadata, not pixels.
        """
        if (src.width, src.height, src.format.name) == (self.width, self.height, PIX_FMT):
            if not force:
                return src  # its picture type is already the grid's (VideoChain sets it)
            frame = VideoFrame.from_ndarray(src.to_ndarray(), format=PIX_FMT)
        else:
            frame = scaler.reformat(
                src,
                self.width,
                self.height,
                PIX_FMT,
                interpolation=Interpolation.BICUBIC,
                threads=SCALE_THREADS,
            )
        frame.pts, frame.time_base = src.pts, src.time_base
        frame.pict_type = PictureType.I if force else src.pict_type
        return frame

    def _packet(self, packet: av.Packet[Any]) -> None:
        if packet.pts is None or packet.dts is None:
            return
        data = bytes(packet)
        nals = avc.split_annexb(data)
        if self.feed is not None:
            self.feed.packet(packet, data, nals)
        if packet.is_keyframe and self.out.init is None:
            params = avc.ParameterSets.find(nals)
            if params is None:
                raise RuntimeError("the first keyframe from x264 carries no SPS/PPS")
            track = fmp4.VideoTrack(self.width, self.height, params.avcc())
            self.out.init = fmp4.init_segment(track)
            self.codecs = params.codecs()
        cut = self.marks.pop(packet.pts, None) if packet.is_keyframe else None
        closed = self.segmenter.add(
            packet.dts, packet.pts, avc.to_sample(nals), packet.is_keyframe, cut
        )
        for part in self.segmenter.take_parts():
            self.out.submit_part(part)
        if closed is not None:
            self._write(closed)

    def _write(self, closed: Closed) -> None:
        if self.info is None:
            ladder = self.ctx.ladder
            # The nominal rate from the usual frame interval: a frame skipped by the publisher
            # or the cap must not make a 30 fps rendition advertise 29.46.
            interval = statistics.median(s.duration for s in closed.samples)
            fps = min(float(ladder.fps), TIME_BASE.denominator / max(interval, 1))
            self.info = RenditionInfo(
                name=self.name,
                kind="video",
                bandwidth=int(self.rung.video_kbps * 1000 * VBV_PEAK * MUX_OVERHEAD),
                codecs=self.codecs,
                width=self.width,
                height=self.height,
                fps=round(fps, 3),
                part_target=ladder.part_seconds,
                window=self.ctx.output.window,
            )
        self.out.submit(closed, self.info)
