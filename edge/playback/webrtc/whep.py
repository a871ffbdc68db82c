"""WHEP sessions: an SDP offer in, a peer connection fed by the stream's Feed and its answer out.

Each session is one RTCPeerConnection sending the feed's pre-encoded H.264 and Opus packets.
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
from edge.playback.webrtc import packetize
from edge.playback.webrtc.feed import Feed, Viewer
from edge.playback.webrtc.offer import check_offer

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
    viewer: Viewer


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
        session = WhepSession(uuid.uuid4().hex, stream, pc, feed, feed.add_viewer(lambda: None))
        session.viewer.on_end = lambda: self._spawn(
            self.close(session, "stream ended"), self._closing
        )
        self.sessions[session.id] = session
        try:
            video = pc.addTransceiver(session.viewer.video, direction="sendonly")
            audio = pc.addTransceiver(session.viewer.audio, direction="sendonly")
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
            for transceiver, track in (
                (video, session.viewer.video),
                (audio, session.viewer.audio),
            ):
                if transceiver.mid is not None:
                    _forward_pli(transceiver.sender, feed)
                    if transceiver is video:
                        packetize.share(video.sender, feed.payloads)
                else:
                    track.end()  # not negotiated: a queue nobody drains would only overflow
            await pc.setLocalDescription(await pc.createAnswer())
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


def _forward_pli(sender: RTCRtpSender, feed: Feed) -> None:
    """A viewer's PLI/FIR becomes a (rate-limited) KEYREQ to the worker.

    aiortc answers PLI/FIR by calling the sender's `_send_keyframe`, which only flags its encoder;
    pre-encoded packets never reach an encoder, so the flag would be lost. Private API: aiortc is
    pinned, and tests/edge/webrtc covers it.
    """
    setattr(sender, "_send_keyframe", lambda: feed.request_keyframe("viewer PLI/FIR"))  # noqa: B010
