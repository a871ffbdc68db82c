"""The audio rendition: AAC or Opus packets in, AAC segments (48 kHz stereo) in Redis and Opus
for the low-latency feed out.

One thread decodes, resamples, encodes and packages. It waits for the video chain to fix the
origin (when the stream has video) so that audio segments start and end on the same grid
boundaries as the video ones; packets that arrive meanwhile are held, not dropped.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable
from fractions import Fraction

import av
from av.audio.codeccontext import AudioCodecContext
from av.audio.frame import AudioFrame

from cluster.hot.model import RenditionInfo
from cluster.medialink.frames import CodecConfig, MediaPacket
from transcoder.pipeline import fmp4
from transcoder.pipeline.context import AUDIO, MICROS, Context
from transcoder.pipeline.control import POLL, End, join_all, spawn
from transcoder.pipeline.opus import OpusFeed
from transcoder.pipeline.segments import Mark, Segmenter
from transcoder.pipeline.timing import US, AudioClock, Grid

RATE = 48_000
END_GRID_WAIT = 5.0  # seconds held audio waits at the end of a stream for the video's grid
LAYOUT = "stereo"
FORMAT = "fltp"  # what FFmpeg's aac encoder takes
FRAME = 1024  # samples per AAC frame
PACKET_QUEUE = 4096
HOLD_LIMIT = 2000  # packets held while waiting for the video origin (~40 s of AAC)
MUX_OVERHEAD = 1.1

AudioIn = CodecConfig | MediaPacket | End


def open_encoder(kbps: int) -> AudioCodecContext:
    enc = av.CodecContext.create("aac", "w")
    enc.sample_rate, enc.layout, enc.format = RATE, LAYOUT, FORMAT
    enc.bit_rate = kbps * 1000
    enc.time_base = Fraction(1, RATE)
    enc.open()
    return enc


def silence(samples: int) -> AudioFrame:
    frame = AudioFrame(format=FORMAT, layout=LAYOUT, samples=samples)
    frame.sample_rate = RATE
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    return frame


def audio_codecs(asc: bytes) -> str:
    """RFC 6381 name from the AudioSpecificConfig: mp4a.40.<audioObjectType> (2 = AAC-LC)."""
    return f"mp4a.40.{asc[0] >> 3}" if asc else "mp4a.40.2"


class AudioChain:
    def __init__(self, ctx: Context, track: int, has_video: Callable[[], bool]) -> None:
        self.ctx = ctx
        self.track = track
        # Asked at the first packet, not now: the edge sends every CODEC before any packet, but
        # in the publisher's order (OBS sends the audio header first).
        self.has_video = has_video
        self.queue: queue.Queue[AudioIn] = queue.Queue(PACKET_QUEUE)
        self.threads: list[threading.Thread] = []
        self.out = ctx.output.track(AUDIO, ctx.resume_for(AUDIO), timescale=RATE)
        self.encoder = open_encoder(ctx.ladder.audio_kbps)
        asc = bytes(self.encoder.extradata or b"")
        self.out.init = fmp4.init_segment(
            fmp4.AudioTrack(RATE, 2, asc, bitrate=ctx.ladder.audio_kbps * 1000)
        )
        self.info = RenditionInfo(
            name=AUDIO,
            kind="audio",
            bandwidth=int(ctx.ladder.audio_kbps * 1000 * MUX_OVERHEAD),
            codecs=audio_codecs(asc),
            part_target=ctx.ladder.part_seconds,
            window=ctx.output.window,
        )
        self.segmenter = Segmenter(part_ticks=round(ctx.ladder.part_seconds * RATE))
        self.held: collections.deque[MediaPacket] = collections.deque(maxlen=HOLD_LIMIT)
        self._decoder: AudioCodecContext | None = None
        self._config: CodecConfig | None = None
        self._resampler: av.AudioResampler | None = None
        self._fifo = av.AudioFifo()
        self._clock: AudioClock | None = None
        self._chunks = 0  # AAC frames into the encoder
        self._encoded = 0  # AAC frames out of the encoder
        self._prev_us: int | None = None
        self.opus = OpusFeed(ctx.feed) if ctx.feed is not None else None

    def start(self) -> None:
        self.threads.append(spawn("audio", self.ctx.control, self.ctx.log, self._run))

    def join(self, timeout: float) -> list[str]:
        """After END or a halt; returns the names of the threads still running."""
        return join_all(self.threads, timeout)

    def _run(self) -> None:
        stopped = self.ctx.control.stopped
        while not stopped.is_set():
            try:
                item = self.queue.get(timeout=POLL)
            except queue.Empty:
                item = None  # no packet, but the origin may have been settled meanwhile
            if isinstance(item, End):
                self._drain_held()
                return
            if isinstance(item, CodecConfig):
                self._open(item)
                continue
            if item is not None:
                self.held.append(item)
            grid = self._grid()
            while grid is not None and self.held and not stopped.is_set():
                self._packet(self.held.popleft(), grid)

    def _drain_held(self) -> None:
        """At the end of the stream, the packets still held for the grid go out once the video
        chain (still decoding its backlog) has settled it; a short publish would otherwise lose
        all its audio. Bounded: a grid that never comes drops them."""
        stopped = self.ctx.control.stopped
        deadline = time.monotonic() + END_GRID_WAIT
        while self.held and not stopped.is_set() and time.monotonic() < deadline:
            grid = self._grid()
            if grid is None:
                stopped.wait(POLL)
                continue
            while self.held and not stopped.is_set():
                self._packet(self.held.popleft(), grid)

    def _grid(self) -> Grid | None:
        """The segment grid, once the origin is known; until then packets are held."""
        grid = self.ctx.origin.grid
        if grid is None and not self.has_video():
            # Audio only: the first packet the predecessor did not package sets the origin.
            start = next((p for p in self.held if p.pts_us >= self.ctx.resume_us), None)
            if start is not None:
                grid = self.ctx.origin.settle(start.pts_us)
        return grid

    def _open(self, cfg: CodecConfig) -> None:
        if cfg == self._config:
            return  # a repeated sequence header: keep the decoder and resampler state
        self._config = cfg
        decoder = av.CodecContext.create(cfg.codec, "r")
        if not isinstance(decoder, AudioCodecContext):
            raise ValueError(f"{cfg.codec} is not an audio codec")
        if cfg.extradata:
            decoder.extradata = cfg.extradata
        # Opus from WebRTC comes without an OpusHead: the decoder needs rate and channels.
        if cfg.sample_rate:
            decoder.sample_rate = cfg.sample_rate
        if cfg.channels:
            decoder.layout = "stereo" if cfg.channels >= 2 else "mono"
        self._decoder = decoder
        self._resampler = None  # the input format may have changed

    def _packet(self, pkt: MediaPacket, grid: Grid) -> None:
        if self._decoder is None:
            return
        packet = av.Packet(pkt.data)
        packet.pts, packet.dts, packet.time_base = pkt.pts_us, pkt.dts_us, MICROS
        try:
            frames = self._decoder.decode(packet)
        except av.FFmpegError as exc:
            self.ctx.log.debug("audio decode error at %d us: %s", pkt.pts_us, exc)
            return
        t_us = pkt.pts_us
        for frame in frames:
            # Before the origin the audio was packaged by the predecessor (or precedes the first
            # video frame): decode it, keep none of it.
            if t_us >= grid.origin_us:
                self._frame(frame, t_us, grid)
            t_us += frame.samples * US // max(1, frame.sample_rate)

    def _frame(self, frame: AudioFrame, t_us: int, grid: Grid) -> None:
        clock = self._clock
        if clock is None:
            clock = self._clock = AudioClock(RATE, t_us)
        fit = clock.fit(t_us)
        if not fit.keep:
            return
        if fit.silence:
            self._put(silence(fit.silence), clock)
            clock.advance(fit.silence)
        if self._resampler is None:
            self._resampler = av.AudioResampler(format=FORMAT, layout=LAYOUT, rate=RATE)
        frame.pts = None  # our clock stamps the output; the FIFO would check input continuity
        for out in self._resampler.resample(frame):
            out.pts = None
            self._put(out, clock)
            clock.advance(out.samples)
        while self._fifo.samples >= FRAME:
            chunk = self._fifo.read(FRAME)
            if chunk is None:
                break
            chunk.pts = self._chunks * FRAME
            self._chunks += 1
            for packet in self.encoder.encode(chunk):
                self._encoded_packet(bytes(packet), clock, grid)

    def _put(self, samples: AudioFrame, clock: AudioClock) -> None:
        """Samples on the output timeline go to AAC (HLS) and, as Opus, to the feed."""
        self._fifo.write(samples)
        if self.opus is not None:
            self.opus.write(samples, clock)

    def _encoded_packet(self, data: bytes, clock: AudioClock, grid: Grid) -> None:
        # AAC frames are stamped by count; the encoder's one-frame priming delay is ignored
        # (21 ms) rather than written as a negative start.
        sample = self._encoded * FRAME
        self._encoded += 1
        t_us = clock.time_of(sample)
        cut = None
        if grid.starts_segment(self._prev_us, t_us):
            cut = Mark(t_us, self.ctx.clock.wall(t_us, time.time()))
        self._prev_us = t_us
        ticks = clock.ticks_of(sample)
        closed = self.segmenter.add(ticks, ticks, data, True, cut)
        for part in self.segmenter.take_parts():
            self.out.submit_part(part)
        if closed is not None:
            self.out.submit(closed, self.info)
