"""A stream's low-latency feed at its edge: the current worker's packets in, viewers' tracks out.

One Feed per stream, owned by the stream's relay, so the upstream is always the one media link
of the current worker whatever the number of viewers. Each packet becomes one `av.Packet`
(rebased onto the feed's own timeline, see timeline.py) shared by every viewer's track: nothing
is decoded or encoded here.

Keyframes: a viewer can start only at an IDR, and with pre-encoded packets nobody but the worker
can make one. So a new viewer, a viewer that skipped its backlog, a viewer's PLI/FIR and a new
worker all ask the worker (KEYREQ on its link) instead of waiting for the next GOP; requests are
coalesced to one per `keyreq_interval`, and one arriving too early is sent when the interval ends.

Catching up: a worker starts from the edge's GOP cache (and a successor from where its
predecessor's HLS output stopped), so its first seconds of feed are old frames encoded faster
than real time. Sent on, they would replay content viewers already saw and, arriving in a
burst, push every viewer's jitter buffer seconds behind. Both are on the publisher's clock,
which the edge also sees live from the publisher (`live_us`), so until a source is anchored its
keyframes older than LIVE_WINDOW_US are skipped and another IDR is asked for; after
`catchup_timeout` (a source whose clock is not the publisher's) the next keyframe is taken.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import av

from cluster.logs import stream_logger
from cluster.medialink.frames import FEED_AUDIO, FEED_VIDEO, CodecConfig, MediaPacket
from edge.playback.webrtc.timeline import Timeline
from edge.playback.webrtc.track import FeedTrack

log = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 1_000_000)  # the feed's timestamps are microseconds
_KINDS = {FEED_VIDEO: "video", FEED_AUDIO: "audio"}
# How far behind the publisher a source's first keyframe may be: the worker's decode + encode
# delay with room for a loaded machine, well under a replayed GOP.
LIVE_WINDOW_US = 700_000


@dataclass(eq=False)
class Viewer:
    """One viewer's pair of tracks; `on_end` runs when the feed ends (the publisher left)."""

    video: FeedTrack
    audio: FeedTrack
    on_end: Callable[[], None]


class Feed:
    def __init__(
        self,
        stream: str,
        *,
        keyreq_interval: float = 0.5,
        video_queue: int = 90,
        audio_queue: int = 150,
        live_us: Callable[[], int | None] = lambda: None,
        catchup_timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.keyreq_interval = keyreq_interval
        self.video_queue = video_queue
        self.audio_queue = audio_queue
        self.live_us = live_us
        self.catchup_timeout = catchup_timeout
        self.clock = clock
        self.codecs: dict[int, CodecConfig] = {}
        self.viewers: set[Viewer] = set()
        self.timeline = Timeline()
        self.packets_in = 0
        self.keyreqs_sent = 0
        self.skipped_behind = 0  # a source's keyframes skipped because they were not live yet
        self._source_since = 0.0
        self.ended = False
        self.log = stream_logger(log, stream)
        self._upstream: Callable[[], bool] | None = None
        self._last_keyreq = -1e9
        self._pending_keyreq: asyncio.TimerHandle | None = None

    @property
    def epoch(self) -> int:
        return self.timeline.epoch

    # upstream side: the relay says which worker is current and hands over its frames
    def source(self, epoch: int, keyreq: Callable[[], bool]) -> None:
        """Worker `epoch` is now current; `keyreq()` sends it a KEYREQ (False if it cannot)."""
        if epoch <= self.timeline.epoch:
            return
        self.timeline.switch(epoch)
        self._source_since = self.clock()
        self._upstream = keyreq
        self.codecs = {}
        self._cancel_pending()
        self._last_keyreq = -1e9
        if self.viewers:
            # The new source's first packets need not start with an IDR, and viewers need one.
            self.request_keyframe("new source")

    def source_lost(self, epoch: int) -> None:
        if epoch == self.timeline.epoch:
            self._upstream = None

    def codec(self, epoch: int, cfg: CodecConfig) -> None:
        if epoch != self.timeline.epoch:
            return
        if cfg.track == FEED_VIDEO and (cfg.codec != "h264" or cfg.bitstream != "annexb"):
            self.log.warning("feed video %s/%s is not H.264 Annex-B", cfg.codec, cfg.bitstream)
        self.codecs[cfg.track] = cfg

    def packet(self, epoch: int, pkt: MediaPacket) -> None:
        if epoch != self.timeline.epoch or self.ended or pkt.track not in self.codecs:
            return
        kind = _KINDS.get(pkt.track)
        if kind is None or pkt.replay:
            return  # replayed frames are not live: a viewer would see the past again
        self.packets_in += 1
        video = pkt.track == FEED_VIDEO
        # A new source starts on a live video keyframe, so that its first frame decodes at once.
        if not self.timeline.anchored and (FEED_VIDEO in self.codecs or video):
            if not (video and pkt.keyframe):
                return
            if self._behind_live(pkt.pts_us):
                self.skipped_behind += 1
                self.request_keyframe("catching up to live")
                return
        pts = self.timeline.place(pkt.track, pkt.pts_us, self.clock(), reference=video)
        if pts is None:
            return
        if video and pkt.keyframe:
            self._cancel_pending()
        packet = av.Packet(pkt.data)
        packet.pts = packet.dts = pts
        packet.time_base = TIME_BASE
        for viewer in self.viewers:
            (viewer.video if video else viewer.audio).put(packet, pkt.keyframe)

    def _behind_live(self, pts_us: int) -> bool:
        live = self.live_us()
        if live is None or self.clock() - self._source_since > self.catchup_timeout:
            return False
        return pts_us < live - LIVE_WINDOW_US

    # viewer side
    def add_viewer(self, on_end: Callable[[], None]) -> Viewer:
        skip = self._viewer_skipped
        viewer = Viewer(
            FeedTrack("video", self.video_queue, skip),
            FeedTrack("audio", self.audio_queue, skip),
            on_end,
        )
        self.viewers.add(viewer)
        self.request_keyframe("new viewer")
        return viewer

    def remove_viewer(self, viewer: Viewer) -> None:
        if viewer in self.viewers:
            self.viewers.discard(viewer)
            viewer.video.end()
            viewer.audio.end()

    def _viewer_skipped(self) -> None:
        self.request_keyframe("slow viewer")

    def request_keyframe(self, reason: str) -> None:
        """Ask the current worker for an IDR, at most once per keyreq_interval."""
        if self.ended or self._pending_keyreq is not None:
            return
        wait = self._last_keyreq + self.keyreq_interval - self.clock()
        if wait > 0:
            loop = asyncio.get_running_loop()
            self._pending_keyreq = loop.call_later(wait, self._send_keyreq, reason)
        else:
            self._send_keyreq(reason)

    def _send_keyreq(self, reason: str) -> None:
        self._pending_keyreq = None
        up = self._upstream
        if up is None or not up():
            return  # no worker now; the next one gets a request when it attaches
        self._last_keyreq = self.clock()
        self.keyreqs_sent += 1
        self.log.debug("KEYREQ to epoch %d: %s", self.timeline.epoch, reason)

    def _cancel_pending(self) -> None:
        # A keyframe just went out to everybody: a request waiting for its turn is answered.
        if self._pending_keyreq is not None:
            self._pending_keyreq.cancel()
            self._pending_keyreq = None

    def close(self) -> None:
        """The stream ended at this edge: end every viewer's tracks and tell their sessions."""
        if self.ended:
            return
        self.ended = True
        self._cancel_pending()
        self._upstream = None
        for viewer in list(self.viewers):
            self.remove_viewer(viewer)
            viewer.on_end()
