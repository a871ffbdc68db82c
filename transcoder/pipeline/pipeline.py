"""Routing the media link into the chains: frames in, packets to the video and audio threads out.

The first video track and the first audio track are transcoded; further tracks are ignored. A
chain starts when its track's CODEC frame arrives (the edge sends every CODEC before any packet,
GOP replay included), and a later CODEC for the same track reconfigures its decoder in order.
"""

from __future__ import annotations

import threading
import time

from cluster.errors import ZoocastError
from cluster.medialink.frames import CodecConfig, Kind, MediaPacket
from transcoder.pipeline.audio import AudioChain
from transcoder.pipeline.context import AUDIO, Context
from transcoder.pipeline.control import END, FAILED, join_all, spawn
from transcoder.pipeline.link import Link
from transcoder.pipeline.video import VideoChain


class Pipeline:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.video: VideoChain | None = None
        self.audio: AudioChain | None = None
        self.ended = threading.Event()  # the publisher ended (EOS): finish what is queued
        self.reader: threading.Thread | None = None

    def codec(self, cfg: CodecConfig) -> None:
        ctx = self.ctx
        if cfg.kind == "video" and cfg.codec in {"h264", "vp8"}:
            if self.video is None:
                self.video = VideoChain(ctx, cfg.track)
                self.video.start()
            if cfg.track == self.video.track:
                ctx.control.put(self.video.queue, cfg)
        elif cfg.kind == "audio" and cfg.codec in {"aac", "opus"}:
            if self.audio is None:
                ctx.output.catalog.expect([AUDIO])
                self.audio = AudioChain(ctx, cfg.track, has_video=lambda: self.video is not None)
                self.audio.start()
            if cfg.track == self.audio.track:
                ctx.control.put(self.audio.queue, cfg)
        else:
            ctx.log.warning("ignoring track %d: %s %s", cfg.track, cfg.kind, cfg.codec)

    def packet(self, pkt: MediaPacket, arrival: float) -> None:
        self.ctx.clock.note(pkt.pts_us, arrival)
        if self.video is not None and pkt.track == self.video.track:
            self.ctx.control.put(self.video.queue, pkt)
        elif self.audio is not None and pkt.track == self.audio.track:
            self.ctx.control.put(self.audio.queue, pkt)

    def finish(self) -> None:
        """EOS: let the chains drain what already arrived; each drops its unfinished segment."""
        self.ended.set()
        for chain in (self.video, self.audio):
            if chain is not None:
                self.ctx.control.put(chain.queue, END)

    def busy(self) -> bool:
        """Whether media that arrived before EOS is still on its way to Redis."""
        chains = [c for c in (self.video, self.audio) if c is not None]
        encoding = any(t.is_alive() for c in chains for t in c.threads)
        return encoding or not self.ctx.output.idle()

    def read(self, link: Link) -> None:
        """Start the reader thread: it turns link frames into calls on this pipeline."""
        self.reader = spawn("link", self.ctx.control, self.ctx.log, lambda: self._read(link))

    def join(self, timeout: float) -> list[str]:
        """Once halted: wait for the reader first (it is the one that starts the chains), then
        for every chain's threads; returns the names of those still running at the deadline."""
        deadline = time.monotonic() + timeout
        stuck = join_all([self.reader] if self.reader else [], timeout)
        for chain in (self.video, self.audio):
            if chain is not None:
                stuck += chain.join(max(0.0, deadline - time.monotonic()))
        return stuck

    def _read(self, link: Link) -> None:
        control = self.ctx.control
        try:
            for frame in link.frames():
                if frame.kind is Kind.PACKET:
                    self.packet(frame.packet(), time.time())
                elif frame.kind is Kind.CODEC:
                    self.codec(frame.codec())
                elif frame.kind is Kind.KEYREQ:
                    if not self.ctx.keys.request():
                        self.ctx.log.debug("KEYREQ dropped: an IDR was forced just before")
                elif frame.kind is Kind.EOS:
                    self.finish()
                    return
                elif frame.kind is Kind.ERROR:
                    body = frame.json()
                    control.halt(f"the edge closed the link: {body.get('detail', body)}")
                    return
                if control.stopped.is_set():
                    return
        except OSError as exc:
            control.halt(f"media link broke: {exc}")
            return
        except ZoocastError as exc:
            control.halt(f"media link protocol error: {exc}", FAILED)
            return
        control.halt("the edge closed the media link")
