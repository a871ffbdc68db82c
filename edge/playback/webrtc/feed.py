"""A stream's low-latency feed at its edge: the current worker's packets in, viewers' tracks out.

One Feed per stream, owned by the stream's relay, so the upstream is always the one media link
of the current worker whatever the number of viewers. Each packet is placed on the feed's own
timeline (timeline.py), and each H.264 access unit is cut into RTP payloads once
(packetize.py); every viewer's RtpOut (rtpout.py) sends those same payloads under its own
header and keys: nothing is decoded or encoded here.

Keyframes: a viewer can start only at an IDR, and with pre-encoded packets nobody but the worker
can make one. So a new viewer, a viewer that skipped its backlog, a viewer's PLI/FIR and a new
worker all ask the worker (KEYREQ on its link, coalesced: keyreq.py) instead of waiting for the
next GOP.

Catching up: a worker starts from the edge's GOP cache (and a successor from where its
predecessor's HLS output stopped), so its first seconds of feed are old frames encoded faster
than real time. Sent on, they would replay content viewers already saw and, arriving in a
burst, push every viewer's jitter buffer seconds behind. Both are on the publisher's clock,
which the edge also sees live from the publisher (`live_us`), so until a source is anchored
its frames further behind than the usual lag + LIVE_WINDOW_US, or not newer than the last frame
sent on, are skipped, and an IDR is asked for only once its frames are live. After
`catchup_timeout` (a source whose clock is not the publisher's) any keyframe is taken.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from cluster.logs import stream_logger
from cluster.medialink.frames import FEED_AUDIO, FEED_VIDEO, CodecConfig, MediaPacket
from edge.playback.webrtc.keyreq import KeyRequests
from edge.playback.webrtc.packetize import cut, runs
from edge.playback.webrtc.rtpout import RtpOut
from edge.playback.webrtc.tap import FeedTap
from edge.playback.webrtc.timeline import Timeline

log = logging.getLogger(__name__)

# The RTP clocks: H.264 90 kHz, Opus 48 kHz.
CLOCK = {FEED_VIDEO: 90_000, FEED_AUDIO: 48_000}
# Seconds from the NTP epoch (1900) to the Unix epoch, for sender reports' NTP timestamps.
_NTP_UNIX = 2_208_988_800
_ONE = [(0, 1)]  # an audio frame is one packet
_KINDS = {FEED_VIDEO: "video", FEED_AUDIO: "audio"}
# How far behind the publisher a source's first keyframe may be, beyond the previous source's
# usual lag (smoothed, for a loaded machine). A successor's IDR where live packets take over
# comes after it decoded the whole GOP replay, so it is already some 0.2-0.7 s old here; 0.5 s
# refused it on a loaded machine and cost another KEYREQ round (+0.5 s stall), while the frames
# that follow it arrive in a burst no longer than this window.
LIVE_WINDOW_US = 1_000_000
_LAG_SMOOTHING = 0.1
# A viewer connecting mid-GOP gets the frames since the last keyframe at once if that keyframe
# is at most this old (a short burst its jitter buffer absorbs); else it waits for a new IDR.
CATCH_UP_SECONDS = 1.0
_CATCH_UP_FRAMES = 60


def _ntp(unix_time: float) -> int:
    """64-bit NTP time (RFC 3550's sender reports)."""
    t = unix_time + _NTP_UNIX
    return (int(t) << 32) | int((t % 1.0) * (1 << 32))


class _Cut(NamedTuple):
    """A video frame as the feed sent it to viewers."""

    payloads: list[bytes]
    runs: list[tuple[int, int]]
    timestamp: int  # RTP clock
    octets: int


@dataclass(eq=False)
class Viewer:
    """One viewer's RTP streams (None: not negotiated); `on_end` runs when the feed ends."""

    video: RtpOut | None
    audio: RtpOut | None
    on_end: Callable[[], None]

    def close(self) -> None:
        for out in (self.video, self.audio):
            if out is not None:
                out.close()


class Feed:
    def __init__(
        self,
        stream: str,
        *,
        keyreq_interval: float = 0.5,
        live_us: Callable[[], int | None] = lambda: None,
        catchup_timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.keyreq_interval = keyreq_interval
        self.live_us = live_us
        self.catchup_timeout = catchup_timeout
        self.clock = clock
        self.codecs: dict[int, CodecConfig] = {}
        self.viewers: set[Viewer] = set()
        self.taps: set[FeedTap] = set()  # other edges serving this stream's WHEP (tap.py)
        self.cuts = 0  # access units cut into RTP payloads (once each, for every viewer)
        self._gop: list[_Cut] = []  # the current GOP's video frames as sent, from its keyframe
        self._gop_at = 0.0
        self.timeline = Timeline()
        self.packets_in = 0
        self.log = stream_logger(log, stream)
        self.keys = KeyRequests(keyreq_interval, clock, self.log)
        # The current source's keyframes skipped because they were not live yet.
        self.skipped_behind = 0
        self._source_since = 0.0
        self._shown_us: int | None = None  # source time of the newest video frame sent on
        self._anchor_us: int | None = None  # source time of the current source's first frame
        self._lag_us = 0.0  # how far behind the publisher sent frames usually are
        self.ended = False

    @property
    def epoch(self) -> int:
        return self.timeline.epoch

    def new_publisher(self, live_us: Callable[[], int | None]) -> None:
        """A (re)connected publisher feeds the stream: its clock need not continue the last
        one's, so what was learnt on that clock (last frame shown, usual lag) is forgotten. The
        timeline stays: viewers who waited through the reconnect continue on it."""
        self.live_us = live_us
        self._shown_us = None
        self._lag_us = 0.0

    # upstream side: the relay says which worker is current and hands over its frames
    def source(self, epoch: int, keyreq: Callable[[], bool]) -> None:
        """Worker `epoch` is now current; `keyreq()` sends it a KEYREQ (False if it cannot)."""
        if epoch <= self.timeline.epoch:
            return
        self.timeline.switch(epoch)
        self._gop = []
        self._source_since = self.clock()
        self.skipped_behind = 0
        self._anchor_us = None
        self.codecs = {}
        # No KEYREQ yet: the new worker's first frames are old ones from the GOP cache, and an
        # IDR forced among them would be skipped too (and spend the worker's rate limit).
        self.keys.new_upstream(keyreq)

    def source_lost(self, epoch: int) -> None:
        if epoch == self.timeline.epoch:
            self.keys.new_upstream(None)

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
        if not self._admit(pkt, video):
            return
        anchoring = not self.timeline.anchored
        pts = self.timeline.place(pkt.track, pkt.pts_us, self.clock(), reference=video)
        if pts is None:
            return
        if video:
            self._shown_us = pkt.pts_us
            live = self.live_us()
            if live is not None:
                lag = live - pkt.pts_us
                self._lag_us += (lag - self._lag_us) * _LAG_SMOOTHING
        if anchoring:
            self._anchor_us = pkt.pts_us
            live = self.live_us()
            self.log.info(
                "feed of epoch %d starts %.3f s after it attached, %s behind the publisher; "
                "%d stale keyframes skipped; %d viewers",
                self.timeline.epoch,
                self.clock() - self._source_since,
                "?" if live is None else f"{(live - pkt.pts_us) / 1e6:.3f} s",
                self.skipped_behind,
                len(self.viewers),
            )
        if video and pkt.keyframe:
            self.keys.answered()
        if video and not self.viewers:
            self._gop = []  # frames nobody was sent: a catch-up from it would have a hole
        if not self.viewers and not self.taps:
            return  # the timeline above still advances, so a first viewer joins a continuous one
        if self.viewers:
            self._send(video, pts * CLOCK[pkt.track] // 1_000_000, pkt)
        for tap in self.taps:
            if not tap.put(self.codecs[pkt.track], pts, pkt.keyframe, pkt.data):
                self.request_keyframe(f"edge {tap.node} skipped")

    def _send(self, video: bool, timestamp: int, pkt: MediaPacket) -> None:
        if video:
            payloads = cut(pkt.data)
            batches = runs(payloads)
            self.cuts += 1
        else:
            payloads, batches = [pkt.data], _ONE
        # One clock read per frame for every viewer's sender report: they are sent together.
        ntp = _ntp(time.time())
        key = pkt.keyframe
        octets = len(pkt.data) if not video else sum(map(len, payloads))
        for viewer in self.viewers:
            out = viewer.video if video else viewer.audio
            if out is not None:
                out.send(payloads, batches, timestamp, key, ntp, octets)
        if video:
            if key:
                self._gop = [_Cut(payloads, batches, timestamp, octets)]
                self._gop_at = self.clock()
            elif self._gop and len(self._gop) < _CATCH_UP_FRAMES:
                self._gop.append(_Cut(payloads, batches, timestamp, octets))
            else:
                self._gop = []

    def _catch_up(self, out: RtpOut) -> None:
        """A viewer's video just connected: the current GOP so far, if it began recently."""
        if not self._gop or self.clock() - self._gop_at > CATCH_UP_SECONDS:
            return
        now, newest = time.time(), self._gop[-1].timestamp
        for i, frame in enumerate(self._gop):
            # When each frame was sent, as far as sender reports go: they map RTP time to NTP.
            sent_at = now - (newest - frame.timestamp) / CLOCK[FEED_VIDEO]
            out.send(
                frame.payloads, frame.runs, frame.timestamp, i == 0, _ntp(sent_at), frame.octets
            )

    def _admit(self, pkt: MediaPacket, video: bool) -> bool:
        """Whether a packet of the current source may go to viewers (see "Catching up")."""
        if self.timeline.anchored:
            # Audio the source made before its first keyframe would be heard twice.
            return video or self._anchor_us is None or pkt.pts_us >= self._anchor_us
        if not video:
            return FEED_VIDEO not in self.codecs  # an audio-only feed needs no keyframe
        if self._stale(pkt.pts_us):
            self.skipped_behind += pkt.keyframe
            return False
        if not pkt.keyframe and self.viewers:
            # Live, but between keyframes: ask for one now rather than wait for the GOP.
            self.request_keyframe("new source")
        return pkt.keyframe

    def _stale(self, pts_us: int) -> bool:
        """Older than live, or already shown; only when the source is on the publisher's clock."""
        live = self.live_us()
        if live is None or self.clock() - self._source_since > self.catchup_timeout:
            return False
        shown = self._shown_us is not None and pts_us <= self._shown_us
        return shown or pts_us < live - max(self._lag_us, 0.0) - LIVE_WINDOW_US

    # viewer side
    def add_viewer(self, viewer: Viewer) -> None:
        if viewer.video is not None:
            viewer.video.catch_up = self._catch_up
        self.viewers.add(viewer)
        self.request_keyframe("new viewer")

    def add_tap(self, writer: asyncio.StreamWriter, node: str) -> FeedTap:
        tap = FeedTap(writer, node)
        self.taps.add(tap)
        self.request_keyframe(f"edge {node} subscribed")
        return tap

    def remove_tap(self, tap: FeedTap) -> None:
        self.taps.discard(tap)

    def remove_viewer(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)
        viewer.close()

    def request_keyframe(self, reason: str) -> None:
        """Ask the current worker for an IDR (coalesced with other requests)."""
        if not self.ended:
            self.keys.request(reason)

    def close(self) -> None:
        """The stream ended at this edge: stop every viewer's RTP and tell their sessions."""
        if self.ended:
            return
        self.ended = True
        self.keys.new_upstream(None)
        for viewer in list(self.viewers):
            self.remove_viewer(viewer)
            viewer.on_end()
        for tap in list(self.taps):
            tap.end()
        self.taps.clear()
