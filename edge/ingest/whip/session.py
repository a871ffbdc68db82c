"""One WHIP publish: a negotiated peer connection feeding a publish session, until either ends.

The publish ends, as a dropped or finished RTMP connection does (EOS to the relay, publisher
znode removed), when the publisher sends DELETE, when its tracks end (RTCP BYE), when the peer
connection fails or closes (ICE consent lost), when it never connects within
`whip_connect_timeout`, or when no media arrives for `whip_idle_timeout`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError

from cluster.logs import stream_logger
from edge.ingest.whip.packets import TrackIn
from edge.relay.publish import PublishSession

log = logging.getLogger(__name__)

# Browsers answer every PLI with a keyframe; more than one a second only costs bitrate.
PLI_MIN_INTERVAL = 1.0
WATCH_INTERVAL = 0.5


@dataclass(frozen=True)
class Track:
    receiver: RTCRtpReceiver
    track: MediaStreamTrack
    conv: TrackIn


class WhipSession:
    def __init__(
        self,
        pc: RTCPeerConnection,
        publish: PublishSession,
        tracks: list[Track],
        connect_timeout: float,
        idle_timeout: float,
        on_closed: Callable[[WhipSession], None],
    ) -> None:
        self.pc = pc
        self.publish = publish
        self.tracks = tracks
        self.id = publish.session_id
        self.stream = publish.stream
        self.answer = pc.localDescription.sdp
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.on_closed = on_closed
        self.packets = 0
        self.log = stream_logger(log, self.stream)
        self._t0 = time.monotonic()
        self._last_media = self._t0
        self._last_pli = -PLI_MIN_INTERVAL
        self._closed = asyncio.Event()
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._closers: set[asyncio.Task[None]] = set()  # kept apart: close() cancels _tasks

    def silent_for(self) -> float:
        """Seconds since the last media packet (or since the session began, before any)."""
        return time.monotonic() - self._last_media

    def start(self) -> None:
        self.publish.keyframe_source = self.request_keyframe
        for t in self.tracks:
            self.publish.codec(t.conv.config())
        self.pc.on("connectionstatechange", self._state_changed)
        for t in self.tracks:
            self._spawn(self._read(t))
        self._spawn(self._watchdog())

    def _spawn(
        self, coro: Coroutine[Any, Any, None], tasks: set[asyncio.Task[None]] | None = None
    ) -> None:
        keep = self._tasks if tasks is None else tasks
        task = asyncio.get_running_loop().create_task(coro)
        keep.add(task)
        task.add_done_callback(keep.discard)

    def _state_changed(self) -> None:
        state = self.pc.connectionState
        self.log.debug("WHIP %s: peer connection %s", self.id, state)
        if state == "connected":
            self._last_media = time.monotonic()  # the idle clock starts once media can flow
        elif state in ("failed", "closed"):
            self._close_soon(f"peer connection {state}")

    async def _watchdog(self) -> None:
        """End a publisher that never connects, or that goes silent: a killed encoder or a lost
        network sends no BYE, and ICE consent would take about 30 s to notice."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            now = time.monotonic()
            if self.pc.connectionState != "connected":
                if now - self._t0 > self.connect_timeout:
                    reason = f"not connected within {self.connect_timeout:g}s (ICE/DTLS)"
                    break
            elif now - self._last_media > self.idle_timeout:
                reason = f"no media for {self.idle_timeout:g}s"
                break
        await self.close(reason)

    async def _read(self, t: Track) -> None:
        while True:
            try:
                item = await t.track.recv()
            except MediaStreamError:
                self._close_soon("the publisher ended its tracks")
                return
            if not isinstance(item, av.Packet):
                # The pass-through hook did not take: decoded media must never reach the link.
                self.log.error("WHIP %s: %s receiver yields decoded frames", self.id, t.conv.kind)
                self._close_soon("internal error: media was decoded on receive")
                return
            self._last_media = now = time.monotonic()
            arrival_us = int((now - self._t0) * 1_000_000)
            assert item.pts is not None
            pkt = t.conv.packet(bytes(item), int(item.pts), arrival_us)
            if pkt is None:
                self.request_keyframe()  # joined mid-GOP: a browser answers, OBS will send one
                continue
            self.packets += 1
            self.publish.packet(pkt)

    def request_keyframe(self) -> bool:
        """Ask the publisher for a keyframe (RTCP PLI), at most once per PLI_MIN_INTERVAL.

        Browsers answer; OBS ignores PLI and sends its keyframes on its own interval."""
        now = time.monotonic()
        video = next((t for t in self.tracks if t.conv.kind == "video"), None)
        if video is None or self._closing or now - self._last_pli < PLI_MIN_INTERVAL:
            return False
        sources = video.receiver.getSynchronizationSources()
        if not sources:
            return False  # nothing received yet: the first frame will be a keyframe anyway
        self._last_pli = now
        # aiortc has no public API to send a PLI; its receiver sends one itself only on loss.
        self._spawn(video.receiver._send_rtcp_pli(sources[0].source))
        return True

    def _close_soon(self, reason: str) -> None:
        if not self._closing:
            # Not awaited here: the caller may be one of the tasks that close() cancels.
            self._spawn(self.close(reason), self._closers)

    async def close(self, reason: str) -> None:
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            me = asyncio.current_task()
            for task in list(self._tasks):
                if task is not me:
                    task.cancel()
            await self.pc.close()
            await self.publish.close(reason)
            self.log.info("WHIP %s closed: %s (%d packets)", self.id, reason, self.packets)
        finally:
            self._closed.set()
            self.on_closed(self)
