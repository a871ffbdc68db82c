"""WHEP sessions: an SDP offer in, a peer connection fed by the stream's Feed and its answer out.

Each session is one RTCPeerConnection for ICE, DTLS and RTCP; the feed's pre-encoded H.264 and
Opus go to it through the session's RtpOut streams (rtpout.py, sendpath.py), not aiortc's
sending loop.
The answer is returned whole, with the edge's candidates (no trickle ICE): aiortc gathers them
in setLocalDescription. A session ends on DELETE, when its connection fails, closes or never
connects, when the stream's feed ends (its publisher gone for longer than the grace period, see
edge/relay/publish.py), or when the edge stops.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

from cluster.errors import BadRequest, NotFound
from cluster.logs import stream_logger
from cluster.webrtc.ice import configuration
from edge.playback.webrtc import sendpath
from edge.playback.webrtc.feed import Feed, Viewer
from edge.playback.webrtc.offer import check_offer
from edge.playback.webrtc.sendpath import IdleTrack

log = logging.getLogger(__name__)

FeedLookup = Callable[[str], Awaitable[Feed | None]]


async def no_feeds(stream: str) -> Feed | None:
    """An edge without feeds (tests of other routes): every WHEP POST gets 404."""
    return None


@dataclass(eq=False)
class WhepSession:
    id: str
    stream: str
    pc: RTCPeerConnection
    feed: Feed
    viewer: Viewer | None = None  # on the feed once negotiated


class Whep:
    def __init__(
        self, feeds: FeedLookup, stun: Sequence[str] = (), connect_timeout: float = 15.0
    ) -> None:
        self.feeds = feeds
        self.stun = list(stun)
        # A client that posts an offer and vanishes would hold a session until aioice gives up
        # on its checks; its queues fill meanwhile.
        self.connect_timeout = connect_timeout
        self.sessions: dict[str, WhepSession] = {}
        self._closing: set[asyncio.Task[None]] = set()  # awaited on shutdown
        self._timers: set[asyncio.Task[None]] = set()  # cancelled on shutdown

    async def create(self, stream: str, offer: str) -> tuple[WhepSession, str]:
        """A new session for `stream` and the SDP answer to send back."""
        check_offer(offer)
        feed = await self.feeds(stream)
        if feed is None or feed.ended:
            raise NotFound(f"stream {stream} is not live")
        pc = RTCPeerConnection(configuration(self.stun))
        session = WhepSession(uuid.uuid4().hex, stream, pc, feed)
        self.sessions[session.id] = session
        try:
            video = pc.addTransceiver(IdleTrack("video"), direction="sendonly")
            audio = pc.addTransceiver(IdleTrack("audio"), direction="sendonly")
            # Only what the feed carries: the answer must not pick VP8 or PCMU.
            _prefer(video, "video/H264")
            _prefer(audio, "audio/opus")
            try:
                await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            except ValueError as exc:
                raise BadRequest(f"unusable offer: {exc}") from exc
            except Exception as exc:  # aiortc's OperationError: no codec in common
                raise BadRequest(
                    f"offer has no H.264 or Opus that this edge can send: {exc}"
                ) from None
            if video.mid is None and audio.mid is None:
                raise BadRequest("the offer has no audio or video section")
            video_out = (
                sendpath.attach(video.sender, feed.request_keyframe)
                if video.mid is not None
                else None
            )
            audio_out = (
                sendpath.attach(audio.sender, feed.request_keyframe)
                if audio.mid is not None
                else None
            )
            await pc.setLocalDescription(await pc.createAnswer())
            if feed.ended:  # while ICE candidates were gathered
                raise NotFound(f"stream {stream} is not live")
            session.viewer = Viewer(
                video_out,
                audio_out,
                on_end=lambda: self._spawn(self.close(session, "stream ended"), self._closing),
            )
            for out in (video_out, audio_out):
                if out is not None:
                    out.on_fail = lambda: self._spawn(
                        self.close(session, "sending failed"), self._closing
                    )
            feed.add_viewer(session.viewer)
        except BaseException:
            await self.close(session, "setup failed")
            raise
        pc.on("connectionstatechange", lambda: self._state_changed(session))
        self._spawn(self._expect_connection(session), self._timers)
        stream_logger(log, stream).info(
            "whep session %s started (%d viewers)", session.id, len(feed.viewers)
        )
        return session, pc.localDescription.sdp

    def get(self, stream: str, session_id: str) -> WhepSession:
        session = self.sessions.get(session_id)
        if session is None or session.stream != stream:
            raise NotFound(f"no WHEP session {session_id} for stream {stream}")
        return session

    async def close(self, session: WhepSession, reason: str) -> None:
        if self.sessions.pop(session.id, None) is None:
            return
        if session.viewer is not None:
            session.feed.remove_viewer(session.viewer)
        await session.pc.close()
        stream_logger(log, session.stream).info("whep session %s closed: %s", session.id, reason)

    async def close_all(self) -> None:
        for task in list(self._timers):
            task.cancel()
        await asyncio.gather(*self._timers, *self._closing, return_exceptions=True)
        await asyncio.gather(
            *(self.close(s, "edge stopping") for s in list(self.sessions.values()))
        )

    async def _expect_connection(self, session: WhepSession) -> None:
        await asyncio.sleep(self.connect_timeout)
        if session.pc.connectionState != "connected":
            await self.close(session, f"not connected after {self.connect_timeout:.0f} s")

    def _state_changed(self, session: WhepSession) -> None:
        if session.pc.connectionState in ("failed", "closed"):
            reason = f"connection {session.pc.connectionState}"
            self._spawn(self.close(session, reason), self._closing)

    @staticmethod
    def _spawn(coro: Coroutine[Any, Any, None], tasks: set[asyncio.Task[None]]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)


def _prefer(transceiver: RTCRtpTransceiver, mime: str) -> None:
    codecs = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    transceiver.setCodecPreferences(
        [c for c in codecs if c.mimeType.lower() in (mime.lower(), f"{transceiver.kind}/rtx")]
    )
